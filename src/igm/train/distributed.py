"""Data-parallel training: ``igm train`` under ``torchrun`` (one or several nodes).

A process started by ``torchrun`` finds ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` in its environment; :func:`setup` then initialises the default process group (NCCL
for CUDA devices, gloo for CPU; ``dist.backend``) and :meth:`DistContext.attach` adapts the built
:class:`~igm.train.loop.Run`. Without that environment (``WORLD_SIZE`` unset or 1) nothing here runs
and training is exactly the single-process loop. A process group the caller initialised already is
used as it is.

How the models are trained
--------------------------
- **Generator**: wrapped in ``DistributedDataParallel`` for the training forward passes (gradient
  averaging overlapped with backward, BatchNorm buffers broadcast from rank 0 at each forward). The
  run keeps the unwrapped module, so checkpoints, EMA, samples and evaluation never see DDP.
- **Critic**: *not* wrapped. Its loss differentiates through input gradients (gradient penalties,
  SMMD's Jacobian term, Sobolev's constraint: double backward), runs it several times per step
  (real, fake, interpolates) and is also backpropagated through during the generator step, where
  its gradients are discarded. DDP's reducer supports none of that in general, so after each critic
  backward the loop averages the critic's gradients over ranks with one flat all-reduce
  (:meth:`DistContext.average_gradients`), which also carries the loss (for the finiteness check
  every rank must decide alike) and which parameters received a gradient anywhere.
- **Simultaneous objectives** (GRAM) take both gradients with ``torch.autograd.grad``, which DDP's
  hooks never see: there the generator is not wrapped either and both are averaged by hand.
- Weights start identical (the same seed on every rank, then a broadcast from rank 0). Since every
  rank applies the same averaged gradients, they stay identical; so do the spectral-norm vectors,
  whose power iteration depends on the weights only. At every log step rank 0's buffers are
  broadcast again, so floating-point drift between ranks cannot outlast one log interval.
- **Objective state** stays identical without communication: Sobolev's multiplier is updated from a
  constraint value that the objective already averages over ranks; weight clipping acts on
  identical weights.

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
- Only rank 0 writes: metrics.jsonl, TensorBoard, the progress bar, checkpoints, sample grids and
  summary.json. Training statistics are averaged over ranks at log time; evaluation splits the
  generated samples over ranks and syncs the metric objects (:mod:`igm.metrics.objects`), which gives
  the single-process numbers.
- Checkpoints hold the unwrapped state_dicts and rank 0's random states, so a checkpoint written by
  N ranks resumes on M ranks or on one process. On resume rank 0 restores the saved random states
  and every other rank reseeds from (seed, rank, step).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from igm.train.config import ConfigError, RunConfig

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
    "AgreeOnFailure",
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


def shutdown() -> None:
    """End the process group if :func:`setup` created it (a local operation: after training no
    collective is pending, and a rank that failed must not wait for the others)."""
    global _OWNED
    if _OWNED and dist.is_initialized():
        dist.destroy_process_group()
    _OWNED = False


# ----------------------------------------------------------------------------------------------
# data


class RankShard:
    """Rank ``rank``'s share of a finite dataset: the indices ``perm[rank::world]`` of one permutation
    drawn from ``seed`` (the same on every rank), so the shares are disjoint, cover the dataset and
    differ in size by at most one. ``sample(n, generator)`` draws uniformly with replacement within
    the share; every other attribute is the dataset's."""

    def __init__(self, data: Any, rank: int, world: int, seed: int):
        n = len(data)
        if n < world:
            raise ConfigError(f"the dataset has {n} samples, fewer than the {world} processes")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        self.data, self.rank, self.world = data, rank, world
        self.indices = perm[rank::world].sort().values  # sorted: disk-backed sets read in file order

    def __len__(self) -> int:
        return len(self.indices)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        from igm.data.base import draw_indices

        pick = self.indices[draw_indices(len(self.indices), n, generator)]
        gather = getattr(self.data, "_gather", None)
        return gather(pick) if gather is not None else torch.stack([self.data[int(i)] for i in pick])

    def __getattr__(self, name: str) -> Any:
        if name == "data":  # during unpickling, before __init__ has run
            raise AttributeError(name)
        return getattr(self.data, name)

    def __repr__(self) -> str:
        return f"RankShard({self.data!r}, rank={self.rank}, world={self.world}, size={len(self)})"


def _is_finite_dataset(data: Any) -> bool:
    from igm.data import FiniteDataset

    return isinstance(data, FiniteDataset) or (hasattr(data, "__len__") and hasattr(data, "__getitem__"))


# ----------------------------------------------------------------------------------------------
# evaluation split over ranks


def _gather_rows(rows: "Tensor | None", dtype: torch.dtype, device: torch.device) -> "Tensor | None":
    from igm.metrics.objects import _gather_rows as gather

    if rows is None:
        return gather(None, dtype, device)
    shape = rows.shape[1:]
    out = gather(rows.reshape(rows.shape[0], -1).to(dtype), dtype, device)
    return None if out is None else out.reshape(out.shape[0], *shape)


class _ShardedGenerator:
    """Calls the generator on this rank's contiguous share of ``z`` and all-gathers the outputs in rank
    order: the result is the single-process ``generator(z)``, computed W times faster."""

    def __init__(self, generator: nn.Module, ctx: "DistContext"):
        self.generator, self.ctx = generator, ctx

    def __call__(self, z: Tensor) -> Tensor:
        local = z.tensor_split(self.ctx.world)[self.ctx.rank]
        out = self.generator(local)
        return _gather_rows(out, out.dtype, self.ctx.comm_device)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.generator, name)


