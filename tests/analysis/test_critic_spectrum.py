"""``igm figure critic-spectrum``: recorded spectra against torch.linalg.svdvals of the effective
weights, recording cadence, and the spectral parametrisation's invariants."""

import json
import math

import pytest
import torch
from tolerance import bound
from torch import nn
from torch.nn.utils import parametrize

from igm import cli
from igm.analysis import figures
from igm.nn.spectral import ScaledSpectralNorm

QUICK = dict(figures.get("critic-spectrum").quick)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("spectrum")
    result = figures.run("critic-spectrum", out, quick=True)
    return out, result, json.loads((out / "critic-spectrum.json").read_text())


def effective_weight(module: nn.Module) -> torch.Tensor:
    """s · W / (uᵀ W v) from the raw weight and the stored vectors, or the plain weight."""
    if parametrize.is_parametrized(module, "weight"):
        raw = module.parametrizations.weight.original.detach().double()
        (p,) = [m for m in module.parametrizations.weight if isinstance(m, ScaledSpectralNorm)]
        mat = raw.reshape(raw.shape[0], -1)
        sigma = p._u.double() @ mat @ p._v.double()
        return float(p.scale) * mat / sigma
    w = module.weight.detach().double()
    return w.reshape(w.shape[0], -1)


def test_cli_runs_and_writes_pngs(tmp_path):
    code = cli.main(["figure", "critic-spectrum", "--quick", "--out", str(tmp_path), "steps=1", "every=1",
                     "presets=[digits-sn-smmd]"])
    assert code == 0
    for name in ("critic-spectrum.png", "critic-spectrum-final.png", "critic-spectrum.json"):
        assert (tmp_path / name).stat().st_size > 1000


def test_recording_cadence(quick_run):
    _, _, data = quick_run
    for preset, h in data["runs"].items():
        assert h["steps"] == list(range(0, QUICK["steps"] + 1, QUICK["every"])), preset
        assert len(h["layers"]) == len(h["steps"])


def test_final_spectra_match_svdvals_of_effective_weights(quick_run):
    _, result, data = quick_run
    for preset, critic in result["critics"].items():
        final = data["runs"][preset]["layers"][-1]
        layers = {n: m for n, m in critic.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
        assert set(final) == set(layers), preset
        for name, module in layers.items():
            mat = effective_weight(module)  # float64 here; the layer itself uses the float32 rounding
            expected = torch.linalg.svdvals(mat)
            got = torch.tensor(final[name]["singular_values"], dtype=torch.float64)
            # Weyl: each σ moves by at most ‖ΔW‖₂ ≤ ‖ΔW‖_F, the float32 rounding of W̄ = s·W/(uᵀWv)
            tol = float(bound(torch.float32, float(mat.norm()), terms=sum(mat.shape)))
            assert (got - expected).abs().max() <= tol, (preset, name)
            cond = float(expected[0] / expected[-1])
            assert final[name]["condition_number"] == pytest.approx(cond, rel=tol / float(expected[-1]) + tol / float(expected[0]))


def test_spectra_change_during_training(quick_run):
    # the records are live reads, not one spectrum copied: the plain critic's weights move
    _, _, data = quick_run
    h = data["runs"]["digits-smmd"]
    first, last = h["layers"][0], h["layers"][-1]
    assert any(first[n]["sigma_max"] != last[n]["sigma_max"] for n in first)


def test_spectral_parametrisation_pins_the_top_singular_value_to_the_scale(quick_run):
    # W̄ = s W / σ̂(W): its top singular value is |s| (σ̂ tracks σ_max by power iteration), while
    # the condition number is that of the raw W — the parametrisation does not bound it by itself
    _, _, data = quick_run
    for rec in data["runs"]["digits-sn-smmd"]["layers"]:
        for name, layer in rec.items():
            assert layer["sigma_max"] == pytest.approx(abs(layer["scale"]), rel=0.02), name
    plain = data["runs"]["digits-smmd"]["layers"][0]
    sn = data["runs"]["digits-sn-smmd"]["layers"][0]
    for name in plain:  # same seed, same initial raw weights: same condition numbers at step 0
        assert sn[name]["condition_number"] == pytest.approx(plain[name]["condition_number"], rel=1e-5)
        assert plain[name]["scale"] == 1.0 and math.isfinite(plain[name]["condition_number"])


def test_claim_plain_critic_condition_number_grows_spectral_one_does_not(quick_run):
    # seed 000 §3.3 / fig. 2: without the parametrisation the SMMD critic's spectrum starts to
    # concentrate on one direction; with it the condition number stays where it started. Measured on
    # the second (largest) conv layer after the quick run's 20 generator steps.
    _, _, data = quick_run
    plain = [rec["net.2"]["condition_number"] for rec in data["runs"]["digits-smmd"]["layers"]]
    sn = [rec["net.2"]["condition_number"] for rec in data["runs"]["digits-sn-smmd"]["layers"]]
    assert plain[-1] > 1.5 * plain[0]
    assert max(sn) < 1.25 * sn[0]
    assert plain[-1] > 1.5 * sn[-1]
