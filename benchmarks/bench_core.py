#!/usr/bin/env python
"""CPU benchmark of the core critic losses (issue: core).

Measures, in ONE process, with interleaved (round-robin) repetitions and medians:

- a **critic step** = ``zero_grad`` + ``objective.critic_loss(critic, real, fake)`` + ``backward``
  + Adam step, for a DCGAN-size critic (no batch norm) on 32×32×3 images, batch 64;
- ``igm.mmd.mmd2`` forward+backward on 64×d critic features;

and reports the issue's ratios with PASS/FAIL:

1. ``wgan-gp`` step / ``wgan`` step                                   target ≤ 1.8
2. ``smmd`` step / plain MMD-GAN step (``mmd-gan``, ae_weight=0 and with the
   autoencoder critic)                                                 target ≤ 1.3
3. ``smmd`` step / ``wgan-gp`` step                                    target ≤ 0.75
4. 16-d critic: ``smmd`` jacobian="exact" step / jacobian="projection" target ≥ 5
5. MMD² (batch 64, fwd+bwd) / ``smmd`` step, Gaussian and RQ+linear    target ≤ 5 %

``--variants`` adds clearly labelled candidate fixes, measured in the same rounds (they are NOT
what the library does today): one concatenated real+fake forward, channels_last, one thread, a
critic whose LeakyReLU has a mask-only backward (no zero-gradient backward through the
interpolates' forward graph), and SMMD with the Jacobian term on a subsample of the real batch.
``--profile`` prints where the time of one step goes (torch.profiler).

    python benchmarks/bench_core.py [--repeats N] [--threads T] [--variants all|none|a,b] [--profile]

Noise: besides the medians, the report gives the fastest round, the process CPU time and the
per-round (paired) ratio quartiles. On a shared, oversubscribed host the 2-thread OpenMP runs
are dominated by waiting for the second thread; ``--threads 1`` is then the stable reading
(its CPU time is the cost of the work itself). Results and their reading: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from _common import cpu_model  # noqa: E402 (benchmarks/ is on sys.path when run as a script)
import torch
from torch import Tensor, nn

import igm
import igm.objectives as O
from igm import kernels
from igm.mmd import gram_blocks, mmd2, mmd2_from_gram
from igm.nn import LeakyReLU
from igm.penalties import gradient_penalty, interpolates, jacobian_sqnorm

BATCH = 64
IMAGE = (3, 32, 32)


# ------------------------------------------------------------------------------------------------
# models


class MaskLeakyReLUFn(torch.autograd.Function):
    """LeakyReLU whose backward is ``grad * slope(x)`` with the slope tensor saved detached.

    Numerically identical to ``torch.nn.functional.leaky_relu`` (first and second derivatives alike, a.e.), but the
    double backward never sends a (zero) gradient back into the forward activations. PyTorch's
    own ``leaky_relu_backward`` declares ``self: zeros_like(grad)`` as its derivative, so after
    ``autograd.grad(..., create_graph=True)`` the final ``backward`` runs a full (all-zero)
    backward through the forward graph of the points where the gradient was taken — for WGAN-GP
    that is a whole extra backward of the interpolates' batch."""

    @staticmethod
    def forward(ctx, x: Tensor, slope: float) -> Tensor:  # type: ignore[override]
        scale = torch.where(x > 0, 1.0, slope).to(x.dtype)
        ctx.save_for_backward(scale)
        ctx.set_materialize_grads(False)  # an undefined incoming gradient stays undefined (no zeros)
        return x * scale

    @staticmethod
    def backward(ctx, grad: Tensor | None):  # type: ignore[override]
        if grad is None:
            return None, None
        (scale,) = ctx.saved_tensors
        return grad * scale, None


class MaskLeakyReLU(nn.Module):
    def __init__(self, slope: float = 0.2):
        super().__init__()
        self.slope = slope

    def forward(self, x: Tensor) -> Tensor:
        return MaskLeakyReLUFn.apply(x, self.slope)


