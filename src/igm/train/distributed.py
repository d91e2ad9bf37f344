"""Data-parallel training: ``igm train`` under ``torchrun`` (one or several nodes).

A process started by ``torchrun`` finds ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` in its environment; :func:`setup` then initialises the default process group (NCCL
for CUDA devices, gloo for CPU; ``dist.backend``) and :meth:`DistContext.attach` adapts the built
:class:`~igm.train.run.Run`. Without that environment (``WORLD_SIZE`` unset or 1) nothing here runs
and training is exactly the single-process loop. A process group the caller initialised already is
used as it is.

How the models are trained (the full account: ``docs/distributed.md``)
------------------------------------------------------------------------
- The generator's training call is wrapped in ``DistributedDataParallel``; the run keeps the
  unwrapped module, so checkpoints, EMA, samples and evaluation never see DDP.
- The critic is not wrapped: its losses differentiate input gradients (double backward) and run it
  several times per step, which DDP's reducer does not support. After each critic backward its
  gradients are averaged with one flat all-reduce (:meth:`DistContext.average_gradients`), which
  also carries the loss, so that every rank decides on a non-finite loss alike. GRAM's simultaneous
  step takes both gradients with ``torch.autograd.grad`` and averages both by hand.
- Weights start identical (one seed, then a broadcast) and stay so (the same averaged gradients);
  rank 0's buffers are broadcast again at every log step. Objective state (Sobolev's multiplier)
  follows from values the objective already averages over ranks.

MMD estimators across ranks (``dist.mmd_estimator``)
----------------------------------------------------
- ``block`` (default): each rank's unbiased estimate on its own batch of ``train.batch_size``; the
  averaged gradients are those of the mean of the W per-rank estimates (the block estimator of
  :func:`igm.mmd.mmd2_block`). Cheap (O(B²) kernel entries per rank, no extra communication),
  unbiased, with more variance than the full-batch estimate: what the SMMD authors ran on ImageNet
  with 3 GPUs.
- ``gathered``: the critic features are all-gathered with a differentiable all-gather, so every rank
  computes the estimate of the global batch of W·B samples, exactly the single-process estimator on
  the concatenated batch; its gradient reaches each rank's own samples. The all-gather's backward
  sums the gradients of all ranks (W × the gradient of the one global loss), and gradient averaging
  divides by W: the parameter gradients are exactly the single-process ones. Cost: O((W·B)²) kernel
  entries on every rank and an all-gather of the features per loss.
- In both modes batch-level normalisers (SMMD's and SWGAN's E_μ ‖∇φ‖², Sobolev's Ω) are averaged
  over ranks, differentiably.

Data, seeds, files
------------------
- Finite datasets are split into W disjoint shares by one permutation of the run seed
  (:class:`RankShard`); each rank samples its batches from its share. Toy (infinite) streams and the
  latent noise come from per-rank seeds.
- Rank 0 keeps the single-process random streams (seeded by ``train.seed``); rank r > 0 is seeded
  with :func:`rank_seed` (``numpy.random.SeedSequence([seed, r, step, salt])``).
- Only rank 0 writes (``run.writes``): metrics.jsonl, TensorBoard, the progress bar, checkpoints,
  sample grids and summary.json. Training statistics are averaged over ranks at log time; evaluation
  (:mod:`igm.metrics.pipeline`, the same path as on one process) splits the generated samples over
  ranks and gathers their features in rank order, which gives the single-process numbers.
- The context is the run's gradient-sync strategy (``run.sync``; :mod:`igm.train.step`): it
  averages gradients, agrees on non-finite losses and turns a failed factorisation on one rank
  into NaN losses on all, so that every rank rolls back together.
- Checkpoints hold the unwrapped state_dicts and rank 0's random states, so a checkpoint written by
  N ranks resumes on M ranks or on one process. On resume rank 0 restores the saved random states
  and every other rank reseeds from (seed, rank, step).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from igm.train.config import ConfigError, RunConfig
from igm.train.shard import RankShard, _is_finite_dataset
from igm.train.step import FiniteGuard

__all__ = [
    "TORCHRUN_ENV",
    "launched",
    "env_rank",
    "is_main",
    "rank_seed",
    "setup",
    "shutdown",
    "DistContext",
    "RankShard",
]

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
_OWNED = False  # True once this module initialised the default process group (then shutdown() ends it)


def launched() -> bool:
    """True in a process started by torchrun with more than one process in all."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_rank() -> int:
    """The global rank torchrun gave this process (0 without torchrun)."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Rank 0 of an initialised process group, or of the torchrun environment; True on one process."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return env_rank() == 0


def rank_seed(seed: int, rank: int, step: int = 0, salt: int = 0) -> int:
    """A well-mixed 63-bit seed for process ``rank`` at ``step`` (``salt``: e.g. a rollback count)."""
    words = [int(v) % 2**64 for v in (seed, rank, step, salt)]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _local_device(device: torch.device, local_rank: int) -> torch.device:
    """``cuda`` without an index becomes ``cuda:LOCAL_RANK``; an explicit index is kept."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank)
    return device


