"""The objective interface and its registry.

An objective holds hyperparameters (dataclass fields) and computes losses; it never calls
``.backward()``, ``.item()`` or an optimiser. ``critic_loss(critic, real, fake)`` and
``generator_loss(critic, real, fake)`` each return ``(loss, stats)``: ``loss`` a 0-d tensor to
minimise, ``stats`` a dict of detached 0-d tensors for logging.

Flags the training loop reads:

- ``uses_critic``: False for MMD-nets (no critic at all);
- ``scalar_critic``: the critic must output one scalar per sample (else any (n, d) features);
- ``simultaneous``: True for GRAM — one forward pass, both losses from :meth:`joint_loss`;
- ``constraint``: a parameter constraint applied after each critic step (weight clipping);
- :meth:`after_critic_step`: applies the constraint and updates objective state (Sobolev's
  Lagrange multiplier). State round-trips through :meth:`state_dict` / :meth:`load_state_dict`.

Needs the speed switches read (``igm.train.speed``; ``tests/objectives/test_declared_needs.py``
checks each registered objective's declaration against what its losses do):

- ``double_backward``: a loss differentiates a function of the critic's input gradients (a
  gradient penalty, a Jacobian norm), so the critic cannot be compiled. A property where it depends
  on hyperparameters (``mmd-gan-gp`` with ``gp_weight=0``). Default True: an objective that says
  nothing is never compiled wrongly.
- ``bf16_forwards``: ``train.amp=auto`` may run the networks' forwards in bf16 (the losses stay
  float32); ``speed_note`` says why, or why not, in one line. Default False (float32).
- ``generator_reads_real``: the generator loss depends on the real batch (the MMD family); False
  for losses of the critic's values at the fakes alone (GAN, WGAN, LGAN, Sobolev).

A renamed hyperparameter keeps its old spelling for one release through ``aliases = {"old": "new"}``
on the class (:mod:`igm.registry`): ``get(name, old=...)``, a config's ``objective.params`` and a
direct ``Cls(old=...)`` all rename it with a ``DeprecationWarning``.

Data-parallel training: :meth:`Objective.distribute` switches an objective to cross-process
estimates (``torch.distributed`` must be initialised). With ``"block"`` each process estimates its
loss on its own batch (the mean of per-process estimates is what gradient averaging optimises);
with ``"gathered"`` (objectives with ``gathers = True``: the MMD family) the critic features are
all-gathered so that every process computes the estimate of the global batch. In both modes
batch-level normalisers — SMMD's E_μ ‖∇φ‖², Sobolev's constraint Ω — are averaged over processes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from igm.checks import check_batch_size, check_finite, check_pair, critic_features, positive  # critic_features: re-exported
from igm.mmd import gather_ranks, mean_ranks
from igm.registry import Registry, construct, hyperparameter_names, naming_aliases, resolve_aliases

__all__ = ["Objective", "WeightClip", "registry", "register", "get", "names", "Stats", "critic_features"]

Stats = dict[str, Tensor]


@dataclass(frozen=True)
class WeightClip:
    """Clip every critic parameter to [−c, c] (WGAN, MMD-GAN)."""

    c: float = 0.01

    def __post_init__(self) -> None:
        object.__setattr__(self, "c", positive("weight clipping bound c", self.c))

    @torch.no_grad()
    def apply(self, module: nn.Module) -> None:
        for p in module.parameters():
            p.clamp_(-self.c, self.c)


def scalar_output(out: Tensor) -> Tensor:
    """(n,) from a scalar-per-sample critic output (n,) or (n, 1)."""
    if out.shape[1] != 1:
        raise ValueError(f"this objective needs a critic with one scalar output per sample; got {out.shape[1]} outputs")
    return out.reshape(-1)  # a view with a free backward (out[:, 0] allocates in backward)


class _ObjectiveType(type):
    """The type of objective classes: a constructor call renames the deprecated spellings of
    ``cls.aliases`` (as :func:`get` does), so ``LipschitzGAN(lam=0.1)`` keeps working."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if not any(key in cls.aliases for key in kwargs):
            return super().__call__(*args, **kwargs)
        kwargs, renamed = resolve_aliases(cls, kwargs, what=f"objective '{cls.name or cls.__name__}'")
        with naming_aliases(renamed):
            return super().__call__(*args, **kwargs)


