r"""Spectral parametrisation with a learned scale per layer.

Arbel et al. (2018), "On gradient regularizers for MMD GANs", train "SN-"
critics with every weight reparametrised as

    W_bar = s * W / sigma_hat(W),        sigma_hat(W) = u^T W_mat v,

where ``W_mat`` is ``W`` reshaped to ``(out, rest)`` (output axis first: dim 0,
or dim 1 for ConvTranspose weights) and ``u``, ``v`` estimate its top left /
right singular vectors.  They are exact at registration and refreshed by one
power iteration (``v <- normalize(W^T u)``, ``u <- normalize(W v)``) per
forward pass in training mode, frozen in eval mode.  ``u``, ``v`` are constants
for autograd, so ``d sigma_hat / dW = u v^T``.  ``s`` is a learned scalar; with
``learn_scale=False`` it is fixed at 1 and this is SN-GAN's spectral
normalisation (Miyato et al., 2018).  For convolutions the norm of the reshaped
kernel is controlled, not the operator norm of the convolution.

:func:`layer_spectra` gives the exact singular values of every effective
weight, to monitor rank collapse (exploding condition numbers).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parameter import UninitializedParameter
from torch.nn.utils import parametrize

__all__ = ["LayerSpectrum", "ScaledSpectralNorm", "apply_spectral", "layer_spectra", "spectral_parametrize"]

_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
SUPPORTED_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, *_TRANSPOSED)


def _to_matrix(weight: Tensor, dim: int) -> Tensor:
    """Reshape ``weight`` to 2-D with axis ``dim`` (the output axis) as rows."""
    if weight.ndim == 0:
        return weight.reshape(1, 1)
    return weight.movedim(dim, 0).reshape(weight.shape[dim], -1)


def _normalize(x: Tensor, eps: float) -> Tensor:
    return F.normalize(x, dim=0, eps=eps)


def _autocast_off(x: Tensor):
    """A context that disables autocast on ``x``'s device if it is on (else does nothing)."""
    kind = x.device.type
    if kind in ("cpu", "cuda") and torch.is_autocast_enabled(kind):
        return torch.autocast(kind, enabled=False)
    return nullcontext()


