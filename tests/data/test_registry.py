"""The dataset registry: names, lookup errors and parameter validation."""

from __future__ import annotations

import pytest

import igm.data as D

EXPECTED = {"ring", "grid", "swiss-roll", "digits", "image-folder", "celeba", "lsun", "npy", "mnist", "mnist5k", "cifar10"}


def test_names() -> None:
    assert set(D.names()) == EXPECTED and D.names() == sorted(D.names())
    assert all(name in D.registry for name in EXPECTED)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError) as err:
        D.get("imagenet")
    msg = str(err.value)
    assert "imagenet" in msg and all(name in msg for name in EXPECTED)


@pytest.mark.parametrize("name", ["ring", "digits", "mnist"])
def test_unknown_param_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="'colour'"):
        D.get(name, colour="red")


def test_params_are_passed() -> None:
    ring = D.get("ring", radius=3.0, modes=4, std=0.1)
    assert len(ring.modes) == 4 and ring.std == 0.1 and float(ring.modes.norm(dim=1).max()) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="modes"):
        D.get("ring", modes=0)