def setup(cfg: RunConfig, device: torch.device) -> "DistContext | None":
    """The data-parallel context of this process, or None for a plain single-process run.

    Uses an initialised default process group with more than one process, else initialises one from
    torchrun's environment (``init_method="env://"``) when ``WORLD_SIZE > 1``."""
    global _OWNED
    initialised = dist.is_available() and dist.is_initialized()
    if initialised and dist.get_world_size() == 1:
        return None
    if not initialised and not launched():
        return None
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank() if initialised else 0))
    device = _local_device(device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if cfg.dist.sync_batchnorm and device.type != "cuda":
        raise ConfigError("dist.sync_batchnorm needs CUDA devices (PyTorch's SyncBatchNorm has no CPU kernel)")
    if not initialised:
        missing = [k for k in TORCHRUN_ENV if k not in os.environ]
        if missing:
            raise ConfigError(
                f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} not set: start distributed runs "
                "with torchrun (see docs/distributed.md)"
            )
        backend = cfg.dist.backend
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl" and device.type != "cuda":
            raise ConfigError("dist.backend=nccl needs CUDA devices; use train.device=cuda or dist.backend=gloo")
        dist.init_process_group(backend=backend, init_method="env://")
        _OWNED = True
    return DistContext(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank, device=device,
                       backend=str(dist.get_backend()))


def shutdown(ctx: "DistContext | None" = None) -> None:
    """End the process group if :func:`setup` created it (a local operation: after training no
    collective is pending, and a rank that failed must not wait for the others). ``ctx``, the run's
    context, first drops its DDP wrapper (:meth:`DistContext.release`)."""
    global _OWNED
    if ctx is not None:
        ctx.release()
    if _OWNED and dist.is_initialized():
        dist.destroy_process_group()
    _OWNED = False


# ----------------------------------------------------------------------------------------------
# model and objective adapters


class _Call(nn.Module):
    """What DDP wraps: forward is ``call`` (the generator itself, or the speed layer's bf16 /
    channels_last / compiled call of it) and the parameters are the generator's."""

    def __init__(self, module: nn.Module, call: Any):
        super().__init__()
        self.module = module
        self.__dict__["call"] = call  # not registered: it is the module, or a wrapper of it

    def forward(self, z: Tensor) -> Tensor:
        return self.call(z)


def _nan_like(t: Tensor) -> Tensor:
    """A NaN loss connected to ``t``'s graph (every parameter upstream gets a NaN gradient)."""
    if t.requires_grad:
        return t.float().sum() * float("nan")
    return torch.full((), float("nan"), device=t.device, requires_grad=True)


# ----------------------------------------------------------------------------------------------
# the context


