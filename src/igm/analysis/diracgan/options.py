"""The DiracGAN figure's options (``igm figure diracgan key=value ...``).

``methods`` names the panels, in order, and the hyperparameters of each: a list of names (the
figure's defaults, :data:`igm.analysis.diracgan.methods.METHODS`) or a mapping from name to
hyperparameters, which go to ``igm.objectives.get`` (or the figure's own objective) on top of those
defaults; a name mapped to nothing takes the defaults::

    igm figure diracgan 'methods={mmd, smmd: {lam: 2}, wgan-gp: {lam: 10}}'

The figure's own settings (grids, steps, learning rate, ...) are the other options. The old
per-method options (``smmd_lam``, ``gcmmd_lam``, ``wgan_gp_lam``, ``lip_constant``, ...) are
deprecated aliases for one release: given, they set the hyperparameter in ``methods`` (over a value
given there) with a DeprecationWarning that spells the ``methods`` value to write instead. After construction each
holds the value in use (for old readers of the options and of the figure's JSON).
"""

from __future__ import annotations

import re
import types
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

from igm.analysis.diracgan.methods import ALL_METHODS, METHODS

__all__ = ["DiracFigureOptions", "DEPRECATED", "validate"]

#: old option → (the methods it set, the hyperparameter's name there)
DEPRECATED: dict[str, tuple[tuple[str, ...], str]] = {
    "smmd_lam": (("smmd",), "rkhs_weight"),
    "smmd_grad_weight": (("smmd",), "grad_weight"),
    "gcmmd_lam": (("gcmmd", "gcmmd-p"), "rkhs_weight"),
    "gcmmd_points": (("gcmmd",), "points"),
    "gp_weight": (("mmd-gp", "mmd-gp-unif"), "gp_weight"),
    "sobolev_rho": (("sobolev-mmd",), "rho"),
    "wgan_clip": (("wgan",), "clip"),
    "wgan_gp_lam": (("wgan-gp",), "gp_weight"),
    "lip_constant": (("lipmmd",), "lipschitz"),
    "lip_rkhs_bound": (("lipmmd",), "rkhs_bound"),
    "lip_points": (("lipmmd",), "points"),
    "fd_step": (("lipmmd",), "fd_step"),
}


def _deprecated() -> Any:
    return field(default=None, metadata={"deprecated": "methods"})


