"""The training loop. It receives built objects (a :class:`Run`) and runs the steps of
:mod:`igm.train.step` (critic steps then a generator step, or GRAM's simultaneous step; gradient
clipping, the EMA and the schedules) around:

- logging, samples, atomic checkpoints (last and best), resume, SIGINT/SIGTERM checkpointing;
- a non-finite loss stops the step and rolls back to the last good state, up to
  ``train.max_rollbacks`` times, then fails with :class:`TrainingDiverged`;
- under torchrun the run's sync strategy (``run.sync``, the
  :class:`~igm.train.distributed.DistContext`) averages gradients over ranks, agrees on
  non-finite losses and SIGTERM, averages statistics at log time, and only rank 0 writes files
  (``run.writes``). The loop reads that strategy and never tests which one it has.
"""

from __future__ import annotations

import copy
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from igm.nn.latent import sample_latent
from igm.train import checkpoint as ckpt
from igm.train import speed
from igm.train.artifacts import WRITE_ERRNOS, MetricsLog, save_image_grid, save_scatter
from igm.nn.latent import sample_latent
from igm.train.run import Run
from igm.train.step import NonFiniteLoss, train_step

__all__ = ["Run", "Callback", "train", "TrainingDiverged", "TrainingInterrupted", "OutputError", "NonFiniteLoss"]


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


@contextmanager
def sampling_model(run: Run):
    """The model that samples and evaluation use (the EMA generator if any), in eval mode for the
    duration; its mode is restored after, on error too."""
    model = run.ema if run.ema is not None else run.generator
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def write_samples(run: Run, step: int) -> Path | None:
    if not run.writes:
        return None
    kind = getattr(run.data, "kind", "image")
    with sampling_model(run) as model, torch.no_grad():
        samples = model(_fixed_z(run, 1000 if kind == "toy" else 64))
    path = run.out_dir / "samples" / f"step_{step:07d}.png"
    if kind == "toy" and samples.shape[-1] == 2:
        return save_scatter(samples, path, run.data, title=f"step {step}")
    return save_image_grid(samples, path)


def evaluate(run: Run) -> dict[str, float]:
    if run.evaluator is None:
        return {}
    with sampling_model(run) as model:
        return run.evaluator(model)


def _eval_row(run: Run, metrics: dict[str, float]) -> dict[str, Any]:
    """``eval/<name>`` for each score, and ``eval_protocol``: how they were measured."""
    if not metrics:
        return {}
    row: dict[str, Any] = {f"eval/{k}": v for k, v in metrics.items()}
    recorded = getattr(run.evaluator, "protocol", None)
    if recorded is not None:
        row["eval_protocol"] = recorded
    return row


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
    run.sync.reseed(run, run.step, salt=count)  # under torchrun, ranks > 0: their own streams again
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
    opts = [o for o in (run.opt_g, run.opt_c) if o is not None]
    scheds = [s for o, s in ((run.opt_g, run.sched_g), (run.opt_c, run.sched_c)) if o is not None]
    with sampling_model(run) as model:
        return run.adaptive.step(run.step, model, opts, scheds)


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


