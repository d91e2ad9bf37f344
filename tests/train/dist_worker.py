"""Workers for tests/train/test_distributed.py, in a module of their own so that processes started by
``torch.multiprocessing`` can import them by name.

:func:`launch` starts ``world`` processes (fork where the platform has it: no re-import of torch),
each of which joins a gloo group through a file in ``tmp`` (no ports) and calls one of the jobs
below; a job's return value is saved to ``tmp/<job>-<rank>.pt`` and :func:`launch` returns them in
rank order. :func:`launch_torchrun_env` instead sets torchrun's environment variables and lets
``igm`` initialise the group itself.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import igm.metrics.toy  # noqa: F401  imported once here, so that forked workers inherit them
import igm.train  # noqa: F401
from igm import kernels
from igm.mmd import mmd2_gathered

try:
    import torch.utils.tensorboard  # noqa: F401  (slow to import; rank 0 writes event files)
except ImportError:  # pragma: no cover - tensorboard is a dependency
    pass



def _start_method() -> str:
    """fork (no re-import of torch in the workers) unless the platform lacks it or this process has
    run multi-threaded OpenMP regions, after which a forked child can hang."""
    return "fork" if "fork" in mp.get_all_start_methods() and torch.get_num_threads() == 1 else "spawn"


TINY = [
    "train.batch_size=16",
    "train.progress=false",
    "train.log_every=1",
    "train.sample_every=0",
    "eval.every=0",
    "eval.samples=120",
    "model.generator_params.hidden=16",
    "model.critic_params.hidden=16",
]
DIGITS_TINY = [*TINY[:-2], "model.generator_params.base_channels=8", "model.critic_params.base_channels=8"]


def tiny(preset: str, overrides: list[str]):
    from igm.train import apply_overrides, presets

    return apply_overrides(presets.get(preset), [*(DIGITS_TINY if preset.startswith("digits") else TINY), *overrides])


# ----------------------------------------------------------------------------------------------
# launching


def _entry(rank: int, world: int, tmp: str, job: str, args: tuple) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/pg-{job}", rank=rank, world_size=world)
    try:
        result = globals()[job](rank, world, tmp, *args)
        torch.save(result, os.path.join(tmp, f"{job}-{rank}.pt"))
    finally:
        dist.destroy_process_group()


def launch(job: str, tmp: str | Path, *args: Any, world: int = 2) -> list[Any]:
    mp.start_processes(_entry, args=(world, str(tmp), job, args), nprocs=world, join=True, start_method=_start_method())
    return [torch.load(os.path.join(tmp, f"{job}-{r}.pt"), weights_only=False) for r in range(world)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli_entry(rank: int, world: int, port: int, argv: list[str], tmp: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from igm.cli import main

    code = main(argv)
    Path(tmp, f"cli-{rank}.rc").write_text(str(code))


def launch_torchrun_env(argv: list[str], tmp: str | Path, world: int = 2) -> list[int]:
    """``igm <argv>`` in ``world`` processes that see torchrun's environment; their exit codes."""
    port = free_port()
    mp.start_processes(_cli_entry, args=(world, port, argv, str(tmp)), nprocs=world, join=True, start_method=_start_method())
    return [int(Path(tmp, f"cli-{r}.rc").read_text()) for r in range(world)]


# ----------------------------------------------------------------------------------------------
# estimators


def batch(n: int = 12, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = 0.7 * torch.randn(n, d, generator=g, dtype=torch.float64) + 0.4
    return x, y


def critic_net(out: int = 2) -> torch.nn.Module:
    torch.manual_seed(3)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, out)).double()


def _grads(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in module.parameters()]