def dcgan_critic(d: int = 1, act: Callable[[], nn.Module] | None = None) -> nn.Sequential:
    """The DCGAN discriminator for 32×32 without batch norm; (n, 3, 32, 32) → (n, d)."""
    act = act or (lambda: LeakyReLU(0.2))  # the library's (igm.nn.LeakyReLU, issue 14)
    return nn.Sequential(
        nn.Conv2d(3, 64, 4, 2, 1), act(),       # 16×16
        nn.Conv2d(64, 128, 4, 2, 1), act(),     # 8×8
        nn.Conv2d(128, 256, 4, 2, 1), act(),    # 4×4
        nn.Conv2d(256, d, 4, 1, 0),             # 1×1
        nn.Flatten(),
    )


def dcgan_decoder(d: int = 1) -> nn.Sequential:
    """The mirrored ConvTranspose stack; (n, d, 1, 1) → (n, 3, 32, 32)."""
    return nn.Sequential(
        nn.ConvTranspose2d(d, 256, 4, 1, 0), nn.ReLU(),     # 4×4
        nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.ReLU(),   # 8×8
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(),    # 16×16
        nn.ConvTranspose2d(64, 3, 4, 2, 1), nn.Tanh(),      # 32×32
    )


class AutoEncoderCritic(nn.Module):
    """MMD-GAN's autoencoder critic: ``forward`` is the encoder, ``decode(features)`` the decoder."""

    def __init__(self, d: int = 1):
        super().__init__()
        self.d = d
        self.encoder = dcgan_critic(d)
        self.decoder = dcgan_decoder(d)

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, features: Tensor) -> Tensor:
        return self.decoder(features.reshape(features.shape[0], self.d, 1, 1))


# ------------------------------------------------------------------------------------------------
# cases


@dataclass
class Case:
    """One timed thing. ``run()`` returns (loss phase, backward phase, optimiser phase) seconds."""

    name: str
    run: Callable[[], tuple[float, float, float]]
    group: str = "core"  # "core" | "micro" | "variant"
    note: str = ""
    times: list[tuple[float, float, float]] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process CPU seconds per run (all threads)

    def total(self) -> list[float]:
        return [sum(t) for t in self.times]


def critic_step(
    critic: nn.Module, loss_fn: Callable[[], Tensor], threads: int | None = None
) -> Callable[[], tuple[float, float, float]]:
    """zero_grad + loss + backward + Adam (β = (0.5, 0.9), lr 1e-4), timed by phase."""
    opt = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.5, 0.9))

    def run() -> tuple[float, float, float]:
        saved = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            t3 = time.perf_counter()
        finally:
            if threads is not None:
                torch.set_num_threads(saved)
        return t1 - t0, t2 - t1, t3 - t2

    run.critic = critic  # type: ignore[attr-defined]
    return run


def objective_step(obj: O.Objective, critic: nn.Module, real: Tensor, fake: Tensor, threads: int | None = None):
    return critic_step(critic, lambda: obj.critic_loss(critic, real, fake)[0], threads)


def mmd2_micro(kernel: kernels.Kernel, d: int, inner: int) -> Callable[[], tuple[float, float, float]]:
    """Mean over ``inner`` calls of ``mmd2(fx, fy, kernel)`` forward + backward on (64, d) features."""
    g = torch.Generator().manual_seed(1)
    fx = torch.randn(BATCH, d, generator=g).requires_grad_(True)
    fy = (torch.randn(BATCH, d, generator=g) + 0.5).requires_grad_(True)

    def run() -> tuple[float, float, float]:
        t0 = time.perf_counter()
        for _ in range(inner):
            fx.grad = fy.grad = None
            mmd2(fx, fy, kernel).backward()
        return (time.perf_counter() - t0) / inner, 0.0, 0.0

    run.inner = inner  # type: ignore[attr-defined]
    return run


# -- hand-written variants of the library losses (same maths; only the execution differs) -------