def _top_singular_pair(mat: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Exact top singular vectors via ``eigh`` of the smaller Gram matrix (float64, cpu).

    Power iteration converges like ``(sigma_2 / sigma_1)^(2k)`` and random
    matrices have tiny top gaps, so 15 iterations are typically ~1% off.
    """
    m = mat.to(device="cpu", dtype=torch.float64)
    if m.shape[0] <= m.shape[1]:
        u = torch.linalg.eigh(m @ m.T).eigenvectors[:, -1]
        return u, _normalize(m.T @ u, eps)
    v = torch.linalg.eigh(m.T @ m).eigenvectors[:, -1]
    return _normalize(m @ v, eps), v


class ScaledSpectralNorm(nn.Module):
    """Parametrisation ``W -> s * W / sigma_hat(W)`` (see module docstring).

    Persistent buffers ``_u``, ``_v`` hold the left / right singular vector
    estimates.  ``init="exact"`` starts them at the exact top singular pair;
    ``init="power"`` starts from random vectors (torch's global RNG) refined
    by ``n_init_iterations`` power iterations, as in SN-GAN.  ``scale`` is an
    ``nn.Parameter`` if ``learn_scale`` else a buffer fixed at 1.
    """

    #: Each training-mode forward updates ``_u``, ``_v`` in place (read by ``igm.train.speed``: a
    #: compiled graph would save them for backward uncloned).
    updates_in_place = True

    def __init__(
        self,
        weight: Tensor,
        *,
        dim: int = 0,
        learn_scale: bool = True,
        n_power_iterations: int = 1,
        init: str = "exact",
        n_init_iterations: int = 15,
        eps: float = 1e-12,
    ) -> None:
        super().__init__()
        if n_power_iterations < 1 or n_init_iterations < 0:
            raise ValueError("need n_power_iterations >= 1 and n_init_iterations >= 0")
        if init not in ("exact", "power"):
            raise ValueError(f"init must be 'exact' or 'power', got {init!r}")
        self.dim = dim % max(weight.ndim, 1)
        self.n_power_iterations = n_power_iterations
        self.eps = eps
        self.learn_scale = learn_scale
        one = torch.ones((), dtype=weight.dtype, device=weight.device)
        if learn_scale:
            self.scale = nn.Parameter(one)
        else:
            self.register_buffer("scale", one)
        mat = _to_matrix(weight.detach(), self.dim)
        if init == "exact":
            u, v = _top_singular_pair(mat, eps)
        else:
            u, v = (_normalize(torch.randn(n, dtype=mat.dtype, device=mat.device), eps) for n in mat.shape)
        self.register_buffer("_u", u.to(dtype=weight.dtype, device=weight.device))
        self.register_buffer("_v", v.to(dtype=weight.dtype, device=weight.device))
        if init == "power":
            self._power_iteration(mat, n_init_iterations)

    @torch.no_grad()
    def _power_iteration(self, mat: Tensor, n_iterations: int) -> None:
        for _ in range(n_iterations):
            self._v.copy_(_normalize(torch.mv(mat.t(), self._u), self.eps))
            self._u.copy_(_normalize(torch.mv(mat, self._v), self.eps))

    def sigma(self, weight: Tensor) -> Tensor:
        """``u^T W v`` with the stored vectors (differentiable in ``weight``)."""
        mat = _to_matrix(weight, self.dim)
        # Clones: later in-place power iterations must not invalidate this graph.
        u = self._u.clone(memory_format=torch.contiguous_format)
        v = self._v.clone(memory_format=torch.contiguous_format)
        return torch.dot(u, torch.mv(mat, v)).clamp_min(self.eps)

    def forward(self, weight: Tensor) -> Tensor:
        # sigma_hat and the power iteration stay float32 under autocast (on CUDA ``mv`` would run in
        # bf16): a few matrix-vector products per layer, nothing to gain, and u, v accumulate.
        with _autocast_off(weight):
            if self.training:
                self._power_iteration(_to_matrix(weight.detach(), self.dim), self.n_power_iterations)
            return weight * (self.scale / self.sigma(weight))

    def right_inverse(self, value: Tensor) -> Tensor:
        # Assigning ``module.weight = X`` stores X as the raw weight; the layer
        # then uses s * X / sigma(X).
        return value

    def extra_repr(self) -> str:
        return f"dim={self.dim}, learn_scale={self.learn_scale}, n_power_iterations={self.n_power_iterations}"


def _output_dim(module: nn.Module, name: str) -> int:
    return 1 if isinstance(module, _TRANSPOSED) and name == "weight" else 0


def spectral_parametrize(
    module: nn.Module,
    *,
    learn_scale: bool = True,
    name: str = "weight",
    n_power_iterations: int = 1,
    init: str = "exact",
    n_init_iterations: int = 15,
) -> nn.Module:
    """Register :class:`ScaledSpectralNorm` on ``module.<name>``; return ``module``.

    Raises ``ValueError`` if the module has no such (initialised) parameter or
    it is already parametrised, ``TypeError`` if the module is not a
    Linear / Conv{1,2,3}d / ConvTranspose{1,2,3}d layer.
    """
    kind, weight = type(module).__name__, getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"{kind} has no tensor parameter {name!r} to spectrally parametrise")
    if not isinstance(module, SUPPORTED_LAYERS):
        supported = ", ".join(c.__name__ for c in SUPPORTED_LAYERS)
        raise TypeError(f"spectral_parametrize supports {supported}; got {kind}")
    if isinstance(weight, UninitializedParameter):
        raise ValueError(f"{kind}.{name} is uninitialised (lazy module); run a forward pass first")
    if parametrize.is_parametrized(module, name):
        raise ValueError(f"{kind}.{name} is already parametrised")
    parametrisation = ScaledSpectralNorm(
        weight,
        dim=_output_dim(module, name),
        learn_scale=learn_scale,
        n_power_iterations=n_power_iterations,
        init=init,
        n_init_iterations=n_init_iterations,
    )
    parametrize.register_parametrization(module, name, parametrisation)
    return module


def apply_spectral(model: nn.Module, *, learn_scale: bool = True) -> nn.Module:
    """Parametrise the weight of every Linear / Conv / ConvTranspose submodule.

    Layers whose weight is already parametrised are left untouched.
    Returns ``model`` (modified in place).
    """
    for module in list(model.modules()):
        if isinstance(module, SUPPORTED_LAYERS) and not parametrize.is_parametrized(module, "weight"):
            spectral_parametrize(module, learn_scale=learn_scale)
    return model


@dataclass(frozen=True, eq=False)
class LayerSpectrum:
    """Exact singular values of a layer's effective (2-D reshaped) weight."""

    singular_values: Tensor  # descending, float64, cpu, detached
    sigma_max: float
    sigma_min: float
    condition_number: float  # sigma_max / sigma_min (inf if sigma_min == 0)
    scale: float


def _find_parametrisation(module: nn.Module) -> ScaledSpectralNorm | None:
    if not parametrize.is_parametrized(module, "weight"):
        return None
    for p in module.parametrizations["weight"]:
        if isinstance(p, ScaledSpectralNorm):
            return p
    return None


@contextmanager
def _frozen_parametrisations(module: nn.Module) -> Iterator[None]:
    """Evaluate parametrisations in eval mode so reading the weight has no side effects."""
    if not parametrize.is_parametrized(module):
        yield
        return
    states = [(m, m.training) for m in module.parametrizations.modules()]
    try:
        for m, _ in states:
            m.training = False
        yield
    finally:
        for m, mode in states:
            m.training = mode


def _spectrum(module: nn.Module, scale: float) -> LayerSpectrum:
    with torch.no_grad(), _frozen_parametrisations(module):
        weight = module.weight.detach()
    mat = _to_matrix(weight.to(device="cpu", dtype=torch.float64), _output_dim(module, "weight"))
    svals = torch.linalg.svdvals(mat)
    s_max, s_min = float(svals[0]), float(svals[-1])
    # numerically rank-deficient (NumPy's matrix_rank rule): the smallest singular value of a
    # singular matrix comes out as 0 or as ~eps·s_max depending on the LAPACK build
    rank_tol = max(mat.shape) * torch.finfo(torch.float64).eps * s_max
    cond = s_max / s_min if s_min > rank_tol else float("inf")
    return LayerSpectrum(svals, s_max, s_min, cond, scale)


def layer_spectra(model: nn.Module, *, include_plain: bool = False) -> dict[str, LayerSpectrum]:
    """Map qualified layer names to the exact spectrum of their effective weight.

    Parametrised layers report the weight the layer uses (``s W / sigma_hat``,
    read with the stored ``u``, ``v``: no power iteration is run, so calling
    this does not change training state) and their scale ``s``.  With
    ``include_plain`` unparametrised Linear / Conv layers are included too,
    using their raw weight and ``scale=1.0``.
    """
    spectra: dict[str, LayerSpectrum] = {}
    for qualname, module in model.named_modules():
        param = _find_parametrisation(module)
        if param is not None:
            spectra[qualname] = _spectrum(module, float(param.scale.detach()))
        elif include_plain and isinstance(module, SUPPORTED_LAYERS):
            spectra[qualname] = _spectrum(module, 1.0)
    return spectra