def gathered(rank: int, world: int, tmp: str) -> dict[str, Any]:
    """The gathered MMD² of each rank's half, its input gradients, and parameter gradients averaged
    by DDP and by the training loop's hand averaging (igm.train.distributed)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    from igm.train.distributed import DistContext

    kernel = kernels.RBFMixture((1.0, 2.0))
    x, y = batch()
    xr, yr = x.chunk(world)[rank].clone().requires_grad_(True), y.chunk(world)[rank].clone().requires_grad_(True)
    value = mmd2_gathered(xr, yr, kernel)
    gx, gy = torch.autograd.grad(value, (xr, yr))
    out: dict[str, Any] = {"value": value.detach(), "grad_x": gx, "grad_y": gy}
    # a critic in DDP: parameter gradients after DDP's averaging
    ddp = DDP(critic_net())
    value = mmd2_gathered(ddp(x.chunk(world)[rank]), ddp(y.chunk(world)[rank]), kernel)
    value.backward()
    out["ddp_value"], out["ddp_grads"] = value.detach(), _grads(ddp.module)
    # the same critic unwrapped, averaged by hand (what the loop does for the critic)
    net = critic_net()
    value = mmd2_gathered(net(x.chunk(world)[rank]), net(y.chunk(world)[rank]), kernel)
    value.backward()
    ctx = DistContext(rank=rank, world=world, local_rank=rank, device=torch.device("cpu"), backend="gloo")
    (mean,) = ctx.average_gradients(list(net.parameters()), value)
    out["hand_grads"], out["hand_mean"] = _grads(net), mean
    return out


def smmd_critic_step(rank: int, world: int, tmp: str, estimator: str) -> dict[str, Any]:
    """SMMD's critic loss (Jacobian scale averaged over ranks, double backward) on each rank's half
    of the batch, with the critic's gradients averaged as in the loop."""
    import igm.objectives
    from igm.train.distributed import DistContext

    obj = igm.objectives.get("smmd").distribute(estimator)
    net = critic_net(out=1)
    x, y = batch()
    loss, stats = obj.critic_loss(net, x.chunk(world)[rank], y.chunk(world)[rank])
    loss.backward()
    ctx = DistContext(rank=rank, world=world, local_rank=rank, device=torch.device("cpu"), backend="gloo")
    (mean,) = ctx.average_gradients(list(net.parameters()), loss)
    return {"loss": loss.detach(), "mean": mean, "grads": _grads(net), "mmd2": stats["mmd2"], "scale": stats["scale"]}


def reductions(rank: int, world: int, tmp: str) -> dict[str, Any]:
    """The loop's statistics reduction and hand averaging on known per-rank values."""
    from igm.train.distributed import DistContext

    class R:  # the parts of a Run at_log touches
        critic = generator = ema = None

    ctx = DistContext(rank=rank, world=world, local_rank=rank, device=torch.device("cpu"), backend="gloo")
    sums = {"b": torch.tensor(10.0 * rank, dtype=torch.float64), "a": torch.tensor(rank + 1.0, dtype=torch.float64)}
    p, q, r = (torch.nn.Parameter(torch.zeros(3)) for _ in range(3))
    p.grad = torch.full((3,), float(rank + 1))
    q.grad = torch.ones(3) if rank == 0 else None  # a gradient on one rank only counts as zero elsewhere
    (mean,) = ctx.average_gradients([p, q, r], torch.tensor(2.0 * rank))
    return {"stats": ctx.at_log(R(), sums), "p": p.grad, "q": q.grad, "r": r.grad, "loss": mean,
            "stop": ctx.any(rank == 1), "no_stop": ctx.any(False)}


# ----------------------------------------------------------------------------------------------
# training


def _digest(module: torch.nn.Module | None) -> list[torch.Tensor]:
    if module is None:
        return []
    return [t.detach().clone() for t in list(module.parameters()) + list(module.buffers())]


def train_run(rank: int, world: int, tmp: str, preset: str, out: str, overrides: list[str], record: bool = False) -> dict[str, Any]:
    """Train a tiny preset on every rank; return the final weights, the objective's state, the log
    values every rank saw, and (``record``) each rank's own per-step statistics."""
    from igm.train import build_run, loop, train

    run = build_run(tiny(preset, overrides), out)
    local: list[dict[str, float]] = []
    if record:
        inner = loop.train_step

        def recording(r):
            stats = inner(r)
            local.append({k: float(v) for k, v in stats.items()})
            return stats

        loop.train_step = recording
    logged: list[dict[str, float]] = []
    summary = train(run, callbacks=[lambda event, step, values: logged.append(dict(values)) if event == "log" else None])
    return {
        "summary": summary,
        "generator": _digest(run.generator),
        "critic": _digest(run.critic),
        "objective": run.objective.state_dict(),
        "logged": logged,
        "local": local,
        "out_dir": str(run.out_dir) if run.writes else None,  # the directory this rank writes
        "shard": len(run.data) if hasattr(run.data, "indices") else None,
    }


