"""The torchrun section of benchmarks/gpu_check.py, and (run as a script) its worker.

The section launches ``python -m torch.distributed.run --standalone --nproc_per_node=2`` on this
file. Each rank builds the run with ``igm.train.build_run`` from torchrun's environment (igm's own
data-parallel path, :mod:`igm.train.distributed`), trains it with ``igm.train.train`` and saves
every entry of its generator's and critic's ``state_dict`` (parameters and buffers: batch-norm
statistics, spectral-norm vectors). The section then compares the ranks' tensors exactly.

Devices: with two or more GPUs each rank takes its own (``train.device=cuda`` → ``cuda:LOCAL_RANK``,
NCCL). With one GPU both ranks share ``cuda:0``: NCCL refuses two ranks on one device, so the
group is gloo, which all-reduces and broadcasts CUDA tensors through host memory. Without CUDA
(the quick run) both ranks run on the CPU with gloo.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def plan(device_type: str, gpus: int) -> dict[str, Any]:
    """Where the two ranks run: ``{"device", "backend", "gpus_used"}``."""
    if device_type != "cuda":
        return {"device": "cpu", "backend": "gloo", "gpus_used": 0}
    if gpus >= 2:
        return {"device": "cuda", "backend": "nccl", "gpus_used": 2}
    return {"device": "cuda:0", "backend": "gloo", "gpus_used": 1}


def compare(states: list[dict[str, Any]]) -> dict[str, Any]:
    """Exact comparison of the ranks' tensors against rank 0's."""
    import torch

    ref = states[0]
    names = sorted(ref)
    worst, different = 0.0, []
    for other in states[1:]:
        if sorted(other) != names:
            return {"identical": False, "tensors_compared": 0, "max_abs_diff": None,
                    "different": ["the ranks' state_dict keys differ"]}
        for k in names:
            a, b = ref[k], other[k]
            if a.shape != b.shape or not torch.equal(a, b):
                different.append(k)
                if a.shape == b.shape and a.is_floating_point():
                    worst = max(worst, float((a.double() - b.double()).abs().max()))
    return {"identical": not different, "tensors_compared": len(names), "max_abs_diff": worst, "different": different[:10]}


def section(s: Any, out: dict) -> None:
    """2 processes × ``s.dist_steps`` generator steps of ``s.dist_preset``; weights identical across ranks?"""
    import torch

    from _timebox import remaining

    gpus = torch.cuda.device_count() if s.device.type == "cuda" else 0
    where = plan(s.device.type, gpus)
    work = s.tmp / "torchrun"
    work.mkdir(parents=True, exist_ok=True)
    over = _overrides(s, where)
    out.update(world=2, preset=s.dist_preset, steps=s.dist_steps, **where, overrides=over)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "_gpu_torchrun.py"), "--preset", s.dist_preset, "--out", str(work), "--", *over]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    left = remaining()
    limit = max((left - 5) if left is not None else 600.0, 5.0)
    t0 = time.perf_counter()
    # a session of its own, so that a timeout ends torchrun and both workers (its process group)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=limit)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    out.update(returncode=proc.returncode, launch_to_exit_s=time.perf_counter() - t0)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun exited with {proc.returncode}: {log[-1500:]}")
    saved = [torch.load(work / f"rank{r}.pt", weights_only=False) for r in range(2)]
    out.update(backend=saved[0]["backend"], rank_devices=[x["device"] for x in saved], steps_done=saved[0]["step"],
               train_s=saved[0]["seconds"], gen_it_per_s=saved[0]["step"] / saved[0]["seconds"],
               moved_from_init=saved[0]["moved"])  # > 0: training changed the weights (identical is not trivial)
    out.update(compare([x["tensors"] for x in saved]))
    if not out["identical"]:
        raise RuntimeError(f"the ranks' weights differ after {out['steps_done']} steps: {', '.join(out['different'])} "
                           f"(max |difference| {out['max_abs_diff']:.3g})")


def _overrides(s: Any, where: dict[str, Any]) -> list[str]:
    over = [f"train.device={where['device']}", f"dist.backend={where['backend']}", "train.progress=false",
            "train.extra_critic_steps=0", "train.sample_every=0", "train.checkpoint_every=1000000",
            f"train.log_every={s.dist_steps}", "eval.every=0", "eval.adaptive=false", f"train.steps={s.dist_steps}",
            "data.name=npy", f"data.params.path={s.data}"]
    if s.batch:
        over.append(f"train.batch_size={s.batch}")
    if s.n_critic:
        over.append(f"train.n_critic={s.n_critic}")
    if s.quick:
        from igm.train import presets

        from _gpu_sections import tiny_overrides

        over += [*tiny_overrides(presets.get(s.dist_preset)), "train.threads=1"]
    return over


# ----------------------------------------------------------------------------------------------
# the worker (one rank)


def _state(run: Any) -> dict[str, Any]:
    """Every state_dict entry of the generator and the critic, on the CPU."""
    return {f"{role}.{k}": v.detach().cpu().clone()
            for role, module in (("generator", run.generator), ("critic", run.critic)) if module is not None
            for k, v in module.state_dict().items()}


def worker(argv: list[str] | None = None) -> int:
    import torch

    from igm.train import apply_overrides, build_run, distributed, presets, train

    ap = argparse.ArgumentParser(description="one rank of gpu_check's torchrun section")
    ap.add_argument("--preset", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    cfg = apply_overrides(presets.get(args.preset), args.overrides)
    run = build_run(cfg, out_dir=None)  # joins the group from torchrun's environment; no run directory
    try:
        if run.dist is None:
            raise RuntimeError("build_run did not start data-parallel training: WORLD_SIZE missing or 1")
        start = _state(run)
        t0 = time.perf_counter()
        summary = train(run)
        if run.device.type == "cuda":
            torch.cuda.synchronize(run.device)
        seconds = time.perf_counter() - t0
        tensors = _state(run)
        moved = max(float((tensors[k].double() - start[k].double()).abs().max()) for k in tensors if tensors[k].is_floating_point())
        torch.save({"rank": run.dist.rank, "backend": run.dist.backend, "device": str(run.device), "step": summary["step"],
                    "seconds": seconds, "moved": moved, "tensors": tensors}, Path(args.out) / f"rank{run.dist.rank}.pt")
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(worker())
