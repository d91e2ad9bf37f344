"""Registry of generator / critic architectures and the :func:`build` entry point.

``build(name, role, shape=..., z_dim=..., out_dim=1, spectral=None, **params)`` returns an
``nn.Module``.  Generators map ``(n, z_dim) → (n, *shape)``; critics map ``(n, *shape) →
(n, out_dim)``.  ``spectral="fixed"`` puts SN-GAN's spectral normalisation on every
Linear / Conv layer of the critic, ``"learned"`` the SN-SMMD parametrisation with a learned
scale per layer (:func:`igm.nn.spectral.apply_spectral`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from igm.nn.autoencoder import AutoEncoderCritic, dcgan_autoencoder
from igm.nn.convnet import ConvNetCritic
from igm.nn.dcgan import DCGANCritic, DCGANGenerator
from igm.nn.mlp import MLPCritic, MLPGenerator
from igm.nn.resnet import ResNetCritic, ResNetGenerator
from igm.nn.sngan import SNGANCritic, SNGANGenerator
from igm.registry import Registry, hyperparameter_names

__all__ = ["ROLES", "SPECTRAL", "architectures", "build", "names", "parameters"]

ROLES = ("generator", "critic")
SPECTRAL = (None, "fixed", "learned")
_FIXED = ("shape", "z_dim", "out_dim")  # passed by build(), never through **params

Builder = Callable[..., nn.Module]
architectures: Registry[Builder] = Registry("architecture")


def _factory(name: str, generator: Callable[..., nn.Module] | None, critic: Callable[..., nn.Module] | None) -> Builder:
    """A builder ``(role, *, shape, z_dim, out_dim, **params) -> nn.Module`` over two classes."""
    makers = {"generator": generator, "critic": critic}

    def builder(role: str, *, shape: Sequence[int], z_dim: int | None, out_dim: int, **params: Any) -> nn.Module:
        maker = makers[role]
        if maker is None:
            others = [r for r, m in makers.items() if m is not None]
            raise ValueError(f"architecture {name!r} has no {role}; it provides: {', '.join(others)}")
        accepted = hyperparameter_names(maker)
        valid = [p for p in accepted if p not in _FIXED]
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                f"for the {name} {role}; valid: {', '.join(valid) if valid else '(none)'}"
            )
        fixed = {"shape": shape, "z_dim": z_dim, "out_dim": out_dim}
        return maker(**{k: v for k, v in fixed.items() if k in accepted}, **params)

    builder.__name__ = f"build_{name.replace('-', '_')}"
    builder.__doc__ = f"Build the {name!r} {' / '.join(r for r, m in makers.items() if m is not None)}."
    builder.makers = makers  # type: ignore[attr-defined]
    return builder


architectures.register("mlp", _factory("mlp", MLPGenerator, MLPCritic))
architectures.register("dcgan", _factory("dcgan", DCGANGenerator, DCGANCritic))
architectures.register("sngan", _factory("sngan", SNGANGenerator, SNGANCritic))
architectures.register("resnet", _factory("resnet", ResNetGenerator, ResNetCritic))
architectures.register("dcgan-ae", _factory("dcgan-ae", None, dcgan_autoencoder))
architectures.register("convnet", _factory("convnet", None, ConvNetCritic))


def names(role: str | None = None) -> list[str]:
    """Registered architecture names, optionally only those that provide ``role``."""
    if role is None:
        return architectures.names()
    _check_role(role)
    return [n for n, b in architectures.items() if b.makers[role] is not None]  # type: ignore[attr-defined]


def parameters(name: str, role: str) -> list[str]:
    """The ``**params`` that ``build(name, role, ...)`` accepts."""
    _check_role(role)
    maker = architectures.get(name).makers[role]  # type: ignore[attr-defined]
    return [] if maker is None else [p for p in hyperparameter_names(maker) if p not in _FIXED]


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")


def build(
    name: str,
    role: str,
    *,
    shape: Sequence[int],
    z_dim: int | None = None,
    out_dim: int = 1,
    spectral: str | None = None,
    **params: Any,
) -> nn.Module:
    """Build architecture ``name`` in ``role`` ("generator" | "critic").

    ``shape`` is the data shape (``(2,)`` for toy data, ``(C, H, W)`` for images), ``z_dim`` the
    latent dimension (required for generators, ignored by critics), ``out_dim`` the critic's output dimension (1: scalar critic; > 1: features
    for MMD losses).  ``spectral`` (critics only): ``None``, ``"fixed"`` (s = 1, SN-GAN) or
    ``"learned"`` (learned scale, SN-SMMD).  Unknown names, roles and parameters and unsupported
    shapes raise ``ValueError``.
    """
    builder = architectures.get(name)
    _check_role(role)
    if spectral not in SPECTRAL:
        raise ValueError(f"unknown spectral option {spectral!r}; valid: None, 'fixed', 'learned'")
    if spectral is not None and role != "critic":
        raise ValueError("spectral= applies to critics; call igm.nn.apply_spectral on a generator directly")
    if role == "generator" and z_dim is None:
        raise ValueError("building a generator needs z_dim")
    model = builder(role, shape=shape, z_dim=z_dim, out_dim=out_dim, **params)
    if spectral is not None:
        from igm.nn.spectral import apply_spectral

        target = model.encoder if isinstance(model, AutoEncoderCritic) else model
        apply_spectral(target, learn_scale=spectral == "learned")
    return model
