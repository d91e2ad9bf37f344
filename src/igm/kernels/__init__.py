"""Kernels on feature vectors.

A kernel is a small frozen object whose hyperparameters are fields. Every Gram matrix of one
estimate comes from one :class:`Pairwise` computation: the inner products ``a bᵀ`` and the squared
distances derived from them (clamped at 0, with an exact 0 diagonal when ``a is b``). A sum of
kernels evaluates each component on the same :class:`Pairwise`, so the distances are computed once.

Radial kernels are written ``K(a, b) = κ(‖a − b‖²)``. In the notation of the SMMD paper,
``K(a, b) = g(−‖a − b‖²)``, so ``g(0) = κ(0)`` and ``g'(0) = −κ'(0)``.
"""

from __future__ import annotations

from typing import Any, Mapping

from igm.kernels.base import Kernel, Radial, Scaled, Sum
from igm.kernels.families import Distance, Gaussian, Linear, Polynomial, RationalQuadratic, RBFMixture
from igm.kernels.pairwise import NEAR, Pairwise, safe_sqrt
from igm.registry import Registry

__all__ = [
    "Kernel",
    "Radial",
    "Pairwise",
    "Gaussian",
    "RBFMixture",
    "RationalQuadratic",
    "Linear",
    "Distance",
    "Polynomial",
    "Sum",
    "Scaled",
    "NEAR",
    "registry",
    "get",
    "names",
    "build",
    "safe_sqrt",
]


# registry: short names for configs


def _validate_kernel(name: str, cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Kernel)):
        raise TypeError(f"kernel '{name}' must be a Kernel subclass")


registry: Registry[type] = Registry("kernel", validator=_validate_kernel)
for _name, _cls in [
    ("gaussian", Gaussian),
    ("rbf-mixture", RBFMixture),
    ("rq-mixture", RationalQuadratic),
    ("linear", Linear),
    ("distance", Distance),
    ("polynomial", Polynomial),
]:
    registry.register(_name, _cls)


def names() -> list[str]:
    return registry.names()


def get(name: str, **params: Any) -> Kernel:
    """Build a kernel by short name, e.g. ``get("gaussian", sigma=2.0)``."""
    cls = registry.get(name)
    from igm.registry import construct

    return construct(cls, params, what=f"kernel '{name}'")


def build(spec: "Kernel | str | Mapping[str, Any] | list") -> Kernel:
    """A kernel from a Kernel, a short name, ``{"name": ..., **params}`` or a list (their sum)."""
    if isinstance(spec, Kernel):
        return spec
    if isinstance(spec, str):
        return get(spec)
    if isinstance(spec, Mapping):
        params = dict(spec)
        if "name" not in params:
            raise ValueError(f"a kernel mapping needs a 'name' key (one of {names()}); got {dict(spec)}")
        weight = params.pop("weight", None)
        k = get(params.pop("name"), **params)
        return k if weight is None else float(weight) * k
    if isinstance(spec, (list, tuple)):
        return Sum(tuple(build(s) for s in spec))
    raise ValueError(f"cannot build a kernel from {spec!r}; use a Kernel, a name in {names()} or a mapping")
