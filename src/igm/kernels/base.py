"""The kernel base classes, and the sum and scalar multiple of kernels."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from igm.checks import positive
from igm.kernels.pairwise import Pairwise

__all__ = ["Kernel", "Radial", "Sum", "Scaled"]


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