def wgan_cat_loss(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    out = critic(torch.cat([real, fake], 0))[:, 0]
    return -(out[: real.shape[0]].mean() - out[real.shape[0] :].mean())


def wgan_gp_cat_loss(critic: nn.Module, real: Tensor, fake: Tensor, lam: float = 10.0) -> Tensor:
    """WGAN-GP with real and fake in one forward (the interpolates still get their own)."""
    out = critic(torch.cat([real, fake], 0))[:, 0]
    em = out[: real.shape[0]].mean() - out[real.shape[0] :].mean()
    points = interpolates(real, fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
    return -em + lam * gradient_penalty(grad, "gp")


def smmd_subsample_loss(obj, critic: nn.Module, real: Tensor, fake: Tensor, k: int) -> Tensor:
    """SMMD (μ = target) with E_μ‖∇φ‖² estimated on the first ``k`` real points only: those ``k``
    go through their own forward with ``requires_grad``, so the Jacobian backward and the double
    backward cover ``k`` points instead of 64. The MMD² still uses all 64 + 64 features."""
    sub = real[:k].detach().requires_grad_(True)
    f_sub = critic(sub)
    fx = torch.cat([f_sub, critic(real[k:])], 0)
    fy = critic(fake)
    kern = obj.kernel
    value = mmd2_from_gram(*gram_blocks(fx, fy, kern), estimator=obj.estimator)
    jac = jacobian_sqnorm(f_sub, sub, create_graph=True).mean()
    denom = obj.rkhs_weight + obj.diag_weight * kern.diag(fx).mean() + obj.grad_weight * kern.jacobian_weight * jac
    return -value / denom


# ------------------------------------------------------------------------------------------------
# building the case list

VARIANT_GROUPS = ("cat", "channels_last", "threads1", "mask_lrelu", "smmd_subsample")


def build_cases(args) -> tuple[list[Case], dict[str, Tensor]]:
    g = torch.Generator().manual_seed(args.seed)
    real = torch.rand(BATCH, *IMAGE, generator=g) * 2 - 1
    fake = torch.tanh(torch.randn(BATCH, *IMAGE, generator=g))

    def fresh(d: int = 1, **kw) -> nn.Module:
        torch.manual_seed(args.seed)  # every case starts from the same weights
        return dcgan_critic(d, **kw)

    cases: list[Case] = []

    def add(name, run, group="core", note=""):
        cases.append(Case(name, run, group, note))

    # -- core: the library as it is ------------------------------------------------------------
    add("wgan", objective_step(O.get("wgan"), fresh(), real, fake), note="d=1")
    add("wgan-gp", objective_step(O.get("wgan-gp"), fresh(), real, fake), note="d=1")
    add("smmd", objective_step(O.get("smmd"), fresh(), real, fake), note="d=1, defaults")
    add("mmd-gan[ae=0]", objective_step(O.get("mmd-gan", ae_weight=0.0), fresh(), real, fake), note="d=1, no decoder")
    torch.manual_seed(args.seed)
    add("mmd-gan[AE]", objective_step(O.get("mmd-gan"), AutoEncoderCritic(1), real, fake), note="d=1, default ae_weight=8")
    add("smmd16[projection]", objective_step(O.get("smmd", jacobian="projection"), fresh(16), real, fake), note="d=16")
    add("smmd16[exact]", objective_step(O.get("smmd", jacobian="exact"), fresh(16), real, fake), note="d=16, 16 backward passes")

    # -- micro: the MMD² alone -------------------------------------------------------------------
    gauss = O.get("smmd").kernel
    rq_lin = O.get("mmd-gan-gp").kernel
    for d in (1, 16):
        add(f"mmd2[gaussian,d={d}]", mmd2_micro(gauss, d, args.inner), "micro", f"mean of {args.inner} calls")
        add(f"mmd2[rq+linear,d={d}]", mmd2_micro(rq_lin, d, args.inner), "micro", f"mean of {args.inner} calls")

    # -- variants: candidate fixes (NOT the library's behaviour) -------------------------------
    v = set(args.variants)
    if "cat" in v:
        c = fresh()
        add("V wgan[cat]", critic_step(c, lambda c=c: wgan_cat_loss(c, real, fake)), "variant", "real+fake in one forward")
        c = fresh()
        add("V wgan-gp[cat]", critic_step(c, lambda c=c: wgan_gp_cat_loss(c, real, fake)), "variant", "real+fake in one forward")
    if "channels_last" in v:
        cl = torch.channels_last
        r_cl, f_cl = real.contiguous(memory_format=cl), fake.contiguous(memory_format=cl)
        for name in ("wgan", "wgan-gp", "smmd"):
            add(f"V {name}[channels_last]", objective_step(O.get(name), fresh().to(memory_format=cl), r_cl, f_cl), "variant")
    if "threads1" in v:
        for name, hp in (("wgan", {}), ("wgan-gp", {}), ("smmd", {}), ("mmd-gan", {"ae_weight": 0.0})):
            label = name + ("[ae=0]" if hp else "")
            add(f"V {label}[1 thread]", objective_step(O.get(name, **hp), fresh(), real, fake, threads=1), "variant")
    if "mask_lrelu" in v:
        for name in ("wgan", "wgan-gp", "smmd"):
            add(f"V {name}[mask-LReLU]", objective_step(O.get(name), fresh(act=MaskLeakyReLU), real, fake), "variant",
                "critic with mask-only LeakyReLU backward")
    if "smmd_subsample" in v:
        obj = O.get("smmd")
        for k in args.subsample:
            c = fresh()
            add(f"V smmd[jac on {k}/64]", critic_step(c, lambda c=c, k=k: smmd_subsample_loss(obj, c, real, fake, k)),
                "variant", f"E‖∇φ‖² on {k} real points")
    return cases, {"real": real, "fake": fake}


# ------------------------------------------------------------------------------------------------
# ratios


@dataclass
class Ratio:
    label: str
    num: str
    den: str
    target: float
    op: str  # "<=" or ">="
    group: str = "core"


def core_ratios() -> list[Ratio]:
    return [
        Ratio("1. wgan-gp / wgan", "wgan-gp", "wgan", 1.8, "<="),
        Ratio("2a. smmd / mmd-gan[ae=0] (plain encoder)", "smmd", "mmd-gan[ae=0]", 1.3, "<="),
        Ratio("2b. smmd / mmd-gan[AE] (autoencoder critic)", "smmd", "mmd-gan[AE]", 1.3, "<="),
        Ratio("3. smmd / wgan-gp", "smmd", "wgan-gp", 0.75, "<="),
        Ratio("4. smmd16 exact / projection", "smmd16[exact]", "smmd16[projection]", 5.0, ">="),
        Ratio("5a. mmd2[gaussian,d=1] / smmd step", "mmd2[gaussian,d=1]", "smmd", 0.05, "<="),
        Ratio("5b. mmd2[rq+linear,d=1] / smmd step", "mmd2[rq+linear,d=1]", "smmd", 0.05, "<="),
        Ratio("5c. mmd2[gaussian,d=16] / smmd16[projection] step", "mmd2[gaussian,d=16]", "smmd16[projection]", 0.05, "<="),
        Ratio("5d. mmd2[rq+linear,d=16] / smmd16[projection] step", "mmd2[rq+linear,d=16]", "smmd16[projection]", 0.05, "<="),
    ]


def variant_ratios(args) -> list[Ratio]:
    v, out = set(args.variants), []
    if "cat" in v:
        out += [
            Ratio("1 [cat]: wgan-gp[cat] / wgan[cat]", "V wgan-gp[cat]", "V wgan[cat]", 1.8, "<=", "variant"),
            Ratio("3 [cat gp]: smmd / wgan-gp[cat]", "smmd", "V wgan-gp[cat]", 0.75, "<=", "variant"),
        ]
    if "channels_last" in v:
        out += [
            Ratio("1 [channels_last]", "V wgan-gp[channels_last]", "V wgan[channels_last]", 1.8, "<=", "variant"),
            Ratio("3 [channels_last]", "V smmd[channels_last]", "V wgan-gp[channels_last]", 0.75, "<=", "variant"),
        ]
    if "threads1" in v:
        out += [
            Ratio("1 [1 thread]", "V wgan-gp[1 thread]", "V wgan[1 thread]", 1.8, "<=", "variant"),
            Ratio("2a [1 thread]", "V smmd[1 thread]", "V mmd-gan[ae=0][1 thread]", 1.3, "<=", "variant"),
            Ratio("3 [1 thread]", "V smmd[1 thread]", "V wgan-gp[1 thread]", 0.75, "<=", "variant"),
        ]
    if "mask_lrelu" in v:
        out += [
            Ratio("1 [mask-LReLU critic]", "V wgan-gp[mask-LReLU]", "V wgan[mask-LReLU]", 1.8, "<=", "variant"),
            Ratio("1 [mask-LReLU gp / library wgan]", "V wgan-gp[mask-LReLU]", "wgan", 1.8, "<=", "variant"),
            Ratio("2a [mask-LReLU smmd]", "V smmd[mask-LReLU]", "mmd-gan[ae=0]", 1.3, "<=", "variant"),
            Ratio("3 [mask-LReLU critic]", "V smmd[mask-LReLU]", "V wgan-gp[mask-LReLU]", 0.75, "<=", "variant"),
        ]
    if "smmd_subsample" in v:
        for k in args.subsample:
            out += [
                Ratio(f"2a [smmd jac on {k}/64]", f"V smmd[jac on {k}/64]", "mmd-gan[ae=0]", 1.3, "<=", "variant"),
                Ratio(f"3 [smmd jac on {k}/64]", f"V smmd[jac on {k}/64]", "wgan-gp", 0.75, "<=", "variant"),
            ]
            if "mask_lrelu" in v:
                out.append(Ratio(f"3 [smmd jac {k}/64 vs mask-LReLU gp]", f"V smmd[jac on {k}/64]", "V wgan-gp[mask-LReLU]",
                                 0.75, "<=", "variant"))
    return out


# ------------------------------------------------------------------------------------------------
# running


def quartiles(xs: list[float]) -> tuple[float, float]:
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def args_inner(case: Case) -> int:
    return getattr(case.run, "inner", 1)


def run_rounds(cases: list[Case], rounds: int, warmup: int, exact_every: int, verbose: bool) -> float:
    """Round-robin: every round runs every case once, the starting case rotating; returns seconds."""
    n = len(cases)
    start = time.perf_counter()
    gc.collect()
    gc.disable()
    try:
        for r in range(warmup + rounds):
            order = cases[r % n :] + cases[: r % n]
            for case in order:
                if case.name == "smmd16[exact]" and r >= warmup and (r - warmup) % exact_every:
                    continue
                c0 = time.process_time()
                t = case.run()
                c1 = time.process_time()
                if r >= warmup:
                    case.times.append(t)
                    case.cpu.append((c1 - c0) / (args_inner(case)))
            gc.collect()
            if verbose:
                tag = "warm-up" if r < warmup else f"round {r - warmup + 1}/{rounds}"
                print(f"  {tag} done at {time.perf_counter() - start:6.1f}s", file=sys.stderr, flush=True)
    finally:
        gc.enable()
    return time.perf_counter() - start


def report(cases: list[Case], ratios: list[Ratio], args, elapsed: float, load0: str = "") -> bool:
    by = {c.name: c for c in cases}
    print(f"# igm core-loss benchmark (issue: core)")
    print(f"date      : {datetime.date.today().isoformat()}")
    print(f"command   : python {' '.join(sys.argv)}")
    print(f"torch     : {torch.__version__}  igm {igm.__version__}  python {platform.python_version()}")
    print(f"threads   : {torch.get_num_threads()} (intra-op), {torch.get_num_interop_threads()} (inter-op)")
    print(f"cpu       : {cpu_model()}, {os.cpu_count()} logical cores; CUDA available: {torch.cuda.is_available()}")
    try:
        print(f"load avg  : {load0} at the start, {_load()} at the end (1/5/15 min; this process adds ~threads)")
    except OSError:
        pass
    print(f"rounds    : {args.repeats} timed (+{args.warmup} warm-up), interleaved round-robin; "
          f"smmd16[exact] every {args.exact_every} round(s); wall {elapsed:.0f}s")
    print()
    print("| case | median ms | IQR ms | min ms | CPU ms | loss phase | backward | Adam | n | note |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for c in cases:
        if not c.times:
            continue
        tot = [1e3 * x for x in c.total()]
        med = statistics.median(tot)
        lo, hi = quartiles(tot)
        if c.group == "micro":
            phases = "| |"
            fmt = f"{med:.3f} | {lo:.3f}–{hi:.3f} | {min(tot):.3f} | {1e3 * statistics.median(c.cpu):.3f}"
        else:
            ph = [statistics.median(1e3 * t[i] for t in c.times) for i in range(3)]
            phases = f"{ph[0]:.1f} | {ph[1]:.1f} | {ph[2]:.1f}"
            fmt = f"{med:.1f} | {lo:.1f}–{hi:.1f} | {min(tot):.1f} | {1e3 * statistics.median(c.cpu):.1f}"
        print(f"| {c.name} | {fmt} | {phases} | {len(tot)} | {c.note} |")
    print()
    print("min = fastest round; CPU ms = median process CPU time (all threads; with >1 thread it includes")
    print("OpenMP spin-waiting, with 1 thread it is the contention-robust cost of the work itself).")
    print("loss phase = zero_grad + critic_loss (the forwards and, for the gradient-penalised losses, the")
    print("create_graph gradient); backward = loss.backward() (incl. any double backward); Adam = opt.step().")
    print()
    all_pass = True
    for title, group in (("Ratios (library as is)", "core"), ("Candidate fixes (variants, not the library)", "variant")):
        rs = [r for r in ratios if r.group == group and r.num in by and r.den in by and by[r.num].times and by[r.den].times]
        if not rs:
            continue
        print(f"## {title}")
        print()
        print("| ratio | median/median | per-round IQR | min/min | CPU-time | target | result (on medians) |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for r in rs:
            a, b = by[r.num], by[r.den]
            ratio = statistics.median(a.total()) / statistics.median(b.total())
            ratio_min = min(a.total()) / min(b.total())
            ratio_cpu = statistics.median(a.cpu) / statistics.median(b.cpu)
            paired = _paired(a, b, cases)
            lo, hi = quartiles(paired) if paired else (float("nan"), float("nan"))
            ok = ratio <= r.target if r.op == "<=" else ratio >= r.target
            if group == "core":
                all_pass &= ok
            robust = ""
            if paired and ((lo <= r.target <= hi)):
                robust = " (borderline: target inside the per-round IQR)"
            pct = r.label.startswith("5") or "mmd2" in r.num
            val = f"{100 * ratio:.2f} %" if pct else f"{ratio:.3f}"
            rng = f"{100 * lo:.2f}–{100 * hi:.2f} %" if pct else f"{lo:.3f}–{hi:.3f}"
            vmin = f"{100 * ratio_min:.2f} %" if pct else f"{ratio_min:.3f}"
            vmin += f" | {100 * ratio_cpu:.2f} %" if pct else f" | {ratio_cpu:.3f}"
            tgt = f"{r.op} {100 * r.target:.0f} %" if pct else f"{r.op} {r.target:g}"
            print(f"| {r.label} | {val} | {rng} | {vmin} | {tgt} | {'PASS' if ok else 'FAIL'}{robust} |")
        print()
    bad = [n for n, c in by.items() if c.group != "micro" and not all(p.isfinite().all() for p in _params(c))]
    if bad:
        print(f"warning: non-finite critic parameters after the run in {bad} (timings still valid)")
    return all_pass


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _params(case: Case):
    critic = getattr(case.run, "critic", None)
    return list(critic.parameters()) if critic is not None else []


def _paired(a: Case, b: Case, cases: list[Case]) -> list[float]:
    """Per-round ratios a/b (same round ⇒ same machine state). The exact case runs only every
    k-th round, so it is paired with the matching rounds of the other case."""
    ta, tb = a.total(), b.total()
    if len(ta) == len(tb):
        return [x / y for x, y in zip(ta, tb)]
    if len(ta) < len(tb):
        step = len(tb) // max(len(ta), 1)
        return [x / tb[i * step] for i, x in enumerate(ta) if i * step < len(tb)]
    step = len(ta) // max(len(tb), 1)
    return [ta[i * step] / y for i, y in enumerate(tb) if i * step < len(ta)]


# ------------------------------------------------------------------------------------------------
# profiling


def profile_cases(cases: list[Case], names: list[str]) -> None:
    """Where one step's time goes: conv forward, conv backward, the conv double backward,
    optimiser, everything else (elementwise, autograd overhead)."""
    from torch.profiler import ProfilerActivity, profile

    by = {c.name: c for c in cases}
    print("## Profile (torch.profiler, CPU; ms per step, mean of 3 steps after 1 warm-up)")
    print()
    print("| case | step | conv fwd | conv bwd (n calls) | conv double-bwd | leaky_relu(+bwd) | Adam | other |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        if name not in by:
            continue
        run = by[name].run
        run()
        steps = 3
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            for _ in range(steps):
                run()
            wall = (time.perf_counter() - t0) / steps
        ka = {e.key: e for e in prof.key_averages()}

        def tot(key: str) -> float:
            return ka[key].cpu_time_total / 1e3 / steps if key in ka else 0.0

        def cnt(key: str) -> int:
            return ka[key].count // steps if key in ka else 0

        dbl = tot("aten::_convolution_double_backward")
        fwd = tot("aten::convolution") - dbl  # the double backward's convolutions are nested in it
        bwd = tot("aten::convolution_backward")
        act = tot("aten::leaky_relu") + tot("aten::leaky_relu_backward")
        opt = tot("Optimizer.step#Adam.step")
        other = 1e3 * wall - fwd - bwd - dbl - act - opt
        print(f"| {name} | {1e3 * wall:.1f} | {fwd:.1f} | {bwd:.1f} ({cnt('aten::convolution_backward')}) | {dbl:.1f} "
              f"| {act:.1f} | {opt:.1f} | {other:.1f} |")
    print()
    print("(profiled wall time includes the profiler's overhead; 'other' = step − the listed columns; the")
    print("mask-LReLU critic's activation runs as where/mul inside a Python autograd.Function, so it is in 'other')")
    print()


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=15, help="timed round-robin rounds (medians over these; default 15)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up rounds (default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's default)")
    p.add_argument("--inner", type=int, default=20, help="MMD² calls averaged per round (default 20)")
    p.add_argument("--exact-every", type=int, default=1,
                   help="time smmd16[exact] only every k-th round (it is ~10× a step; default 1 = every round)")
    p.add_argument("--variants", default="all",
                   help=f"candidate-fix variants: all, none, or a comma list of {','.join(VARIANT_GROUPS)} (default all)")
    p.add_argument("--subsample", default="16", help="real points for the SMMD-subsample variant, comma list (default 16)")
    p.add_argument("--profile", action="store_true", help="also profile one step of the main cases")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no per-round progress on stderr")
    args = p.parse_args(argv)

    if args.repeats < 1 or args.warmup < 0 or args.inner < 1 or args.exact_every < 1:
        p.error("--repeats, --inner and --exact-every must be ≥ 1, --warmup ≥ 0")
    if args.variants == "all":
        args.variants = list(VARIANT_GROUPS)
    elif args.variants == "none":
        args.variants = []
    else:
        args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = set(args.variants) - set(VARIANT_GROUPS)
        if unknown:
            p.error(f"unknown variants {sorted(unknown)}; valid: {', '.join(VARIANT_GROUPS)}")
    args.subsample = [int(k) for k in args.subsample.split(",")]
    if any(not 1 <= k < BATCH for k in args.subsample):
        p.error(f"--subsample values must be in [1, {BATCH - 1}]")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    cases, _ = build_cases(args)
    load0 = _load()
    elapsed = run_rounds(cases, args.repeats, args.warmup, args.exact_every, not args.quiet)
    report(cases, core_ratios() + variant_ratios(args), args, elapsed, load0)
    if args.profile:
        names = ["wgan", "wgan-gp", "smmd", "mmd-gan[ae=0]", "mmd-gan[AE]", "smmd16[projection]",
                 "V wgan[mask-LReLU]", "V wgan-gp[mask-LReLU]", "V smmd[mask-LReLU]"]
        names += [f"V smmd[jac on {k}/64]" for k in args.subsample]
        profile_cases(cases, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
