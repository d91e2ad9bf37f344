"""The training loop. It receives built objects (a :class:`Run`) and owns the step schedule:

- ``n_critic`` critic steps per generator step, plus the authors' extra critic steps early on and
  every N-th step; no critic at all when ``objective.uses_critic`` is False (MMD-nets);
- simultaneous updates from one forward pass when ``objective.simultaneous`` (GRAM);
- ``objective.after_critic_step`` (weight clipping, Sobolev's multiplier) after each critic step;
- per-tensor gradient-norm clipping, learning-rate schedules, an optional generator EMA;
- logging, samples, atomic checkpoints (last and best), resume, SIGINT/SIGTERM checkpointing;
- a non-finite loss stops the step and rolls back to the last good state, up to
  ``train.max_rollbacks`` times, then fails with :class:`TrainingDiverged`;
- under torchrun (``run.dist``, :mod:`igm.train.distributed`): gradients averaged over ranks, the
  finiteness checks and SIGTERM agreed by every rank, statistics averaged at log time, and only
  rank 0 writing files.
"""

from __future__ import annotations

import copy
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import Tensor, nn

from igm.nn.latent import sample_latent
from igm.train import checkpoint as ckpt
from igm.train import speed
from igm.train.artifacts import WRITE_ERRNOS, MetricsLog, save_image_grid, save_scatter
from igm.train.config import RunConfig, to_dict

__all__ = ["Run", "Callback", "train", "TrainingDiverged", "TrainingInterrupted", "OutputError", "NonFiniteLoss"]


class NonFiniteLoss(RuntimeError):
    pass