@dataclass
class _Session:
    """What one call of :func:`train` keeps between steps besides the run itself."""

    run: Run
    callbacks: list[Callback]
    log: MetricsLog | None
    bar: Any
    t_window: float = field(default_factory=time.perf_counter)
    timed: int = 0  # steps since t_window in this process (the window itself may predate a resume)

    def emit(self, event: str, values: dict[str, Any]) -> None:
        _emit(self.callbacks, event, self.run.step, values)

    def write(self, values: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.write(self.run.step, values)


def _resume(run: Run, log: MetricsLog | None) -> None:
    state, path, skipped = ckpt.load_latest(run.out_dir / "checkpoints", map_location=run.device)
    if run.writes:  # one process speaks
        for line in skipped:
            print(f"igm: {line}", file=sys.stderr)
        print(f"igm: resuming from {path} at step {int(state['step'])}", file=sys.stderr)
    run.load_state_dict(state)
    run.sync.after_load(run)  # under torchrun: rank 0 continues the saved random streams; the others reseed
    if log is not None:
        log.truncate_after(run.step)


def _record(s: _Session, stats: dict[str, Tensor]) -> None:
    """Add one step's statistics to the logging window; at a log step write their means."""
    run, cfg = s.run, s.run.config.train
    for k, v in stats.items():
        run.log_sums[k] = run.log_sums.get(k, 0.0) + v.detach().double()
    run.log_count += 1
    s.timed += 1
    if s.bar is not None:
        s.bar.update(1)
    if run.step % cfg.log_every == 0 or run.step == cfg.steps:
        sums = run.sync.at_log(run, run.log_sums)  # under torchrun: the mean over ranks
        values = {k: float(v) / run.log_count for k, v in sums.items()}
        now = time.perf_counter()
        values["sec_per_step"] = (now - s.t_window) / max(s.timed, 1)
        values["lr_generator"] = run.opt_g.param_groups[0]["lr"]
        run.log_sums, run.log_count, s.t_window, s.timed = {}, 0, now, 0
        if s.bar is not None:
            s.bar.set_postfix({k: f"{values[k]:.4g}" for k in ("critic_loss", "generator_loss") if k in values})
        s.write(values)
        s.emit("log", values)


def _periodic(s: _Session) -> None:
    """Evaluation, the KID-adaptive decision and sample grids, each when due."""
    run, cfg = s.run, s.run.config.train
    if run.config.eval.every and run.step % run.config.eval.every == 0 and run.step < cfg.steps:
        metrics = evaluate(run)
        if metrics:
            s.write(_eval_row(run, metrics))
            _maybe_best(run, metrics)
            s.emit("eval", metrics)
    if run.adaptive is not None and run.step % run.adaptive.every == 0:
        decision = _adaptive_step(run)
        s.write(decision)
        s.emit("adaptive", decision)
    if cfg.sample_every and run.step % cfg.sample_every == 0:
        write_samples(run, run.step)


def _finish(s: _Session, seconds: float, speed_record: dict[str, Any] | None) -> dict[str, Any]:
    run = s.run
    metrics = evaluate(run)
    _maybe_best(run, metrics)
    run.save_step()
    write_samples(run, run.step)
    summary = {
        "step": run.step,
        "rollbacks": run.rollbacks,
        "seconds": seconds,
        **_eval_row(run, metrics),
        **({"speed": speed_record} if speed_record is not None else {}),
    }
    if s.log is not None:
        if metrics:
            s.write(_eval_row(run, metrics))
        _write_json(run.out_dir / "summary.json", summary)
    s.emit("end", summary)
    return summary


def _train(run: Run, callbacks: list[Callback], resume: bool, stop: _StopFlag) -> dict[str, Any]:
    cfg = run.config.train
    log = MetricsLog(run.out_dir) if run.writes else None
    if run.writes:
        ckpt.remove_temporaries(run.out_dir / "checkpoints")  # half-written saves of a killed process
    if resume:
        _resume(run, log)
    good = copy.deepcopy(run.state_dict())  # a snapshot: state_dict() shares the live tensors
    t0 = time.perf_counter()
    s = _Session(run, callbacks, log, _progress(cfg, run.step) if run.sync.is_main else None)
    speed_record = speed.announce(run, log, s.bar)  # the applied speed settings, logged once
    try:
        if not resume:
            run.save_step()
        while run.step < cfg.steps:
            try:
                stats = train_step(run)
            except (NonFiniteLoss, torch.linalg.LinAlgError) as err:  # a failed factorisation is a numerical blow-up too
                _rollback(run, good, err, log, callbacks)  # the logging window rolls back too
                if s.bar is not None:
                    s.bar.n = run.step
                    s.bar.write(f"igm: {err}; rolled back to step {run.step}")
                continue
            run.step += 1
            _record(s, stats)
            _periodic(s)
            # a signal may reach one process only: under torchrun the ranks agree (one MAX all-reduce)
            stopping = run.sync.any(stop.signal is not None)
            if run.step % cfg.checkpoint_every == 0 or stopping:
                good = copy.deepcopy(run.state_dict())
                path = run.save_step()
                s.emit("checkpoint", {"path": str(path) if path else None})
            if stopping:
                raise TrainingInterrupted(run.step, run.out_dir / "checkpoints" / "last.pt" if run.writes else None)
        return _finish(s, time.perf_counter() - t0, speed_record)
    except OSError as err:
        if err.errno not in WRITE_ERRNOS or not run.writes:
            raise
        newest = ckpt.step_checkpoints(run.out_dir / "checkpoints")
        raise OutputError(err, newest[0] if newest else None) from None
    finally:
        if s.bar is not None:
            s.bar.close()
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