class ShardedEvaluator:
    """Any evaluator called as ``evaluator(generator)`` (the toy evaluator): the generator it receives
    produces its samples split over ranks and gathered, so every rank gets the single-process
    metrics."""

    def __init__(self, inner: Any, ctx: "DistContext"):
        self.inner, self.ctx = inner, ctx
        self.key = getattr(inner, "key", None)

    def __call__(self, generator: nn.Module) -> dict[str, float]:
        return self.inner(_ShardedGenerator(generator, self.ctx))


class ShardedImageEvaluator:
    """:class:`~igm.train.evaluation.ImageEvaluator` with the generated samples and their features
    split over ranks: each rank embeds its contiguous share of the evaluation latents; FID and KID come
    from the synced metric objects (FID: summed statistics; KID: rows gathered in rank order), equal
    to the single-process values. Real features are computed (and cached on disk) by rank 0 first."""

    key = "kid"

    def __init__(self, inner: Any, ctx: "DistContext"):
        self.inner, self.ctx = inner, ctx
        self._real_ready = False

    def real_features(self) -> Tensor:
        if not self._real_ready:  # rank 0 fills the cache, the others then read it
            if self.ctx.is_main:
                self.inner.real_features()
            self.ctx.barrier()
            self._real_ready = True
        return self.inner.real_features()

    def _local_features(self, generator: nn.Module, n: int, seed: int) -> "Tensor | None":
        from igm.nn.latent import sample_latent

        cfg = self.inner.cfg
        z = sample_latent(n, cfg.model.z_dim, cfg.model.z_dist, torch.Generator().manual_seed(seed))
        local = z.tensor_split(self.ctx.world)[self.ctx.rank].to(self.inner.device)
        if local.shape[0] == 0:
            return None
        return torch.cat([self.inner.embed(generator(zc)) for zc in local.split(cfg.eval.batch_size)])

    @torch.no_grad()
    def sample_features(self, generator: nn.Module, n: int, seed: int) -> Tensor:
        """The features of the single-process ``sample_features`` on every rank (gathered)."""
        local = self._local_features(generator, n, seed)
        return _gather_rows(local, torch.float32, self.ctx.comm_device).cpu()

    @torch.no_grad()
    def __call__(self, generator: nn.Module) -> dict[str, float]:
        from igm.metrics.objects import FID, KID

        e = self.inner.cfg.eval
        real = self.real_features()
        fake = self._local_features(generator, e.samples, self.inner.cfg.train.seed + 4242)
        size = min(e.kid_subset_size, e.samples, real.shape[0])
        kid, fid = KID(subsets=e.kid_subsets, subset_size=size, seed=0, max_samples=None, dtype=real.dtype), FID()
        comm = self.ctx.comm_device  # the metric objects communicate on their tensors' device
        if self.ctx.is_main:
            kid.update(real.to(comm), real=True)
            fid.update(real.to(comm), real=True)
        if fake is not None:
            kid.update(fake.to(comm, real.dtype), real=False)
            fid.update(fake.to(comm), real=False)
        mean, std = kid.compute()
        out = {"kid": mean, "kid_std": std}
        if e.fid:
            out["fid"] = fid.compute()
        return out


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


class AgreeOnFailure:
    """The run's objective under data parallelism. A linear-algebra failure (GRAM's or GCMMD's
    Cholesky factorisation) can hit one rank's block alone, while the others go on into the gradient
    all-reduce; the single-process loop would roll back on that rank only and the ranks would drift
    apart. Here the failure becomes a NaN loss that still takes part in the averaging, so the mean
    loss is NaN on every rank and all ranks roll back together. The substitute loss has no collective
    of its own, which is right for the objectives that factorise: GCMMD and block-estimator GRAM
    communicate nothing inside their losses, and gathered GRAM solves the same global system on
    every rank, so there the failure hits all ranks at once. Everything else is the objective's."""

    def __init__(self, inner: Any):
        self.__dict__["inner"] = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["inner"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__dict__["inner"], name, value)

    def critic_loss(self, critic: Any, real: Tensor, fake: Tensor):
        try:
            return self.inner.critic_loss(critic, real, fake)
        except torch.linalg.LinAlgError:
            return _nan_like(fake), {}

    def generator_loss(self, critic: Any, real: Tensor, fake: Tensor):
        try:
            return self.inner.generator_loss(critic, real, fake)
        except torch.linalg.LinAlgError:
            return _nan_like(fake), {}  # connected to the generator: DDP sees every gradient

    def joint_loss(self, critic: Any, real: Tensor, fake: Tensor):
        try:
            return self.inner.joint_loss(critic, real, fake)
        except torch.linalg.LinAlgError:
            return _nan_like(fake), _nan_like(fake), {}

    def __repr__(self) -> str:
        return f"AgreeOnFailure({self.inner!r})"


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
        run.objective = AgreeOnFailure(run.objective)
        if _is_finite_dataset(run.data):
            run.data = RankShard(run.data, self.rank, self.world, cfg.train.seed)
        self.reseed(run, step=0)
        if run.evaluator is not None:
            from igm.train.evaluation import ImageEvaluator

            if isinstance(run.evaluator, ImageEvaluator):
                run.evaluator = ShardedImageEvaluator(run.evaluator, self)
            else:
                run.evaluator = ShardedEvaluator(run.evaluator, self)
            if run.adaptive is not None:
                run.adaptive.evaluator = run.evaluator
        self.run_dir = run.out_dir
        if not self.is_main:
            run.out_dir = None  # every file-writing site of the loop checks out_dir
        run.dist = self

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