@dataclass
class DiracFigureOptions:
    methods: tuple[str, ...] | dict[str, dict[str, Any] | None] = ALL_METHODS  # panels, in order, with hyperparameters
    grid: int = 20  # field points per axis (an even count keeps θ = 0, ψ = 0 off the grid)
    lip_grid: int = 8  # field points per axis for lipmmd (6 cvxpy solves per point)
    theta_range: tuple[float, ...] = (-3.0, 3.0)
    psi_range: tuple[float, ...] = (-3.0, 3.0)
    batch: int = 16  # identical points per batch (random interpolates of mmd-gp-unif: a 16-sample estimate)
    start_theta: float = 2.0  # the common start of every method's trajectory
    start_psi: float = 2.5
    steps: int = 200  # alternating gradient steps (dirac.train) from the common start
    lr: float = 0.1  # SGD learning rate of both players (MMD's θ-stiffness 2ψ² needs lr < 1/ψ²)
    extra_starts: tuple[float, ...] = (0.5, 0.1, -2.5, 0.5, -1.0, -2.5)  # (θ, ψ) pairs, short trajectories
    extra_steps: int = 150  # steps of the extra trajectories (not drawn for lipmmd)
    critic_theta: float = 2.0  # θ of the critic panel (figure 1 c)
    critic_points: int = 601  # x points of the critic panel
    sup_thetas: int = 13  # θ values (0 .. max θ) of the optimised-distance panel (figure 1 d)
    sup_psis: int = 40  # ψ values of the sup over ψ (log-spaced in [0.02, sup_psi_max])
    sup_psi_max: float = 30.0
    lip_sup_psis: int = 10  # ψ values of the sup for lipmmd, with ψθ ≤ lip_max_psi_theta
    lip_max_psi_theta: float = 8.0  # kernels sharper than this are under-resolved by the constraint grid
    seed: int = 0
    dpi: int = 110
    # deprecated aliases (DEPRECATED): set the hyperparameter in `methods`
    smmd_lam: float | None = _deprecated()
    smmd_grad_weight: float | None = _deprecated()
    gcmmd_lam: float | None = _deprecated()
    gcmmd_points: int | None = _deprecated()
    gp_weight: float | None = _deprecated()
    sobolev_rho: float | None = _deprecated()
    wgan_clip: float | None = _deprecated()
    wgan_gp_lam: float | None = _deprecated()
    lip_constant: float | None = _deprecated()
    lip_rkhs_bound: float | None = _deprecated()
    lip_points: int | None = _deprecated()
    fd_step: float | None = _deprecated()

    def __post_init__(self) -> None:
        self.methods = _methods(self.methods)
        moved = {old: getattr(self, old) for old in DEPRECATED
                 if getattr(self, old) is not None and getattr(self, old) != _in_use(self.methods, old)}
        for old, value in moved.items():
            _move(self.methods, old, value)
        if moved:
            warnings.warn(_deprecation_message(self.methods, moved), DeprecationWarning, stacklevel=3)
        for old in DEPRECATED:
            setattr(self, old, _in_use(self.methods, old))

    def hyperparameters(self, name: str) -> dict[str, Any]:
        """The hyperparameters method ``name`` runs with: the figure's defaults, then ``methods``."""
        return {**METHODS[name].defaults, **self.methods.get(name, {})}


# ------------------------------------------------------------------------------------------
# the methods option


_YAML11_FLOAT = re.compile(r"[+-]?(\d+|\d*\.\d+)[eE][+-]?\d+")  # YAML 1.1 reads 1e-3 (no dot) as a string


def _value(value: Any) -> Any:
    return float(value) if isinstance(value, str) and _YAML11_FLOAT.fullmatch(value) else value


def _methods(value: Any) -> dict[str, dict[str, Any]]:
    """``methods`` as {name: {hyperparameter: value}}, names and hyperparameter names checked."""
    if isinstance(value, str):
        value = (value,)
    if isinstance(value, (list, tuple)):
        names = list(value)
        if not all(isinstance(n, str) for n in names):
            raise ValueError(f"methods: a list holds method names only; got {names!r} "
                             "(for hyperparameters write a mapping, e.g. methods={smmd: {lam: 2}})")
        if len(set(names)) != len(names):
            raise ValueError(f"methods are repeated: {names}")
        value = dict.fromkeys(names)
    if not isinstance(value, Mapping):
        raise ValueError(f"methods must be a list of method names or a mapping {{name: {{hyperparameter: value}}}}; "
                         f"got {value!r}")
    out: dict[str, dict[str, Any]] = {}
    for name, params in value.items():
        if name not in METHODS:
            raise ValueError(f"unknown DiracGAN method {name!r}; valid: {', '.join(METHODS)}")
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ValueError(f"methods: {name} must map to hyperparameters {{name: value}}; got {params!r}")
        _check_names(name, params)
        out[name] = {str(k): _value(v) for k, v in params.items()}
        for key, v in out[name].items():
            _check_number(name, key, v)
    return out


def _check_names(name: str, params: Mapping[str, Any]) -> None:
    method = METHODS[name]
    valid = method.hyperparameters()
    listed = ", ".join(valid) if valid else "(none)"
    for key in params:
        if key in method.fixed:
            raise ValueError(f"hyperparameter {key!r} of DiracGAN method {name!r} is fixed by the figure; valid: {listed}")
        if key not in valid:
            raise ValueError(f"unknown hyperparameter {key!r} for DiracGAN method {name!r}; valid: {listed}")