def evaluation(rank: int, world: int, tmp: str, preset: str, overrides: list[str]) -> dict[str, Any]:
    """The sharded evaluator's metrics on every rank, and the single-process evaluator's on rank 0."""
    from igm.train import build_run, loop

    run = build_run(tiny(preset, overrides), None)
    synced = loop.evaluate(run)
    single = _single_process_metrics(run) if rank == 0 else None
    return {"synced": synced, "single": single, "shard": len(run.data) if hasattr(run.data, "indices") else None}


@torch.no_grad()
def _single_process_metrics(run) -> dict[str, Any]:
    """The evaluator's metrics computed here on this process alone, from all the latents (no
    collective): the reference the synced evaluation must reproduce."""
    from igm.metrics import fid, kid, toy_metrics
    from igm.nn.latent import sample_latent

    cfg, g = run.config, run.generator.eval()
    if getattr(run.data, "kind", "") == "toy":
        ev = run.evaluator
        rng = torch.Generator().manual_seed(ev.seed + 99991)
        z = sample_latent(ev.samples, cfg.model.z_dim, cfg.model.z_dist, rng)
        return toy_metrics(g(z.to(ev.device)).float().cpu(), ev.dataset, generator=rng)
    ev, e = run.evaluator, cfg.eval
    z = ev.latents(e.samples, ev.seed)
    fake = torch.cat([ev.embed(g(zc)) for zc in z.split(e.batch_size)])
    real = ev.real_features()
    mean, std = kid(real, fake, subsets=e.kid_subsets, subset_size=min(e.kid_subset_size, e.samples, real.shape[0]), seed=0)
    return {"kid": mean, "kid_std": std, "fid": fid(real, fake)}


def resume_run(rank: int, world: int, tmp: str, out: str, overrides: list[str]) -> dict[str, Any]:
    """``load_run`` + ``train(resume=True)`` on every rank (a checkpoint written by one process)."""
    from igm.train import load_run, train

    run = load_run(out, overrides)
    logged: list[dict[str, Any]] = []
    summary = train(run, callbacks=[lambda event, step, values: logged.append({"step": step, **values}) if event == "log" else None],
                    resume=True)
    return {"summary": summary, "generator": _digest(run.generator), "objective": run.objective.state_dict(), "logged": logged}


def failure_run(rank: int, world: int, tmp: str, out: str) -> dict[str, Any]:
    """A Cholesky failure on rank 1 only (critic step of generator step 1) and a NaN generator loss on
    rank 0 only (generator step 3): every rank must roll back together."""
    from igm.train import build_run, train

    # gcmmd: a Cholesky solve and, with the block estimator, no collective inside the loss (SMMD's
    # scale all-reduce, say, would have to run in the substitute NaN loss's backward too)
    run = build_run(tiny("ring-gcmmd", ["train.steps=5", "train.checkpoint_every=1", "train.max_rollbacks=4"]), out)
    inner, fired = run.objective, set()  # the objective itself: the sync strategy, not a proxy, catches failures
    critic_loss, generator_loss = inner.critic_loss, inner.generator_loss

    def failing_critic(critic, real, fake):
        out = critic_loss(critic, real, fake)
        if rank == 1 and run.step == 1 and "c" not in fired:
            fired.add("c")
            raise torch.linalg.LinAlgError("simulated Cholesky failure")
        return out

    def failing_generator(critic, real, fake):
        loss, stats = generator_loss(critic, real, fake)
        if rank == 0 and run.step == 3 and "g" not in fired:
            fired.add("g")
            loss = loss * float("nan")
        return loss, stats

    inner.critic_loss, inner.generator_loss = failing_critic, failing_generator
    summary = train(run)
    return {"summary": summary, "generator": _digest(run.generator), "critic": _digest(run.critic)}


def release_run(rank: int, world: int, tmp: str) -> dict[str, Any]:
    """Train a tiny run for one step, then release its context: is the DDP wrapper gone while the
    process group is still up?"""
    import weakref

    from igm.train import build_run, train

    run = build_run(tiny("ring-smmd", ["train.steps=1"]), os.path.join(tmp, f"run-{rank}"))
    train(run)
    ddp = weakref.ref(run.dist.ddp)
    alive_before = ddp() is not None
    run.dist.release()
    return {"alive_before": alive_before, "alive_after": ddp() is not None, "group_up": dist.is_initialized()}
