"""The sections of benchmarks/gpu_check.py (environment, FID/KID, Inception, custom activation,
speed switches); the torchrun section lives in _gpu_torchrun.py. Each section is
``fn(settings, out)``: it fills the dict ``out`` as it goes (so a section stopped by its time box
keeps what it measured) and returns None, or a :class:`NotAvailable` for a feature this igm lacks.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

import bench_speed as BS  # benchmarks/ is on sys.path (gpu_check.py puts it there)
from _common import cpu_model
from _timebox import TimeBoxExceeded, remaining, time_box

DEFAULTS = {"amp": "auto", "channels_last": "auto", "compile": "off", "cudnn_benchmark": "auto"}  # the resolved defaults


@dataclass
class Settings:
    """Sizes and places for one check: :meth:`gpu` for a lent GPU, :meth:`quick_cpu` for the CPU smoke run."""

    device: torch.device
    quick: bool
    tmp: Path
    data: Path | None = None  # the synthetic CIFAR-shaped .npy (written by gpu_check.main)
    batch: int | None = None  # None: the presets' 64
    n_critic: int | None = None  # None: the presets' 5
    warmup: int = 5  # untimed generator steps per configuration (compilation happens here)
    steps: int = 20  # timed generator steps per configuration
    critic_steps: int = 20  # timed critic steps (TFLOP/s)
    compile: bool = True
    compile_box_s: float = 120.0  # bound on one configuration's warm-up with torch.compile
    act_steps: int = 20  # timed critic steps per round in the activation section
    act_rounds: int = 3
    fid_d: int = 2048
    fid_n_small: int = 1000  # n < d: the rank-deficient path (nuclear norm of the n×n cross product)
    fid_n_full: int = 50_000  # n > d: two d×d eigendecompositions
    kid_n: int = 50_000
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    repeats: int = 3
    inception_batch: int = 250
    inception_iters: int = 10
    dist_steps: int = 50
    dist_preset: str = "cifar10-sn-smmd"

    @classmethod
    def gpu(cls, device: torch.device, tmp: Path) -> "Settings":
        return cls(device=device, quick=False, tmp=tmp)

    @classmethod
    def quick_cpu(cls, tmp: Path) -> "Settings":
        return cls(device=torch.device("cpu"), quick=True, tmp=tmp, batch=4, n_critic=1, warmup=1, steps=2,
                   critic_steps=2, compile=False, act_steps=2, act_rounds=1, fid_d=128, fid_n_small=64,
                   fid_n_full=600, kid_n=600, kid_subsets=10, kid_subset_size=100, repeats=1,
                   inception_batch=2, inception_iters=1, dist_steps=3)


class NotAvailable:
    """A section's feature is missing from this igm (recorded, not an error)."""

    def __init__(self, reason: str, **info: Any):
        self.reason, self.info = reason, info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ----------------------------------------------------------------------------------------------
# environment