@dataclass
class DistContext:
    """This process's place in a data-parallel run, and the operations the loop needs."""

    rank: int
    world: int
    local_rank: int
    device: torch.device
    backend: str
    ddp: nn.Module | None = None  # DistributedDataParallel around the generator's training call (None: GRAM)
    run_dir: Path | None = None  # the run directory (rank 0 alone writes to it)
    estimator: str = "block"
    guard: FiniteGuard = field(default_factory=FiniteGuard)  # the mean losses, checked once per generator step

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def comm_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")

    def describe(self, cfg: RunConfig) -> str:
        b = cfg.train.batch_size
        return (f"data-parallel training on {self.world} processes ({self.backend}); batch {b} per process, "
                f"{b * self.world} in all; MMD estimator across processes: {self.estimator}")

    # -- building ------------------------------------------------------------------------------
    def attach(self, run: Any) -> None:
        """Adapt a freshly built run: objective, model wrapping, data shares, seeds, evaluation, files."""
        cfg = run.config
        try:
            run.objective.distribute(cfg.dist.mmd_estimator)
        except ValueError as err:
            raise ConfigError(f"dist.mmd_estimator: {err}") from None
        self.estimator = cfg.dist.mmd_estimator
        if cfg.dist.sync_batchnorm:
            run.generator = nn.SyncBatchNorm.convert_sync_batchnorm(run.generator)  # same Parameter objects
        for module in (run.critic, run.ema) + ((run.generator,) if run.objective.simultaneous else ()):
            if module is not None:
                self.broadcast(module, buffers_only=False)
        if not run.objective.simultaneous:  # GRAM's gradients come from autograd.grad: averaged by hand
            from torch.nn.parallel import DistributedDataParallel as DDP

            from igm.train import speed

            ids = [self.device.index] if self.device.type == "cuda" else None
            call = speed.forwards(run)[0]
            self.ddp = DDP(_Call(run.generator, call), device_ids=ids, output_device=ids[0] if ids else None,
                           find_unused_parameters=cfg.dist.find_unused_parameters)
        if _is_finite_dataset(run.data):
            run.data = RankShard(run.data, self.rank, self.world, cfg.train.seed)
        self.reseed(run, step=0)  # the evaluators split their work over ranks by themselves (igm.metrics.pipeline)
        self.run_dir = run.out_dir
        run.dist = run.sync = self  # the step's gradient sync; only rank 0 writes (run.writes)

    def release(self) -> None:
        """Drop the DDP wrapper while the process group is still registered. Its reducer holds a
        reference to the group; were that the last one, the group's destructor would run from the
        reducer's, holding the GIL, and wait for a Gloo worker thread that may itself wait for the
        GIL to free a finished collective's tensors. That deadlock hung one rank of the suite's
        torchrun test once (PyTorch issue 56297). Released first, the group goes with
        ``destroy_process_group``."""
        self.ddp = None

    def generator_call(self, call: Any) -> Any:
        """What a training step calls for the generator: DDP around ``call`` (the generator or its
        speed-layer call), or ``call`` itself when the generator is averaged by hand."""
        if self.ddp is None:
            return call
        if self.ddp.module.call is not call:
            self.ddp.module.__dict__["call"] = call
        return self.ddp

    def reseed(self, run: Any, step: int, salt: int = 0) -> None:
        """Rank r > 0: data, latent and torch/NumPy/Python streams from :func:`rank_seed`. Rank 0
        keeps its streams (``train.seed``, or the checkpoint's saved states)."""
        if self.rank == 0:
            return
        s = rank_seed(run.config.train.seed, self.rank, step, salt)
        run.data_rng.manual_seed(s)
        torch.manual_seed(s)
        np.random.seed(s % 2**32)
        random.seed(s)

    def after_load(self, run: Any) -> None:
        """After a checkpoint was loaded on every rank (rank 0's random states): reseed ranks > 0."""
        self.reseed(run, step=run.step)

    # -- the step's gradient sync (the strategy igm.train.step.LocalSync is on one process) -------
    def losses(self, fn: Any, *args: Any, n_losses: int = 1) -> Any:
        """``fn(*args)`` (an objective's loss), with a linear-algebra failure turned into NaN losses.

        A failed factorisation (GRAM's or GCMMD's Cholesky) can hit one rank's block alone while the
        others go on into the gradient all-reduce; rolling back on that rank only would let the ranks
        drift apart. A NaN loss connected to the batch still takes part in the averaging, so the
        mean is NaN on every rank and all roll back together. The substitute has no collective of
        its own, which is right for the objectives that factorise: GCMMD and block-estimator GRAM
        communicate nothing inside their losses, and gathered GRAM solves the same global system
        on every rank, so there the failure hits all ranks at once."""
        try:
            return fn(*args)
        except torch.linalg.LinAlgError:
            nan = _nan_like(args[-1])  # connected to the fakes, so to the generator: DDP sees every gradient
            return (nan,) * n_losses + ({},)

    def check(self, loss: Tensor, what: str, step: int) -> None:
        """Nothing before backward: the ranks check the mean loss after the all-reduce, together."""

    def critic_grads(self, params: list[Tensor], loss: Tensor, step: int) -> None:
        self.guard.add(self.average_gradients(params, loss)[0], "critic", step)

    def generator_grads(self, params: list[Tensor], loss: Tensor, step: int) -> None:
        if self.ddp is None:  # averaged by hand
            self.guard.add(self.average_gradients(params, loss)[0], "generator", step)
        else:  # DDP averaged the gradients in backward
            self.guard.add(self.mean_loss(loss), "generator", step)

    def joint_grads(self, params: list[Tensor], c_loss: Tensor, g_loss: Tensor, step: int) -> None:
        for what, mean in zip(("critic", "generator"), self.average_gradients(params, c_loss, g_loss)):
            self.guard.add(mean, what, step)

    # -- collectives the loop uses -------------------------------------------------------------
    @torch.no_grad()
    def broadcast(self, module: nn.Module, buffers_only: bool = True) -> None:
        tensors = list(module.buffers()) + ([] if buffers_only else list(module.parameters()))
        for t in tensors:
            dist.broadcast(t.data, src=0)

    def barrier(self) -> None:
        dist.barrier()

    @torch.no_grad()
    def average_gradients(self, params: Iterable[Tensor], *losses: Tensor) -> tuple[Tensor, ...]:
        """Replace each parameter's gradient by its mean over ranks: one all-reduce of the flattened
        gradients per (dtype, device), in a fixed order. A gradient missing on some rank counts as
        zero there and stays None only if it is missing on every rank (as without data parallelism,
        the optimiser then skips the parameter). The ``losses`` ride along in the same buffer;
        returns their means over ranks, identical on every rank."""
        params = list(params)
        groups: dict[tuple[torch.dtype, torch.device], list[int]] = {}
        for i, p in enumerate(params):
            groups.setdefault((p.dtype, p.device), []).append(i)
        host = next((k for k in groups if k[0] in (torch.float32, torch.float64)), None)
        dtype, device = host if host is not None else (torch.float64, self.comm_device)
        extra = torch.cat([
            torch.stack([loss.detach().reshape(()).to(device, dtype) for loss in losses]) if losses else torch.zeros(0, dtype=dtype, device=device),
            torch.tensor([float(p.grad is not None) for p in params], dtype=dtype, device=device),
        ])
        for key, idx in groups.items():
            parts = [(params[i].grad if params[i].grad is not None else torch.zeros_like(params[i])).reshape(-1) for i in idx]
            flat = torch.cat(parts + ([extra] if key == host else []))
            dist.all_reduce(flat)
            flat /= self.world
            if key == host:
                extra = flat[flat.numel() - extra.numel() :]
            offset = 0
            for i in idx:
                n = params[i].numel()
                params[i].grad = flat[offset : offset + n].view_as(params[i])
                offset += n
        if host is None and extra.numel():
            dist.all_reduce(extra)
            extra /= self.world
        for p, flag in zip(params, extra[len(losses) :].tolist()):
            if flag == 0.0:
                p.grad = None
        return tuple(m.to(loss.device, loss.dtype) for m, loss in zip(extra[: len(losses)].unbind(), losses))

    @torch.no_grad()
    def mean_loss(self, loss: Tensor) -> Tensor:
        """The mean over ranks of a (generator) loss, identical on every rank."""
        t = loss.detach().reshape(1).to(self.comm_device, torch.float64)
        dist.all_reduce(t)
        return (t / self.world).reshape(()).to(loss.device)

    @torch.no_grad()
    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is True on any (e.g. a SIGTERM that reached one process)."""
        t = torch.tensor([int(flag)], dtype=torch.int64, device=self.comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    @torch.no_grad()
    def at_log(self, run: Any, sums: dict[str, Tensor]) -> dict[str, Tensor]:
        """At a log step: the per-rank sums of the step statistics averaged over ranks (every rank
        logs the same steps, so the counts agree), and rank 0's buffers broadcast again."""
        for module in (run.critic, run.generator, run.ema):
            if module is not None:
                self.broadcast(module)
        if not sums:
            return sums
        keys = sorted(sums)
        t = torch.stack([torch.as_tensor(sums[k], dtype=torch.float64).reshape(()).to(self.comm_device) for k in keys])
        dist.all_reduce(t)
        t = (t / self.world).cpu()
        return dict(zip(keys, t.unbind()))