def _check_number(name: str, key: str, value: Any) -> None:
    """A hyperparameter the objective declares a number (``float``, ``int``, or either ``| None``)."""
    try:
        hint = typing.get_type_hints(METHODS[name].objective_class()).get(key)
    except (NameError, TypeError):  # an annotation that does not resolve here: the objective checks it
        return
    args = set(typing.get_args(hint)) if typing.get_origin(hint) in (typing.Union, types.UnionType) else {hint}
    if not args or not args <= {float, int, type(None)} or (value is None and type(None) in args):
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"methods: {name}'s {key} must be a number; got {value!r}")


def _in_use(methods: dict[str, dict[str, Any]], old: str) -> Any:
    """The value a deprecated option stands for: its hyperparameter in the first of its methods drawn
    (the figure's default when none is)."""
    targets, key = DEPRECATED[old]
    drawn = [t for t in targets if t in methods] or [targets[0]]
    return methods.get(drawn[0], {}).get(key, METHODS[drawn[0]].defaults[key])


def _move(methods: dict[str, dict[str, Any]], old: str, value: Any) -> None:
    """Set a deprecated option's hyperparameter in each of its methods that is drawn. It wins over
    ``methods``, whose value may come from the quick mode (``--quick gcmmd_points=8`` still works)."""
    targets, key = DEPRECATED[old]
    for name in targets:
        if name in methods:
            methods[name][key] = value


def _flow(methods: dict[str, dict[str, Any]]) -> str:
    """``methods`` as a YAML flow mapping, for the command line."""

    def scalar(v: Any) -> str:
        return {True: "true", False: "false", None: "null"}.get(v, str(v)) if not isinstance(v, float) else repr(v)

    items = [name if not params else f"{name}: {{{', '.join(f'{k}: {scalar(v)}' for k, v in params.items())}}}"
             for name, params in methods.items()]
    return "{" + ", ".join(items) + "}"


def _deprecation_message(methods: dict[str, dict[str, Any]], moved: dict[str, Any]) -> str:
    names = ", ".join(moved)
    unused = [old for old in moved if not any(t in methods for t in DEPRECATED[old][0])]
    note = f" ({', '.join(unused)}: no method drawn uses it)" if unused else ""
    return (f"option{'s' if len(moved) > 1 else ''} {names} {'are' if len(moved) > 1 else 'is'} deprecated{note}; "
            f"give the hyperparameters in methods instead: methods={_flow(methods)}")


# ------------------------------------------------------------------------------------------
# checks before the figure runs


def validate(opts: DiracFigureOptions) -> None:
    """Every check the options allow before any number is computed; builds each method's objective."""
    from igm.analysis.diracgan.methods import build_objective

    if not opts.methods:
        raise ValueError("methods must name at least one method")
    for name in opts.methods:
        build_objective(name, opts)  # a bad hyperparameter value names the method
    for key in ("theta_range", "psi_range"):
        lo_hi = getattr(opts, key)
        if len(lo_hi) != 2 or not lo_hi[0] < lo_hi[1]:
            raise ValueError(f"{key} must be [low, high] with low < high; got {list(lo_hi)}")
    for key in ("grid", "lip_grid", "batch", "steps", "critic_points", "sup_thetas", "sup_psis", "lip_sup_psis"):
        if getattr(opts, key) < 2:
            raise ValueError(f"{key} must be at least 2")
    if opts.extra_steps < 0:
        raise ValueError("extra_steps must be non-negative")
    if len(opts.extra_starts) % 2:
        raise ValueError("extra_starts must hold (θ, ψ) pairs: an even count of numbers")
    for key in ("lr", "sup_psi_max", "lip_max_psi_theta", "critic_theta"):
        if not getattr(opts, key) > 0:
            raise ValueError(f"{key} must be positive")