def environment(s: Settings, out: dict) -> None:
    import igm.nn

    dev = s.device
    name, peak = BS.peak_tflops(dev)
    out.update(device=str(dev), device_name=name, peak_bf16_tflops=peak, torch=torch.__version__,
               python=platform.python_version(), cpu=cpu_model(), cuda=torch.version.cuda,
               gpus=torch.cuda.device_count() if torch.cuda.is_available() else 0,
               igm_nn_leakyrelu=getattr(igm.nn, "LeakyReLU", None) is not None)
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        out.update(memory_gib=round(props.total_memory / 2**30, 1), multiprocessors=props.multi_processor_count,
                   capability=f"{props.major}.{props.minor}", cudnn=torch.backends.cudnn.version(),
                   bf16_supported=bool(torch.cuda.is_bf16_supported()),
                   tf32={"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32})
        x = torch.randn(4096, 4096, device=dev, dtype=torch.bfloat16)  # a sanity figure beside the spec peak
        t = timed(lambda: x @ x, dev, 10, 3)
        out["bf16_matmul_4096_tflops"] = 2 * 4096**3 / t / 1e12


# ----------------------------------------------------------------------------------------------
# FID / KID on random 2048-d features, and Inception images/s


def fid_kid(s: Settings, out: dict) -> None:
    from igm.metrics import fid, kid

    dev, d = s.device, s.fid_d
    g = torch.Generator(device=dev).manual_seed(0)

    def feats(n: int, shift: float = 0.0) -> torch.Tensor:
        return torch.randn(n, d, device=dev, generator=g) + shift

    for key, n in (("fid_n_lt_d", s.fid_n_small), ("fid_full_rank", s.fid_n_full)):
        a, b = feats(n), feats(n, 0.1)
        value: list[float] = []
        sec = timed(lambda: value.append(fid(a, b)), dev, s.repeats)
        out[key] = {"n": n, "d": d, "seconds": sec, "value": value[-1]}
        del a, b
    a, b = feats(s.kid_n), feats(s.kid_n, 0.1)
    res: list[tuple[float, float]] = []
    sec = timed(lambda: res.append(kid(a, b, subsets=s.kid_subsets, subset_size=s.kid_subset_size)), dev, s.repeats)
    out["kid"] = {"n": s.kid_n, "d": d, "subsets": s.kid_subsets, "subset_size": s.kid_subset_size, "seconds": sec,
                  "mean": res[-1][0], "std": res[-1][1]}


def inception(s: Settings, out: dict) -> None:
    from igm.metrics import features

    dev = s.device
    net = features.get("inception", pretrained=False).to(dev).eval()
    x = torch.rand(s.inception_batch, 3, 32, 32, device=dev) * 2 - 1
    with torch.inference_mode():
        sec = timed(lambda: net(x), dev, s.inception_iters, 1 if s.quick else 3)
    out.update(batch=s.inception_batch, image_size=32, resized_to=299, pretrained=False, dtype="float32",
               batch_ms=sec * 1e3, images_per_s=s.inception_batch / sec)


# ----------------------------------------------------------------------------------------------
# run configs on synthetic CIFAR-shaped data


def tiny_overrides(cfg: Any) -> list[str]:
    """Small networks for the quick run (SN-GAN/DCGAN base 8 channels, ResNet 16)."""
    out = []
    for role, arch in (("generator", cfg.model.generator), ("critic", cfg.model.critic)):
        out.append(f"model.{role}_params.{'channels' if arch == 'resnet' else 'base_channels'}={16 if arch == 'resnet' else 8}")
    return out


def run_config(s: Settings, preset: str, switches: dict[str, str], extra: list[str] = ()) -> Any:
    """The preset on the synthetic data with the given speed switches, built without a run directory."""
    from igm.train import apply_overrides, presets

    over = [
        f"train.device={s.device}", "train.progress=false", "train.extra_critic_steps=0", "train.sample_every=0",
        "train.checkpoint_every=1000000", "train.log_every=1000000", "eval.every=0", "eval.adaptive=false",
        f"train.steps={10**9}", "data.name=npy", f"data.params.path={s.data}",
        *(f"train.{k}={v}" for k, v in switches.items()), *extra,
    ]
    if s.batch:
        over.append(f"train.batch_size={s.batch}")
    if s.n_critic:
        over.append(f"train.n_critic={s.n_critic}")
    cfg = apply_overrides(presets.get(preset), over)
    return apply_overrides(cfg, tiny_overrides(cfg)) if s.quick else cfg


def _critic_params(run: Any) -> list[torch.Tensor]:
    return [p for p in run.critic.parameters() if p.requires_grad]


def time_critic_steps(run: Any, device: torch.device, n: int) -> float:
    """Seconds per critic step, exactly as the loop runs one (bench_speed.critic_step), after one untimed step."""
    from igm.train import speed

    g, c = speed.forwards(run)
    params = _critic_params(run)
    BS.critic_step(run, g, c, params)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        BS.critic_step(run, g, c, params)
    sync(device)
    return (time.perf_counter() - t0) / n


# ----------------------------------------------------------------------------------------------
# speed switches


def speed_configurations() -> list[tuple[str, dict[str, str]]]:
    """bench_speed's list (all off, each switch alone, the resolved defaults, all on), the compiled
    ones last so that a time box running out in compilation leaves the others measured."""
    rows = BS.configurations(skip_compile=False)
    return [r for r in rows if r[1]["compile"] == "off"] + [r for r in rows if r[1]["compile"] != "off"]


def _speed_row(s: Settings, preset: str, label: str, switches: dict[str, str], flops: int, peak: float | None,
               baseline: float | None) -> dict[str, Any]:
    from igm.train import build_run, loop

    row: dict[str, Any] = {"configuration": label, "switches": switches, "status": "ok", "error": None}
    compiled = switches["compile"] != "off"
    if compiled and not s.compile:
        why = "--quick: minutes of compilation on a CPU" if s.quick else "--no-compile"
        row.update(status="skipped", error=None, note=f"torch.compile skipped ({why})")
        return row
    torch.manual_seed(0)
    run = build_run(run_config(s, preset, switches))
    row["applied"] = run.speed.describe().split(": ", 1)[1]

    def warm_up() -> None:
        for _ in range(s.warmup):
            loop.train_step(run)
            run.step += 1
        sync(s.device)

    t0 = time.perf_counter()
    if compiled:  # compilation happens in the first steps: bounded on its own, leaving time for the rest
        left = remaining()
        box = min(s.compile_box_s, left - 5) if left is not None else s.compile_box_s
        with time_box(max(box, 0.1), f"{preset} '{label}' warm-up with torch.compile"):
            warm_up()
    else:
        warm_up()
    row["warmup_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(s.steps):
        loop.train_step(run)
        run.step += 1
    sync(s.device)
    row["gen_it_per_s"] = s.steps / (time.perf_counter() - t0)
    crit = time_critic_steps(run, s.device, s.critic_steps)
    tflops = flops / crit / 1e12
    row.update(critic_step_ms=crit * 1e3, critic_tflops=tflops, percent_of_peak=100 * tflops / peak if peak else None,
               speedup=row["gen_it_per_s"] / baseline if baseline else (1.0 if label.startswith("all off") else None))
    return row


def speed(s: Settings, out: dict, preset: str) -> None:
    """Generator it/s and critic TFLOP/s of ``preset`` for each configuration; a failing or
    timed-out configuration is recorded in its row and the next one runs."""
    from igm.train import build_run

    _, peak = BS.peak_tflops(s.device)
    base = build_run(run_config(s, preset, BS.OFF))
    flops = BS.count_critic_flops(base)  # float32 eager: the same maths in every configuration
    t = base.config.train
    out.update(preset=preset, batch_size=t.batch_size, n_critic=t.n_critic, generator=base.config.model.generator,
               critic=base.config.model.critic, objective=base.config.objective.name, critic_step_flops=flops,
               peak_bf16_tflops=peak, warmup_steps=s.warmup, timed_steps=s.steps, critic_steps=s.critic_steps, rows=[])
    del base
    baseline = None
    for label, switches in speed_configurations():
        t0 = time.perf_counter()
        try:
            row = _speed_row(s, preset, label, switches, flops, peak, baseline)
        except TimeBoxExceeded as err:
            row = {"configuration": label, "switches": switches, "status": "error", "error": str(err)}
            if not err.what.startswith(preset):  # the section's own box: record this row, then stop
                out["rows"].append(row)
                raise
        except Exception as err:  # noqa: BLE001 - one configuration's failure must not stop the others
            row = {"configuration": label, "switches": switches, "status": "error", "error": f"{type(err).__name__}: {err}"[:1500]}
        finally:
            if switches["compile"] != "off" and s.compile:
                torch._dynamo.reset()
            if s.device.type == "cuda":
                torch.cuda.empty_cache()
        if label.startswith("all off") and row["status"] == "ok":
            baseline = row["gen_it_per_s"]
        out["rows"].append(row)
        tail = (f"{row['gen_it_per_s']:.2f} gen it/s, critic {row['critic_step_ms']:.1f} ms, {row['critic_tflops']:.3f} TFLOP/s"
                if row["status"] == "ok" else row.get("error") or row.get("note"))
        print(f"[gpu_check]   {preset} / {label}: {row['status']} ({time.perf_counter() - t0:.1f} s) {tail}", flush=True)


# ----------------------------------------------------------------------------------------------
# the custom activation


def set_leaky(module: nn.Module, cls: type) -> int:
    """Replace every LeakyReLU (torch's or a subclass) in ``module`` by ``cls(negative_slope)``; the count."""
    count = 0
    for name, child in module.named_children():
        if isinstance(child, nn.LeakyReLU):
            try:
                new = cls(negative_slope=child.negative_slope, inplace=child.inplace)
            except TypeError:  # a subclass without the inplace argument
                new = cls(child.negative_slope)
            setattr(module, name, new)
            count += 1
        else:
            count += set_leaky(child, cls)
    return count


def _grads(run: Any) -> list[torch.Tensor]:
    """The critic's gradients of one WGAN-GP critic loss on a fixed batch and fixed interpolation noise."""
    from igm.train import speed

    g, c = speed.forwards(run)
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    real = run.data.sample(run.config.train.batch_size, gen).to(run.device)
    with torch.no_grad():
        fake = g(torch.randn(real.shape[0], run.config.model.z_dim, generator=gen).to(run.device))
    loss, _ = run.objective.critic_loss(c, real, fake)
    return list(torch.autograd.grad(loss, _critic_params(run)))


def activation(s: Settings, out: dict) -> NotAvailable | None:
    """A WGAN-GP critic step (SN-GAN CNN critic: LeakyReLU(0.1) after every conv, its penalty's
    double backward through each) with torch's nn.LeakyReLU against igm.nn.LeakyReLU."""
    import igm.nn
    from igm.train import build_run

    custom = getattr(igm.nn, "LeakyReLU", None)
    if custom is None:
        return NotAvailable("igm.nn.LeakyReLU does not exist in this igm: nothing to compare")
    out.update(objective="wgan-gp", critic="sngan (LeakyReLU 0.1, no spectral norm)", custom=f"{custom.__module__}.{custom.__qualname__}",
               rows=[])
    for label, switches in (("float32 (all off)", BS.OFF), ("defaults (auto)", DEFAULTS)):
        torch.manual_seed(0)
        run = build_run(run_config(s, "cifar10-wgan-gp", switches, ["model.critic=sngan"]))
        stock_grads = _grads(run)
        swapped = set_leaky(run.critic, custom)
        diff = max(float((a - b).abs().max()) for a, b in zip(stock_grads, _grads(run)))
        times: dict[str, list[float]] = {"stock": [], "custom": []}
        for _ in range(s.act_rounds):  # alternate, so drift in clocks or load hits both alike
            for which, cls in (("stock", nn.LeakyReLU), ("custom", custom)):
                set_leaky(run.critic, cls)
                times[which].append(time_critic_steps(run, s.device, s.act_steps))
        stock, mine = statistics.median(times["stock"]), statistics.median(times["custom"])
        out["rows"].append({"configuration": label, "applied": run.speed.describe().split(": ", 1)[1],
                            "batch_size": run.config.train.batch_size, "modules_swapped": swapped,
                            "stock_ms": stock * 1e3, "custom_ms": mine * 1e3, "speedup": stock / mine,
                            "max_abs_grad_diff": diff})
        del run
    return None