class TrainingDiverged(RuntimeError):
    """Non-finite losses persisted after every allowed rollback."""


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM arrived; a checkpoint was written first."""

    def __init__(self, step: int, path: Path | None):
        self.step, self.path = step, path
        where = f"; checkpoint {path}" if path else ""
        super().__init__(f"interrupted at step {step}{where}")


class OutputError(RuntimeError):
    """The run directory stopped taking writes (full disk, read-only, no permission). Checkpoints are
    written atomically, so the last one written before is intact."""

    def __init__(self, err: OSError, last: Path | None):
        self.last = last
        where = f"{err.filename}: " if err.filename else ""
        kept = f"; the last checkpoint, {last}, is intact" if last is not None else ""
        super().__init__(f"cannot write to the run directory ({where}{err.strerror or err}){kept}")


class Callback(Protocol):
    def __call__(self, event: str, step: int, values: dict[str, Any]) -> None: ...


@dataclass
class Run:
    """Everything the loop needs, already built (see :func:`igm.train.build_run`)."""

    config: RunConfig
    generator: nn.Module
    critic: nn.Module | None
    objective: Any
    opt_g: torch.optim.Optimizer
    opt_c: torch.optim.Optimizer | None
    data: Any
    sched_g: Any = None
    sched_c: Any = None
    ema: nn.Module | None = None
    evaluator: Callable[[nn.Module], dict[str, float]] | None = None
    adaptive: Any = None  # igm.train.evaluation.KIDAdaptiveLR
    out_dir: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    data_rng: torch.Generator = field(default_factory=torch.Generator)
    step: int = 0
    rollbacks: int = 0
    best: float | None = None
    log_sums: dict[str, Tensor] = field(default_factory=dict)  # the open logging window: Σ of each statistic
    log_count: int = 0  # ... over this many steps (checkpointed, so a resumed run logs the same means)
    speed: Any = None  # igm.train.speed.SpeedSettings: what build_run applied (None: plain modules)
    dist: Any = None  # igm.train.distributed.DistContext under torchrun (None: one process)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        def sd(obj):
            return None if obj is None else obj.state_dict()

        return {
            "format": 1,
            "step": self.step,
            "rollbacks": self.rollbacks,
            "best": self.best,
            "config": to_dict(self.config),
            "data_shape": list(self.data.shape),
            "data_kind": str(getattr(self.data, "kind", "image")),
            "generator": sd(self.generator),
            "critic": sd(self.critic),
            "ema": sd(self.ema),
            "opt_g": sd(self.opt_g),
            "opt_c": sd(self.opt_c),
            "sched_g": sd(self.sched_g),
            "sched_c": sd(self.sched_c),
            "objective": self.objective.state_dict(),
            "adaptive": None if self.adaptive is None else self.adaptive.state_dict(),
            "rng": ckpt.rng_state(self.data_rng),
            "log_window": {"count": self.log_count, "sums": {k: v.detach().clone() for k, v in self.log_sums.items()}},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("generator", "critic", "ema", "opt_g", "opt_c", "sched_g", "sched_c"):
            obj, saved = getattr(self, name), state.get(name)
            if (obj is None) != (saved is None):
                raise ckpt.CheckpointError(f"checkpoint and run disagree on '{name}' (present in one only)")
            if obj is not None:
                obj.load_state_dict(saved)
        self.objective.load_state_dict(state["objective"])
        if self.adaptive is not None and state.get("adaptive") is not None:
            self.adaptive.load_state_dict(state["adaptive"])
        ckpt.set_rng_state(state["rng"], self.data_rng)
        self.step, self.rollbacks, self.best = int(state["step"]), int(state["rollbacks"]), state["best"]
        window = state.get("log_window") or {"count": 0, "sums": {}}  # absent in older checkpoints
        self.log_count, self.log_sums = int(window["count"]), dict(window["sums"])

    def save(self, name: str) -> Path | None:
        if self.out_dir is None:
            return None
        return ckpt.save_atomic(self.state_dict(), self.out_dir / "checkpoints" / f"{name}.pt")

    def save_step(self) -> Path | None:
        """``checkpoints/step-N.pt`` and ``last.pt``, keeping the newest ``train.keep_checkpoints``."""
        if self.out_dir is None:
            return None
        return ckpt.save_step(self.state_dict(), self.out_dir / "checkpoints", self.step,
                              self.config.train.keep_checkpoints)


# ----------------------------------------------------------------------------------------------
# one step


def _sample_z(run: Run, n: int) -> Tensor:
    return sample_latent(n, run.config.model.z_dim, run.config.model.z_dist, run.data_rng).to(run.device)


def _real(run: Run, n: int) -> Tensor:
    return run.data.sample(n, run.data_rng).to(run.device, non_blocking=True)


def _clip_per_tensor(params: list[Tensor], max_norm: float) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    if grads:
        norms = torch._foreach_norm(grads)
        factors = [torch.clamp(max_norm / (n + 1e-12), max=1.0) for n in norms]
        torch._foreach_mul_(grads, factors)


def _finite(loss: Tensor, what: str, step: int) -> None:
    if not bool(torch.isfinite(loss)):
        raise NonFiniteLoss(f"non-finite {what} loss ({float(loss)}) at generator step {step}")


def _n_critic(cfg, step: int) -> int:
    t = cfg.train
    extra = t.extra_critic_steps > 0 and (
        step < t.extra_critic_until or (t.extra_critic_every > 0 and step % t.extra_critic_every == 0)
    )
    return t.extra_critic_steps if extra else t.n_critic


def _optimizer_step(opt: torch.optim.Optimizer, params: list[Tensor], clip: float | None) -> None:
    if clip is not None:
        _clip_per_tensor(params, clip)
    opt.step()


def train_step(run: Run) -> dict[str, Tensor]:
    """One generator step (with its critic steps). Returns detached stats."""
    cfg, obj = run.config, run.objective
    g, c = speed.forwards(run)  # the modules, or their bf16 / channels_last / compiled calls (same parameters)
    if run.dist is not None:
        g = run.dist.generator_call(g)  # under torchrun: the same call inside DistributedDataParallel
    clip, bs = cfg.optim.grad_clip, cfg.train.batch_size
    g_params = [p for p in g.parameters() if p.requires_grad]
    stats: dict[str, Tensor] = {}
    if obj.simultaneous:
        c_params = [p for p in c.parameters() if p.requires_grad]
        c_loss, g_loss, stats = obj.joint_loss(c, _real(run, bs), g(_sample_z(run, bs)))
        if run.dist is None:
            _finite(c_loss, "critic", run.step)
            _finite(g_loss, "generator", run.step)
        c_grads = torch.autograd.grad(c_loss, c_params, retain_graph=True, allow_unused=True)
        g_grads = torch.autograd.grad(g_loss, g_params, allow_unused=True)
        for params, grads in ((c_params, c_grads), (g_params, g_grads)):
            for p, gr in zip(params, grads):
                p.grad = gr
        if run.dist is not None:  # averaged over ranks by hand; every rank checks the mean losses alike
            for what, mean in zip(("critic", "generator"), run.dist.average_gradients(c_params + g_params, c_loss, g_loss)):
                _finite(mean, what, run.step)
        _optimizer_step(run.opt_c, c_params, clip)
        obj.after_critic_step(c, stats)
        _optimizer_step(run.opt_g, g_params, clip)
        stats = {**stats, "critic_loss": c_loss.detach(), "generator_loss": g_loss.detach()}
    else:
        if obj.uses_critic:
            c_params = [p for p in c.parameters() if p.requires_grad]
            for _ in range(_n_critic(cfg, run.step)):
                with torch.no_grad():
                    fake = g(_sample_z(run, bs))
                c_loss, c_stats = obj.critic_loss(c, _real(run, bs), fake)
                if run.dist is None:
                    _finite(c_loss, "critic", run.step)
                run.opt_c.zero_grad(set_to_none=True)
                c_loss.backward()
                if run.dist is not None:  # the critic is not DDP-wrapped (double backward): averaged by hand
                    _finite(run.dist.average_gradients(c_params, c_loss)[0], "critic", run.step)
                _optimizer_step(run.opt_c, c_params, clip)
                obj.after_critic_step(c, c_stats)
            stats.update({f"critic/{k}": v for k, v in c_stats.items()}, critic_loss=c_loss.detach())
        g_loss, g_stats = obj.generator_loss(c, _real(run, bs), g(_sample_z(run, bs)))
        if run.dist is None:
            _finite(g_loss, "generator", run.step)
        run.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()  # under torchrun, DDP averages the generator's gradients here
        if run.dist is not None:
            _finite(run.dist.mean_loss(g_loss), "generator", run.step)
        _optimizer_step(run.opt_g, g_params, clip)
        stats.update({f"generator/{k}": v for k, v in g_stats.items()}, generator_loss=g_loss.detach())
    if run.ema is not None:
        _update_ema(run.ema, g, cfg.train.ema)
    for sched in (run.sched_g, run.sched_c):
        if sched is not None:
            sched.step()
    return stats


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    e_params, m_params = list(ema.parameters()), list(model.parameters())
    torch._foreach_lerp_(e_params, m_params, 1.0 - decay)
    for eb, mb in zip(ema.buffers(), model.buffers()):
        eb.copy_(mb)


# ----------------------------------------------------------------------------------------------
# the loop


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag checked between steps (main thread only)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:  # noqa: ANN001
        if self.signal is not None:  # a second signal: give up immediately
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _fixed_z(run: Run, n: int) -> Tensor:
    g = torch.Generator().manual_seed(run.config.train.seed + 12345)
    return sample_latent(n, run.config.model.z_dim, run.config.model.z_dist, g).to(run.device)


def write_samples(run: Run, step: int) -> Path | None:
    if run.out_dir is None:
        return None
    model = run.ema if run.ema is not None else run.generator
    was_training = model.training
    model.eval()
    with torch.no_grad():
        kind = getattr(run.data, "kind", "image")
        samples = model(_fixed_z(run, 1000 if kind == "toy" else 64))
    model.train(was_training)
    path = run.out_dir / "samples" / f"step_{step:07d}.png"
    if kind == "toy" and samples.shape[-1] == 2:
        return save_scatter(samples, path, run.data, title=f"step {step}")
    return save_image_grid(samples, path)


def evaluate(run: Run) -> dict[str, float]:
    if run.evaluator is None:
        return {}
    model = run.ema if run.ema is not None else run.generator
    was_training = model.training
    model.eval()
    try:
        return run.evaluator(model)
    finally:
        model.train(was_training)


def _emit(callbacks, event: str, step: int, values: dict[str, Any]) -> None:
    for cb in callbacks:
        cb(event, step, values)


def _rollback(run: Run, good: dict[str, Any], err: Exception, log: MetricsLog | None, callbacks) -> None:
    cfg = run.config.train
    if run.rollbacks >= cfg.max_rollbacks:
        raise TrainingDiverged(
            f"{err}; gave up after {run.rollbacks} rollback(s) (train.max_rollbacks={cfg.max_rollbacks}). "
            "Lower the learning rates, add gradient clipping (optim.grad_clip) or check the data."
        ) from None
    count = run.rollbacks + 1
    run.load_state_dict(copy.deepcopy(good))
    run.rollbacks = count
    torch.manual_seed(cfg.seed + 7919 * count)  # a different path from the same state
    run.data_rng.manual_seed(cfg.seed + 7919 * count)
    if run.dist is not None:
        run.dist.reseed(run, run.step, salt=count)  # ranks > 0: their own streams again
    for opt, sched in ((run.opt_g, run.sched_g), (run.opt_c, run.sched_c)):
        for group in (opt.param_groups if opt is not None else []):
            group["lr"] *= cfg.rollback_lr_factor
        if sched is not None and hasattr(sched, "base_lrs"):  # schedules recompute from base_lrs
            sched.base_lrs = [lr * cfg.rollback_lr_factor for lr in sched.base_lrs]
    message = f"{err}; rolled back to step {run.step} (rollback {count} of at most {cfg.max_rollbacks})"
    if log is not None:
        log.truncate_after(run.step)  # the steps after the checkpoint are trained again
        log.write(run.step, {"event": "rollback", "message": message})
    _emit(callbacks, "rollback", run.step, {"message": message})


def _adaptive_step(run: Run) -> dict[str, Any]:
    model = run.ema if run.ema is not None else run.generator
    was_training = model.training
    model.eval()
    try:
        opts = [o for o in (run.opt_g, run.opt_c) if o is not None]
        scheds = [s for o, s in ((run.opt_g, run.sched_g), (run.opt_c, run.sched_c)) if o is not None]
        return run.adaptive.step(run.step, model, opts, scheds)
    finally:
        model.train(was_training)


def _maybe_best(run: Run, metrics: dict[str, float]) -> None:
    key = getattr(run.evaluator, "key", None)
    if key is None or key not in metrics:
        return
    value = metrics[key]
    if run.best is None or value < run.best:
        run.best = value
        run.save("best")


def train(run: Run, callbacks: tuple[Callback, ...] | list[Callback] = (), resume: bool = False) -> dict[str, Any]:
    """Train ``run`` to ``config.train.steps`` generator steps; returns the summary dict.

    SIGINT/SIGTERM are caught from the first line: one that arrives while the run resumes or writes
    its first checkpoint stops it after the next step, with a checkpoint, like one mid-run."""
    with _StopFlag() as stop:
        return _train(run, list(callbacks), resume, stop)


def _train(run: Run, callbacks: list[Callback], resume: bool, stop: _StopFlag) -> dict[str, Any]:
    cfg = run.config.train
    log = MetricsLog(run.out_dir) if run.out_dir is not None else None
    if run.out_dir is not None:
        ckpt.remove_temporaries(run.out_dir / "checkpoints")  # half-written saves of a killed process
    if resume:
        run_dir = run.out_dir if run.dist is None else run.dist.run_dir  # ranks > 0 write nothing
        state, path, skipped = ckpt.load_latest(run_dir / "checkpoints", map_location=run.device)
        if run.out_dir is not None:  # one process speaks
            for line in skipped:
                print(f"igm: {line}", file=sys.stderr)
            print(f"igm: resuming from {path} at step {int(state['step'])}", file=sys.stderr)
        run.load_state_dict(state)
        if run.dist is not None:
            run.dist.after_load(run)  # rank 0 continues the saved random streams; the others reseed
        if log is not None:
            log.truncate_after(run.step)
    good = copy.deepcopy(run.state_dict())  # a snapshot: state_dict() shares the live tensors
    t0 = t_window = time.perf_counter()
    timed = 0  # steps since t_window in this process (the window itself may predate a resume)
    bar = _progress(cfg, run.step) if run.dist is None or run.dist.is_main else None
    speed_record = speed.announce(run, log, bar)  # the applied speed settings, logged once
    try:
        if not resume:
            run.save_step()
        while run.step < cfg.steps:
            try:
                stats = train_step(run)
            except (NonFiniteLoss, torch.linalg.LinAlgError) as err:  # a failed factorisation is a numerical blow-up too
                _rollback(run, good, err, log, callbacks)  # the logging window rolls back too
                if bar is not None:
                    bar.n = run.step
                    bar.write(f"igm: {err}; rolled back to step {run.step}")
                continue
            run.step += 1
            for k, v in stats.items():
                run.log_sums[k] = run.log_sums.get(k, 0.0) + v.detach().double()
            run.log_count += 1
            timed += 1
            if bar is not None:
                bar.update(1)
            if run.step % cfg.log_every == 0 or run.step == cfg.steps:
                sums = run.log_sums if run.dist is None else run.dist.at_log(run, run.log_sums)  # mean over ranks
                values = {k: float(v) / run.log_count for k, v in sums.items()}
                now = time.perf_counter()
                values["sec_per_step"] = (now - t_window) / max(timed, 1)
                values["lr_generator"] = run.opt_g.param_groups[0]["lr"]
                run.log_sums, run.log_count, t_window, timed = {}, 0, now, 0
                if bar is not None:
                    bar.set_postfix({k: f"{values[k]:.4g}" for k in ("critic_loss", "generator_loss") if k in values})
                if log is not None:
                    log.write(run.step, values)
                _emit(callbacks, "log", run.step, values)
            if run.config.eval.every and run.step % run.config.eval.every == 0 and run.step < cfg.steps:
                metrics = evaluate(run)
                if metrics:
                    if log is not None:
                        log.write(run.step, {f"eval/{k}": v for k, v in metrics.items()})
                    _maybe_best(run, metrics)
                    _emit(callbacks, "eval", run.step, metrics)
            if run.adaptive is not None and run.step % run.adaptive.every == 0:
                decision = _adaptive_step(run)
                if log is not None:
                    log.write(run.step, decision)
                _emit(callbacks, "adaptive", run.step, decision)
            if cfg.sample_every and run.step % cfg.sample_every == 0:
                write_samples(run, run.step)
            # a signal may reach one process only: under torchrun the ranks agree (one MAX all-reduce)
            stopping = stop.signal is not None if run.dist is None else run.dist.any(stop.signal is not None)
            if run.step % cfg.checkpoint_every == 0 or stopping:
                good = copy.deepcopy(run.state_dict())
                path = run.save_step()
                _emit(callbacks, "checkpoint", run.step, {"path": str(path) if path else None})
            if stopping:
                raise TrainingInterrupted(run.step, run.out_dir / "checkpoints" / "last.pt" if run.out_dir else None)
        metrics = evaluate(run)
        _maybe_best(run, metrics)
        run.save_step()
        write_samples(run, run.step)
        summary = {
            "step": run.step,
            "rollbacks": run.rollbacks,
            "seconds": time.perf_counter() - t0,
            **{f"eval/{k}": v for k, v in metrics.items()},
            **({"speed": speed_record} if speed_record is not None else {}),
        }
        if log is not None:
            if metrics:
                log.write(run.step, {f"eval/{k}": v for k, v in metrics.items()})
            _write_json(run.out_dir / "summary.json", summary)
        _emit(callbacks, "end", run.step, summary)
        return summary
    except OSError as err:
        if err.errno not in WRITE_ERRNOS or run.out_dir is None:
            raise
        newest = ckpt.step_checkpoints(run.out_dir / "checkpoints")
        raise OutputError(err, newest[0] if newest else None) from None
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            try:
                log.close()
            except OSError:  # the same full or read-only disk; the error above says so
                pass


def _write_json(path: Path, data: dict[str, Any]) -> None:
    import json

    path.write_text(json.dumps(data, indent=2) + "\n")


def _progress(cfg, start: int):
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.steps, initial=start, desc="train", unit="step", dynamic_ncols=True, leave=True)
