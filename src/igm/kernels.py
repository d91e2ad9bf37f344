"""Kernels on feature vectors.

A kernel is a small frozen object whose hyperparameters are fields. Every Gram matrix of one
estimate comes from one :class:`Pairwise` computation: the inner products ``a bᵀ`` and the squared
distances derived from them (clamped at 0, with an exact 0 diagonal when ``a is b``). A sum of
kernels evaluates each component on the same :class:`Pairwise`, so the distances are computed once.

Radial kernels are written ``K(a, b) = κ(‖a − b‖²)``. In the notation of the SMMD paper,
``K(a, b) = g(−‖a − b‖²)``, so ``g(0) = κ(0)`` and ``g'(0) = −κ'(0)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Mapping

import torch
from torch import Tensor

from igm.checks import positive, positive_tuple
from igm.registry import Registry

__all__ = [
    "Kernel",
    "Pairwise",
    "Gaussian",
    "RBFMixture",
    "RationalQuadratic",
    "Linear",
    "Distance",
    "Polynomial",
    "Sum",
    "Scaled",
    "registry",
    "get",
    "names",
    "build",
    "safe_sqrt",
]


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(x)`` for ``x ≥ 0`` whose gradient at 0 is 0 instead of inf/NaN."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


class Pairwise:
    """Lazily computed pairwise quantities between rows of ``a`` (n, d) and ``b`` (m, d).

    ``b=None`` means ``a`` against itself: the squared-distance diagonal is then exactly 0.
    """

    def __init__(self, a: Tensor, b: Tensor | None = None):
        if a.dim() != 2 or (b is not None and b.dim() != 2):
            raise ValueError(
                f"kernels take 2-D inputs (n, d); got shapes {tuple(a.shape)}"
                f"{'' if b is None else ' and ' + str(tuple(b.shape))}"
            )
        if b is not None and a.shape[1] != b.shape[1]:
            raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
        if b is not None and a.dtype != b.dtype:
            raise ValueError(f"dtypes differ: {a.dtype} vs {b.dtype}")
        self.a = a
        self.b = a if b is None else b
        self.symmetric = b is None

    @property
    def dim(self) -> int:
        return self.a.shape[1]

    @cached_property
    def dot(self) -> Tensor:
        return self.a @ self.b.T

    @cached_property
    def sqnorm_a(self) -> Tensor:
        return (self.a * self.a).sum(1)

    @cached_property
    def sqnorm_b(self) -> Tensor:
        return self.sqnorm_a if self.symmetric else (self.b * self.b).sum(1)

    @cached_property
    def _centred(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        # a common shift changes no distance, but the expansion's cancellation error, of the order
        # eps·‖a‖², becomes eps·spread², so features far from the origin (a critic that drifts)
        # still give a positive semi-definite Gaussian Gram matrix
        shift = self.a.detach().mean(0)
        a = self.a - shift
        b = a if self.symmetric else self.b - shift
        sq_a = (a * a).sum(1)
        sq_b = sq_a if self.symmetric else (b * b).sum(1)
        return a, b, sq_a, sq_b

    @cached_property
    def sqdist(self) -> Tensor:
        """‖a_i − b_j‖² by the expansion ‖a‖² + ‖b‖² − 2a·b (one matrix product): its absolute error is
        a few eps·(‖a_i‖² + ‖b_j‖²) about the batch mean, harmless inside exp(−d²/2σ²)."""
        a, b, sq_a, sq_b = self._centred
        d = (sq_a[:, None] + sq_b[None, :] - 2.0 * (a @ b.T)).clamp_min(0.0)
        if self.symmetric:
            eye = torch.eye(d.shape[0], dtype=torch.bool, device=d.device)
            d = d.masked_fill(eye, 0.0)
        return d

    @cached_property
    def dist(self) -> Tensor:
        """‖a_i − b_j‖, accurate to a few eps relative at every pair, coincident ones included.

        The square root turns the expansion's absolute error δ ≈ eps·(‖a‖² + ‖b‖²) into an error of
        √δ ≈ √eps·‖a‖ at coincident points (1e-8 in float64, 3e-4·‖a‖ in float32). So the pairs where
        the expansion cancels, d² ≤ NEAR·(‖a_i‖² + ‖b_j‖²), are recomputed from their differences:
        there the relative error is a few eps, and elsewhere the expansion's is at most
        ~2·d·eps / NEAR. Differentiable twice, like the expansion; memory is the number of near
        pairs times d."""
        a, b, sq_a, sq_b = self._centred
        d2 = self.sqdist
        near = d2 <= NEAR * (sq_a[:, None] + sq_b[None, :])
        if self.symmetric:
            near.fill_diagonal_(False)  # exactly 0 already
        i, j = near.nonzero(as_tuple=True)
        if i.numel():
            diff = self.a[i] - self.b[j]  # not the shifted copies: the shift's rounding is ~eps·‖a‖
            d2 = d2.index_put((i, j), (diff * diff).sum(1))
        return safe_sqrt(d2)


NEAR = 1.0 / 16
"""Pairs with d² ≤ NEAR·(‖a‖² + ‖b‖²) (about the batch mean) get their distance from the difference."""


class Kernel:
    """Base class. Subclasses implement :meth:`gram` and :meth:`diag`.

    Optional capabilities, used by the gradient-regularised objectives:

    - ``jacobian_weight``: the constant ``c`` with ``Σ_i ∂_i ∂_{i+D} k(x, x) = c ‖∇φ(x)‖_F²`` for
      ``k = K∘φ`` (``2 g'(0)`` for radial kernels, 1 for the linear kernel); ``None`` when no such
      constant exists (polynomial, distance).
    - :meth:`derivatives`: ``K``, ``∂K/∂a_p`` and ``∂²K/∂a_p∂b_q``;
      :meth:`projected_derivatives`: the same contracted with per-point matrices (GCMMD's
      Jacobian factors), without forming the (n, m, d, d) array where the kernel's structure allows.
    """

    def gram(self, pw: Pairwise) -> Tensor:
        raise NotImplementedError

    def diag(self, a: Tensor) -> Tensor:
        """The true diagonal ``k(a_i, a_i)``, shape (n,)."""
        raise NotImplementedError

    @property
    def jacobian_weight(self) -> float | None:
        return None

    def derivatives(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(K (n,m), dK (n,m,d) = ∂K/∂a_p, d2K (n,m,d,d) = ∂²K/∂a_p∂b_q)``."""
        raise NotImplementedError(f"{type(self).__name__} does not provide analytic derivatives")

    def projected_derivatives(self, a: Tensor, b: Tensor, la: Tensor, lb: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(K (n,m), Σ_p ∂K/∂a_p · la[i,p,s] (n,m,r), Σ_pq la[i,p,s] ∂²K/∂a_p∂b_q lb[j,q,t] (n,m,r,r'))``.

        ``la`` (n, d, r) and ``lb`` (m, d, r') are matrices per point; ``lb=None`` skips the second
        derivatives (returns ``None`` for them). This default contracts :meth:`derivatives`."""
        k0, dk, d2k = self.derivatives(a, b)
        dk_p = torch.einsum("nmp,nps->nms", dk, la)
        d2k_p = None if lb is None else torch.einsum("nps,nmpq,mqt->nmst", la, d2k, lb)
        return k0, dk_p, d2k_p

    def __call__(self, a: Tensor, b: Tensor | None = None) -> Tensor:
        return self.gram(Pairwise(a, b))

    # algebra -------------------------------------------------------------------------------
    def __add__(self, other: Any) -> "Kernel":
        if isinstance(other, (int, float)) and other == 0:
            return self  # lets sum([k1, k2]) work
        if not isinstance(other, Kernel):
            return NotImplemented
        left = self.parts if isinstance(self, Sum) else (self,)
        right = other.parts if isinstance(other, Sum) else (other,)
        return Sum(left + right)

    __radd__ = __add__

    def __mul__(self, weight: Any) -> "Kernel":
        if not isinstance(weight, (int, float)) or isinstance(weight, bool):
            return NotImplemented
        return Scaled(self, float(weight))

    __rmul__ = __mul__


# ----------------------------------------------------------------------------------------------
# radial kernels


class Radial(Kernel):
    """``K(a, b) = κ(‖a − b‖²)``; subclasses give κ and its first two derivatives."""

    def profile(self, r: Tensor, order: int = 0) -> Tensor:
        raise NotImplementedError

    def gram(self, pw: Pairwise) -> Tensor:
        return self.profile(pw.sqdist, 0)

    def diag(self, a: Tensor) -> Tensor:
        return torch.full((a.shape[0],), self.g0, dtype=a.dtype, device=a.device)

    @cached_property  # constants of the kernel, read on every SMMD step: computed once
    def g0(self) -> float:
        return float(self.profile(torch.zeros((), dtype=torch.float64), 0))

    @cached_property
    def gprime0(self) -> float:
        return -float(self.profile(torch.zeros((), dtype=torch.float64), 1))

    @property
    def jacobian_weight(self) -> float:
        return 2.0 * self.gprime0

    def derivatives(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        diff = a[:, None, :] - b[None, :, :]
        r = Pairwise(a, b).sqdist
        k0, k1, k2 = (self.profile(r, i) for i in range(3))
        dk = 2.0 * k1[..., None] * diff
        eye = torch.eye(a.shape[1], dtype=a.dtype, device=a.device)
        d2k = -4.0 * k2[..., None, None] * diff[..., :, None] * diff[..., None, :] - 2.0 * k1[..., None, None] * eye
        return k0, dk, d2k

    def projected_derivatives(self, a: Tensor, b: Tensor, la: Tensor, lb: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        # ∂K/∂a_p = 2κ'(r)(a − b)_p and ∂²K/∂a_p∂b_q = −4κ''(r)(a − b)_p(a − b)_q − 2κ'(r)δ_pq, so the
        # contractions only need (a − b)ᵀla, (a − b)ᵀlb and laᵀlb: O(n·m·d·r), never (n, m, d, d)
        r = Pairwise(a, b).sqdist
        k0, k1 = self.profile(r, 0), self.profile(r, 1)
        pa = torch.einsum("np,nps->ns", a, la)[:, None, :] - torch.einsum("mp,nps->nms", b, la)  # (a−b)ᵀla
        dk_p = 2.0 * k1[..., None] * pa
        if lb is None:
            return k0, dk_p, None
        pb = torch.einsum("np,mpt->nmt", a, lb) - torch.einsum("mp,mpt->mt", b, lb)[None]  # (a−b)ᵀlb
        gram = torch.einsum("nps,mpt->nmst", la, lb)
        k2 = self.profile(r, 2)
        d2k_p = -4.0 * k2[..., None, None] * pa[..., :, None] * pb[..., None, :] - 2.0 * k1[..., None, None] * gram
        return k0, dk_p, d2k_p


def _positive_tuple(name: str, values: Iterable[float]) -> tuple[float, ...]:
    if isinstance(values, (int, float)):
        values = (values,)
    return positive_tuple(name, tuple(float(v) for v in values))  # float(): numeric strings from YAML pass


@dataclass(frozen=True)
class RBFMixture(Radial):
    """``Σ_σ exp(−‖a − b‖² / (2σ²))``."""

    sigmas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigmas", _positive_tuple("sigmas", self.sigmas))

    def profile(self, r: Tensor, order: int = 0) -> Tensor:
        out = None
        for s in self.sigmas:
            gamma = 1.0 / (2.0 * s * s)
            term = torch.exp(-gamma * r) * (-gamma) ** order
            out = term if out is None else out + term
        return out


@dataclass(frozen=True)
class Gaussian(RBFMixture):
    """``exp(−‖a − b‖² / (2σ²))``. SMMD's default kernel (σ = 1)."""

    sigma: float = 1.0
    sigmas: tuple[float, ...] = field(init=False, repr=False, default=(1.0,))

    def __post_init__(self) -> None:
        (sigma,) = _positive_tuple("sigma", (self.sigma,))
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "sigmas", (sigma,))


@dataclass(frozen=True)
class RationalQuadratic(Radial):
    """``Σ_α (1 + ‖a − b‖² / (2α))^(−α)``."""

    alphas: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "alphas", _positive_tuple("alphas", self.alphas))

    def profile(self, r: Tensor, order: int = 0) -> Tensor:
        out = None
        for alpha in self.alphas:
            base = 1.0 + r / (2.0 * alpha)
            if order == 0:
                term = base ** (-alpha)
            elif order == 1:
                term = -0.5 * base ** (-alpha - 1.0)
            else:
                term = (alpha + 1.0) / (4.0 * alpha) * base ** (-alpha - 2.0)
            out = term if out is None else out + term
        return out


# ----------------------------------------------------------------------------------------------
# dot-product and distance kernels


@dataclass(frozen=True)
class Linear(Kernel):
    """``aᵀ b``."""

    def gram(self, pw: Pairwise) -> Tensor:
        return pw.dot

    def diag(self, a: Tensor) -> Tensor:
        return (a * a).sum(1)

    @property
    def jacobian_weight(self) -> float:
        return 1.0

    def derivatives(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n, m, d = a.shape[0], b.shape[0], a.shape[1]
        k = a @ b.T
        dk = b[None, :, :].expand(n, m, d)
        d2k = torch.eye(d, dtype=a.dtype, device=a.device).expand(n, m, d, d)
        return k, dk, d2k


@dataclass(frozen=True)
class Polynomial(Kernel):
    """``(γ aᵀb + c)^degree``; ``gamma=None`` means ``1/d`` (the KID kernel)."""

    degree: int = 3
    gamma: float | None = None
    coef0: float = 1.0

    def __post_init__(self) -> None:
        if int(self.degree) != self.degree or self.degree < 1:
            raise ValueError(f"degree must be a positive integer; got {self.degree}")
        positive("gamma", self.gamma, optional=True)

    def _gamma(self, d: int) -> float:
        return 1.0 / d if self.gamma is None else float(self.gamma)

    def gram(self, pw: Pairwise) -> Tensor:
        return (self._gamma(pw.dim) * pw.dot + self.coef0) ** self.degree

    def diag(self, a: Tensor) -> Tensor:
        return (self._gamma(a.shape[1]) * (a * a).sum(1) + self.coef0) ** self.degree

    def derivatives(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        g, p, d = self._gamma(a.shape[1]), self.degree, a.shape[1]
        base = g * (a @ b.T) + self.coef0
        k = base**p
        d1 = p * base ** (p - 1) * g  # dK/d(aᵀb) · γ
        dk = d1[..., None] * b[None, :, :]
        d2 = p * (p - 1) * base ** (p - 2) * g * g if p > 1 else torch.zeros_like(base)
        eye = torch.eye(d, dtype=a.dtype, device=a.device)
        d2k = d2[..., None, None] * b[None, :, None, :].transpose(-1, -2) * a[:, None, None, :] + d1[..., None, None] * eye
        return k, dk, d2k


@dataclass(frozen=True)
class Distance(Kernel):
    """Energy-distance kernel ``½(‖a‖ + ‖b‖ − ‖a − b‖)``; MMD² with it is the energy distance / 2."""

    def gram(self, pw: Pairwise) -> Tensor:
        return 0.5 * (safe_sqrt(pw.sqnorm_a)[:, None] + safe_sqrt(pw.sqnorm_b)[None, :] - pw.dist)

    def diag(self, a: Tensor) -> Tensor:
        return safe_sqrt((a * a).sum(1))


# ----------------------------------------------------------------------------------------------
# algebra


@dataclass(frozen=True)
class Sum(Kernel):
    """A sum of kernels, each evaluated on the same pairwise computation."""

    parts: tuple[Kernel, ...]

    def __post_init__(self) -> None:
        parts = tuple(self.parts)
        if not parts or not all(isinstance(p, Kernel) for p in parts):
            raise ValueError("Sum needs one or more Kernel objects")
        object.__setattr__(self, "parts", parts)

    def gram(self, pw: Pairwise) -> Tensor:
        out = self.parts[0].gram(pw)
        for p in self.parts[1:]:
            out = out + p.gram(pw)
        return out

    def diag(self, a: Tensor) -> Tensor:
        return sum(p.diag(a) for p in self.parts)

    @property
    def jacobian_weight(self) -> float | None:
        ws = [p.jacobian_weight for p in self.parts]
        return None if any(w is None for w in ws) else float(sum(ws))

    def derivatives(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        terms = [p.derivatives(a, b) for p in self.parts]
        return tuple(sum(t[i] for t in terms) for i in range(3))  # type: ignore[return-value]

    def projected_derivatives(self, a: Tensor, b: Tensor, la: Tensor, lb: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        terms = [p.projected_derivatives(a, b, la, lb) for p in self.parts]
        second = None if lb is None else sum(t[2] for t in terms)
        return sum(t[0] for t in terms), sum(t[1] for t in terms), second  # type: ignore[return-value]


@dataclass(frozen=True)
class Scaled(Kernel):
    """``weight · kernel`` (weight > 0 keeps it positive definite)."""

    kernel: Kernel
    weight: float

    def __post_init__(self) -> None:
        if not isinstance(self.kernel, Kernel):
            raise ValueError("Scaled needs a Kernel")
        positive("kernel weight", self.weight)

    def gram(self, pw: Pairwise) -> Tensor:
        return self.weight * self.kernel.gram(pw)

    def diag(self, a: Tensor) -> Tensor:
        return self.weight * self.kernel.diag(a)

    @property
    def jacobian_weight(self) -> float | None:
        w = self.kernel.jacobian_weight
        return None if w is None else self.weight * w

    def derivatives(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return tuple(self.weight * t for t in self.kernel.derivatives(a, b))  # type: ignore[return-value]

    def projected_derivatives(self, a: Tensor, b: Tensor, la: Tensor, lb: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        k0, dk, d2k = self.kernel.projected_derivatives(a, b, la, lb)
        return self.weight * k0, self.weight * dk, None if d2k is None else self.weight * d2k


# ----------------------------------------------------------------------------------------------
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