@dataclass
class Objective(metaclass=_ObjectiveType):
    """Base class of every objective (a dataclass; subclasses add hyperparameter fields)."""

    check_finite: bool = field(default=False, kw_only=True)

    name: ClassVar[str] = ""
    aliases: ClassVar[dict[str, str]] = {}  # deprecated spelling → hyperparameter, e.g. {"lam": "gp_weight"}
    uses_critic: ClassVar[bool] = True
    simultaneous: ClassVar[bool] = False
    scalar_critic: ClassVar[bool] = False  # True: the critic must output one scalar per sample
    min_batch: ClassVar[int] = 2
    gathers: ClassVar[bool] = False  # True: supports the full-batch ("gathered") data-parallel estimate
    double_backward: ClassVar[bool] = True  # a loss differentiates the critic's input gradients
    bf16_forwards: ClassVar[bool] = False  # train.amp=auto may run the forwards in bf16
    generator_reads_real: ClassVar[bool] = True  # the generator loss depends on the real batch
    speed_note: ClassVar[str] = ""  # one line for the speed log: why bf16 is safe, or not

    _parallel: ClassVar[tuple[str, Any] | None] = None  # (estimator, process group) once distributed

    # -- interface -----------------------------------------------------------------------------
    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        raise NotImplementedError

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        raise NotImplementedError

    def joint_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Stats]:
        """``(critic_loss, generator_loss, stats)`` from one forward pass (simultaneous objectives)."""
        raise NotImplementedError(f"objective '{self.name}' is not simultaneous; call critic_loss / generator_loss")

    @property
    def constraint(self) -> WeightClip | None:
        return None

    def after_critic_step(self, critic: nn.Module, stats: Stats) -> None:
        """Called by the loop after each critic optimiser step."""
        if self.constraint is not None:
            self.constraint.apply(critic)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"objective '{self.name}' has no state; got keys {sorted(state)}")

    def hyperparameters(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    def distribute(self, estimator: str = "block", group: Any = None) -> "Objective":
        """Estimate across the processes of ``group`` (default: the world) in data-parallel training:
        ``"block"`` (each process's own batch) or ``"gathered"`` (the global batch; MMD family only).
        Every process must call the losses in the same order with equal batch sizes. Returns self."""
        if estimator not in ("block", "gathered"):
            raise ValueError(f"unknown data-parallel estimator {estimator!r}; valid: 'block', 'gathered'")
        if estimator == "gathered" and not self.gathers:
            raise ValueError(
                f"objective '{self.name}' has no full-batch ('gathered') estimator: only the MMD family "
                f"({', '.join(n for n in names() if registry.get(n).gathers)}) has one; use 'block' (for a loss that "
                "is a mean over samples the two are the same estimate)"
            )
        self._parallel = (estimator, group)
        return self

    def _across(self, *features: Tensor) -> tuple[Tensor, ...]:
        """The global batch's rows of each tensor with the gathered estimator; unchanged otherwise."""
        if self._parallel is None or self._parallel[0] != "gathered":
            return features
        group = self._parallel[1]
        first = features[0]
        if len(features) == 1 or any(f.shape[1:] != first.shape[1:] or f.dtype != first.dtype for f in features):
            return tuple(gather_ranks(f, group) for f in features)
        # one all-gather for all of them: rank r contributes cat(f_r...), regrouped per tensor after
        sizes = [f.shape[0] for f in features]
        both = gather_ranks(torch.cat(features, 0), group)
        per_rank = both.reshape(-1, sum(sizes), *first.shape[1:])  # (W, Σ sizes, ...)
        return tuple(p.reshape(-1, *first.shape[1:]) for p in per_rank.split(sizes, dim=1))

    def _rank_mean(self, value: Tensor) -> Tensor:
        """The mean over processes of a per-process batch mean (identity on one process)."""
        if self._parallel is None:
            return value
        return mean_ranks(value, self._parallel[1])

    # -- helpers for subclasses ----------------------------------------------------------------
    def _check(self, real: Tensor, fake: Tensor) -> None:
        check_pair(real, fake)
        check_batch_size(min(real.shape[0], fake.shape[0]), self.min_batch, f"objective '{self.name}'")
        if self.check_finite:
            check_finite(real, fake, what=f"objective '{self.name}' batch")

    @staticmethod
    def _stats(**values: Tensor | float) -> Stats:
        return {k: (v.detach() if isinstance(v, Tensor) else torch.tensor(float(v))) for k, v in values.items()}


def _validate(name: str, cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Objective) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"objective '{name}' must be a dataclass subclassing igm.objectives.Objective")
    for method in ("critic_loss", "generator_loss"):
        if getattr(cls, method) is getattr(Objective, method) and cls.uses_critic:
            raise TypeError(f"objective '{name}' must implement {method}")
    if cls.simultaneous and cls.joint_loss is Objective.joint_loss:
        raise TypeError(f"simultaneous objective '{name}' must implement joint_loss")
    fields = hyperparameter_names(cls)
    for old, new in cls.aliases.items():
        if new not in fields or old in fields:
            raise TypeError(f"objective '{name}': alias {old!r} → {new!r} must rename a non-field to a hyperparameter")


registry: Registry[type] = Registry("objective", validator=_validate)


def register(name: str):
    """Class decorator: ``@register("smmd")`` sets ``cls.name`` and adds it to the registry."""

    def add(cls: type) -> type:
        registry.register(name, cls)
        cls.name = name
        return cls

    return add


def names() -> list[str]:
    return registry.names()


def get(name: str, **hyperparameters: Any) -> Objective:
    """Build an objective by short name; unknown hyperparameters are a ValueError."""
    return construct(registry.get(name), hyperparameters, what=f"objective '{name}'")
