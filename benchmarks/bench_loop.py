#!/usr/bin/env python
"""CPU benchmark of the training loop's overhead (issue: training engine).

Measures, in ONE process, with interleaved rounds and medians, the time per TRAINING ITERATION
(one generator step together with its ``n_critic`` critic steps) of

(a) ``igm.train.loop.train_step(run)`` on a run built by ``igm.train.build_run(cfg, out_dir=None)``
    (no I/O), and
(b) a plain PyTorch loop written the obvious way (pytorch/examples DCGAN style): for each critic
    step sample a real batch and z, ``fake = G(z)`` without a graph, the critic loss written inline
    with torch ops, ``zero_grad`` / ``backward`` / ``step``; then the generator step. It runs on deep
    copies of the run's generator and critic, with fresh optimisers of the same hyperparameters, the
    same batch size, ``n_critic``, z distribution and (per-tensor) gradient clipping. Its losses are
    written by hand and do not call igm's objectives, kernels or penalties.

Cases: ``digits-wgan-gp``, ``digits-smmd``, ``digits-gan`` (16×16 digits, the presets as shipped) and
``cifar-dcgan-wgan-gp`` (digits-wgan-gp's config with a 32×32×3 DCGAN pair, base width 64, and a
random in-memory image set). Each round runs, for every case, ``--iters`` iterations of (a) and of
(b) in ABBA order (which side starts alternates between rounds and cases), each iteration timed on
its own. Reported per case: the median ms per iteration of each side over all rounds (the verdict:
overhead = median(a)/median(b) − 1, target ≤ 5 %), a bootstrap 95 % interval of that overhead
(resampling whole rounds), the 10th percentiles (noise from other processes only adds time, so p10
tracks the unloaded cost) and the medians of process CPU time. Before timing, a check confirms that
(b)'s inline losses give the same values and critic gradients as igm's objectives on the same batch.

By default (b) builds the critic's fake batch under ``torch.no_grad()`` exactly as igm does, the
stricter baseline; ``--detach`` switches it to the literal ``G(z).detach()`` of pytorch/examples
(which also records G's graph and is therefore a little slower, flattering (a)).

Diagnostics: ``--tiny`` adds the digits presets with 2-channel networks, where almost only the
fixed per-step costs remain, so (a) − (b) there is the loop's and objectives' own cost in ms;
``--components`` times the pieces of one iteration alone (critic loss + backward, generator loss +
backward, the non-finite check, the generator step's real batch, gradient clipping), (a)'s and (b)'s
side by side; ``--profile CASE`` prints torch.profiler tables and the ATen ops that (a) dispatches
more or less often than (b).

    python benchmarks/bench_loop.py [--rounds N] [--threads T] [--iters K] [--cases a,b] [--tiny]
                                    [--detach] [--json FILE]
    python benchmarks/bench_loop.py --components --threads 1
    python benchmarks/bench_loop.py --profile digits-gan --threads 1
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
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
import torch.nn.functional as F
from torch import Tensor, nn

import igm
import igm.nn
from igm.train import presets
from igm.train.build import build_run, make_optimizer
from igm.train.loop import Run, train_step

TARGET = 0.05
DIGITS_CASES = ("digits-wgan-gp", "digits-smmd", "digits-gan")
CIFAR_CASE = "cifar-dcgan-wgan-gp"
ALL_CASES = DIGITS_CASES + (CIFAR_CASE,)
TINY = "/tiny-nets"  # --tiny: the digits presets with 2-channel networks (fixed per-step costs only)
TINY_CASES = tuple(n + TINY for n in DIGITS_CASES)
# default iterations of each side per round
DEFAULT_ITERS = {"digits-wgan-gp": 6, "digits-smmd": 6, "digits-gan": 8, CIFAR_CASE: 2, **{n: 8 for n in TINY_CASES}}


# ------------------------------------------------------------------------------------------------
# the CIFAR-size case: digits-wgan-gp's config, a 32×32×3 DCGAN pair and random in-memory images


class RandomImages:
    """A tiny in-memory image set: ``size`` random images in [−1, 1], sampled with replacement."""

    kind = "image"

    def __init__(self, shape=(3, 32, 32), size: int = 2048, seed: int = 0):
        self.shape = tuple(shape)
        g = torch.Generator().manual_seed(seed)
        self.data = torch.rand(size, *self.shape, generator=g) * 2 - 1

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.data[torch.randint(len(self.data), (n,), generator=generator)]


def cifar_run(base_channels: int) -> Run:
    cfg = presets.get("digits-wgan-gp")
    run = build_run(cfg, out_dir=None)  # for the objective, config and RNG
    shape, m = (3, 32, 32), cfg.model
    torch.manual_seed(cfg.train.seed)
    gen = igm.nn.build("dcgan", "generator", shape=shape, z_dim=m.z_dim, base_channels=base_channels)
    critic = igm.nn.build("dcgan", "critic", shape=shape, z_dim=m.z_dim, out_dim=1, base_channels=base_channels)
    return dataclasses.replace(
        run,
        generator=gen,
        critic=critic,
        opt_g=make_optimizer(cfg, gen.parameters(), cfg.optim.lr_generator),
        opt_c=make_optimizer(cfg, critic.parameters(), cfg.optim.lr_critic),
        data=RandomImages(shape, seed=cfg.train.seed),
    )


# ------------------------------------------------------------------------------------------------
# (b): the objectives written inline with torch ops (independent of igm's objectives)


def wgan_gp_critic(D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    d_real, d_fake = D(real).view(-1), D(fake).view(-1)
    eps = torch.rand(real.shape[0], 1, 1, 1)
    xhat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(xhat).sum(), xhat, create_graph=True)
    gp = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    return d_fake.mean() - d_real.mean() + 10.0 * gp


def wgan_gp_generator(D: nn.Module, real: Tensor | None, fake: Tensor) -> Tensor:
    return -D(fake).mean()


def gan_critic(D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    return F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()


def gan_generator(D: nn.Module, real: Tensor | None, fake: Tensor) -> Tensor:
    return F.softplus(-D(fake)).mean()


def _gaussian_mmd2(fx: Tensor, fy: Tensor) -> Tensor:
    """Unbiased MMD² with exp(−‖a − b‖² / 2) on features (n, d)."""
    m = fx.shape[0]
    f = torch.cat([fx, fy])
    sq = (f * f).sum(1)
    k = torch.exp(-0.5 * (sq[:, None] + sq[None, :] - 2 * f @ f.T).clamp_min(0))
    kxx, kxy, kyy = k[:m, :m], k[:m, m:], k[m:, m:]
    n = kyy.shape[0]
    return (
        (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
        + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
        - 2 * kxy.mean()
    )


def _smmd_scale(D: nn.Module, real: Tensor, create_graph: bool) -> tuple[Tensor, Tensor]:
    """(φ(real), 1 / (1 + 10 E‖∇φ(real)‖²)); φ scalar-valued."""
    real = real.detach().requires_grad_(True)
    fx = D(real)
    (grad,) = torch.autograd.grad(fx.sum(), real, create_graph=create_graph)
    return fx, 1.0 / (1.0 + 10.0 * grad.flatten(1).pow(2).sum(1).mean())


def smmd_critic(D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    fx, scale = _smmd_scale(D, real, create_graph=True)
    return -scale * _gaussian_mmd2(fx, D(fake))


def smmd_generator(D: nn.Module, real: Tensor | None, fake: Tensor) -> Tensor:
    fx, scale = _smmd_scale(D, real, create_graph=False)
    return scale.detach() * _gaussian_mmd2(fx.detach(), D(fake))


INLINE = {  # objective name → (critic loss, generator loss, does the generator loss need a real batch)
    "wgan-gp": (wgan_gp_critic, wgan_gp_generator, False),
    "gan": (gan_critic, gan_generator, False),
    "smmd": (smmd_critic, smmd_generator, True),
}


@dataclass
class PlainLoop:
    """The obvious hand-written loop on its own copies of G and D."""

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    data: Tensor | RandomImages
    batch: int
    n_critic: int
    z_dim: int
    uniform_z: bool
    clip: float | None
    critic_loss: Callable
    generator_loss: Callable
    gen_needs_real: bool
    detach: bool = False
    rng: torch.Generator = field(default_factory=torch.Generator)

    def real(self) -> Tensor:
        if isinstance(self.data, Tensor):
            return self.data[torch.randint(len(self.data), (self.batch,), generator=self.rng)]
        return self.data.sample(self.batch, self.rng)

    def z(self) -> Tensor:
        if self.uniform_z:
            return torch.rand(self.batch, self.z_dim, generator=self.rng) * 2 - 1
        return torch.randn(self.batch, self.z_dim, generator=self.rng)

    def clip_(self, module: nn.Module) -> None:
        if self.clip is None:
            return
        with torch.no_grad():
            for p in module.parameters():
                if p.grad is not None:
                    p.grad.mul_((self.clip / (p.grad.norm() + 1e-12)).clamp(max=1.0))

    def iteration(self) -> None:
        G, D = self.G, self.D
        for _ in range(self.n_critic):
            real, z = self.real(), self.z()
            if self.detach:
                fake = G(z).detach()
            else:
                with torch.no_grad():
                    fake = G(z)
            loss_d = self.critic_loss(D, real, fake)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.clip_(D)
            self.opt_d.step()
        real = self.real() if self.gen_needs_real else None
        loss_g = self.generator_loss(D, real, G(self.z()))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.clip_(G)
        self.opt_g.step()


def plain_from(run: Run, detach: bool) -> PlainLoop:
    cfg = run.config
    G, D = copy.deepcopy(run.generator), copy.deepcopy(run.critic)
    o = cfg.optim
    opt = (lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=tuple(o.betas))) if o.optimizer == "adam" else (
        lambda ps, lr: torch.optim.RMSprop(ps, lr=lr)
    )
    c_loss, g_loss, needs_real = INLINE[cfg.objective.name]
    data = run.data if isinstance(run.data, RandomImages) else run.data.tensors()
    return PlainLoop(
        G=G, D=D, opt_g=opt(G.parameters(), o.lr_generator), opt_d=opt(D.parameters(), o.lr_critic),
        data=data, batch=cfg.train.batch_size, n_critic=cfg.train.n_critic, z_dim=cfg.model.z_dim,
        uniform_z=cfg.model.z_dist == "uniform", clip=o.grad_clip, critic_loss=c_loss, generator_loss=g_loss,
        gen_needs_real=needs_real, detach=detach, rng=torch.Generator().manual_seed(cfg.train.seed),
    )


def check_same_maths(run: Run, plain: PlainLoop) -> str:
    """(b)'s inline losses vs igm's objective on the same batch and critic: values and critic grads."""
    g = torch.Generator().manual_seed(123)
    D = copy.deepcopy(run.critic)
    bs = run.config.train.batch_size
    with torch.no_grad():
        real = plain.real()
        z = torch.rand(bs, run.config.model.z_dim, generator=g) * 2 - 1
        fake = run.generator(z)
    out = []
    for what, mine, theirs in (
        ("critic", plain.critic_loss, run.objective.critic_loss),
        ("generator", plain.generator_loss, run.objective.generator_loss),
    ):
        losses, grads = [], []
        for fn, is_igm in ((theirs, True), (mine, False)):
            D.zero_grad(set_to_none=True)
            torch.manual_seed(7)  # the WGAN-GP interpolation weights
            loss = fn(D, real, fake)[0] if is_igm else fn(D, real, fake)
            loss.backward()
            losses.append(float(loss.detach()))
            grads.append(torch.cat([p.grad.flatten() for p in D.parameters() if p.grad is not None]))
        rel_loss = abs(losses[0] - losses[1]) / max(abs(losses[0]), 1e-12)
        rel_grad = float((grads[0] - grads[1]).norm() / grads[0].norm().clamp_min(1e-30))
        if rel_loss > 1e-4 or rel_grad > 1e-3:
            raise SystemExit(f"inline {what} loss differs from igm's: rel. loss diff {rel_loss:.2e}, grad {rel_grad:.2e}")
        out.append(f"{what}: loss {losses[0]:+.5g}, rel. diff loss {rel_loss:.1e} / critic grad {rel_grad:.1e}")
    return "; ".join(out)


# ------------------------------------------------------------------------------------------------
# timing


@dataclass
class Case:
    """One case: its igm run (a), its plain loop (b), and per-iteration times, one list per round."""

    name: str
    run: Run
    plain: PlainLoop
    iters: int  # iterations of EACH side per round, timed one by one in ABBA order
    a: list[list[float]] = field(default_factory=list)  # wall seconds per iteration, [round][i]
    b: list[list[float]] = field(default_factory=list)
    a_cpu: list[list[float]] = field(default_factory=list)  # process CPU seconds per iteration
    b_cpu: list[list[float]] = field(default_factory=list)

    def step_a(self) -> None:
        train_step(self.run)
        self.run.step += 1

    def step_b(self) -> None:
        self.plain.iteration()

    def round(self, a_first: bool, record: bool = True) -> None:
        """``iters`` iterations of each side, alternating A B B A A B … (or B A A B …)."""
        sides = {True: (self.step_a, [], []), False: (self.step_b, [], [])}
        for i in range(2 * self.iters):
            is_a = a_first == (i % 4 in (0, 3))
            step, wall, cpu = sides[is_a]
            c0, t0 = time.process_time(), time.perf_counter()
            step()
            t1, c1 = time.perf_counter(), time.process_time()
            wall.append(t1 - t0)
            cpu.append(c1 - c0)
        if record:
            self.a.append(sides[True][1]), self.a_cpu.append(sides[True][2])
            self.b.append(sides[False][1]), self.b_cpu.append(sides[False][2])


def build_case(name: str, iters: int, detach: bool, cifar_channels: int) -> Case:
    if name == CIFAR_CASE:
        run = cifar_run(cifar_channels)
    elif name.endswith(TINY):  # the preset with 2-channel networks: what is left is fixed per-step cost
        cfg = presets.get(name[: -len(TINY)])
        m = dataclasses.replace(cfg.model, generator_params={"base_channels": 2}, critic_params={"base_channels": 2})
        run = build_run(dataclasses.replace(cfg, model=m), out_dir=None)
    else:
        run = build_run(presets.get(name), out_dir=None)
    cfg = run.config
    assert cfg.train.extra_critic_steps == 0 and cfg.train.ema is None and cfg.optim.schedule == "constant", name
    return Case(name, run, plain_from(run, detach), iters)


def q(xs: list[float], p: float) -> float:
    s = sorted(xs)
    i = (len(s) - 1) * p
    lo, hi = int(i), min(int(i) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (i - lo)


def profile(case: Case, iters: int = 5) -> None:
    """torch.profiler tables of (a) and (b), and the per-iteration difference in dispatched ATen ops."""
    from torch.profiler import ProfilerActivity, profile as tprofile

    counts: dict[str, dict[str, tuple[float, float]]] = {}
    for label, step in (("(a) igm train_step", case.step_a), ("(b) plain loop", case.step_b)):
        step()
        with tprofile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(iters):
                step()
        events = prof.key_averages()
        counts[label] = {e.key: (e.count / iters, e.self_cpu_time_total / iters / 1e3) for e in events}
        print(f"\n== {case.name} {label}: {iters} iterations (self CPU ms are per {iters} iterations)")
        print(events.table(sort_by="self_cpu_time_total", row_limit=20))
    (la, a), (lb, b) = counts.items()
    n_a = sum(c for k, (c, _) in a.items() if k.startswith("aten::"))
    n_b = sum(c for k, (c, _) in b.items() if k.startswith("aten::"))
    print(f"\nATen ops dispatched per iteration: (a) {n_a:.0f}, (b) {n_b:.0f}")
    print("ops dispatched a different number of times per iteration ((a) − (b); self CPU ms per iteration is noisy):")
    rows = []
    for k in set(a) | set(b):
        ca, ta = a.get(k, (0.0, 0.0))
        cb, tb = b.get(k, (0.0, 0.0))
        if ca != cb:
            rows.append((ca - cb, ta - tb, k))
    for dc, dt, k in sorted(rows, key=lambda r: (-abs(r[0]), r[2])):
        print(f"  {k:<55} count {dc:+6.1f}  self CPU {dt:+7.3f} ms")


def components(case: Case, blocks: int = 15, block_s: float = 0.1) -> None:
    """Where (a) − (b) comes from: the pieces of one iteration timed alone, (a)'s and (b)'s side by side.

    Each piece runs repeatedly in blocks of about ``block_s`` seconds, blocks alternate between the
    two sides; the per-call time is process CPU time (robust to other processes' load; with one torch
    thread it is the time of the work itself), median over blocks, minimum in brackets.
    """
    from igm.train import step as L

    run, plain = case.run, case.plain
    obj, n_crit = run.objective, run.config.train.n_critic
    D = copy.deepcopy(run.critic)
    bs = run.config.train.batch_size
    with torch.no_grad():
        real, fake = plain.real(), run.generator(plain.z())
    fake_g = fake.clone().requires_grad_(True)  # the generator step's fake, with a graph leaf
    params = [p for p in D.parameters() if p.requires_grad]

    def fb(loss_fn):
        def go():
            D.zero_grad(set_to_none=True)
            loss_fn().backward()
        return go

    def clip_plain():
        plain.clip_(D)

    loss = obj.critic_loss(D, real, fake)[0].detach()
    fb(lambda: obj.critic_loss(D, real, fake)[0])()  # grads for the clipping pieces
    pieces = [
        (f"critic loss + backward (×{n_crit})", n_crit,
         fb(lambda: obj.critic_loss(D, real, fake)[0]), fb(lambda: plain.critic_loss(D, real, fake))),
        ("generator loss + backward (×1)", 1,
         fb(lambda: obj.generator_loss(D, real, fake_g)[0]),
         fb(lambda: plain.generator_loss(D, real if plain.gen_needs_real else None, fake_g))),
        (f"non-finite check (×{n_crit + 1})", n_crit + 1, lambda: L.finite(loss, "critic", 0), lambda: None),
        ("real batch for the generator step (×1)", 1,
         lambda: L._real(run, bs), (lambda: plain.real()) if plain.gen_needs_real else (lambda: None)),
    ]
    if run.config.optim.grad_clip is not None:
        c = run.config.optim.grad_clip
        fb(lambda: obj.critic_loss(D, real, fake)[0])()
        pieces.append((f"critic grad clipping (×{n_crit})", n_crit, lambda: L._clip_per_tensor(params, c), clip_plain))

    print(f"\n== {case.name}: pieces of one iteration, CPU µs per call (median over {blocks} blocks [min])")
    print(f"| {'piece':<40} | (a) igm          | (b) plain        | (a) − (b) per iteration |")
    print(f"|{'-' * 42}|{'-' * 18}|{'-' * 18}|{'-' * 25}|")
    total = 0.0
    for label, count, fa, fb_ in pieces:
        ta, tb = [], []
        t0 = time.perf_counter()
        for f in (fa, fb_, fa, fb_):
            f()
        per_block = max(1, int(block_s / max((time.perf_counter() - t0) / 4, 1e-6)))
        for k in range(blocks):
            for f, out in ((fa, ta), (fb_, tb)) if k % 2 == 0 else ((fb_, tb), (fa, ta)):
                t0 = time.process_time()
                for _ in range(per_block):
                    f()
                out.append((time.process_time() - t0) / per_block * 1e6)
        ma, mb = statistics.median(ta), statistics.median(tb)
        diff = (ma - mb) * count
        total += diff
        print(f"| {label:<40} | {ma:8.0f} [{min(ta):5.0f}] | {mb:8.0f} [{min(tb):5.0f}] | {diff / 1e3:+19.2f} ms |")
    print(f"| {'sum':<40} | {'':16} | {'':16} | {total / 1e3:+19.2f} ms |")


def bootstrap_ci(a: list[list[float]], b: list[list[float]], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of median(a)/median(b) − 1, resampling whole rounds (keeps the pairing)."""
    import random

    rng = random.Random(seed)
    k = len(a)
    out = []
    for _ in range(n):
        idx = [rng.randrange(k) for _ in range(k)]
        ra = [x for i in idx for x in a[i]]
        rb = [x for i in idx for x in b[i]]
        out.append(statistics.median(ra) / statistics.median(rb) - 1)
    return q(out, 0.025), q(out, 0.975)


def report(cases: list[Case], rounds: int) -> None:
    print(
        f"\n{rounds} interleaved rounds; ms per training iteration (1 generator step + its n_critic critic steps), "
        "each iteration timed on its own.\n"
        "median: over all iterations (the verdict: overhead = median(a) / median(b) − 1, target ≤ 5 %); "
        "95% CI: bootstrap over rounds;\n"
        "p10: 10th percentiles (noise only adds time, so p10 tracks the unloaded cost); "
        "CPU: medians of process_time (this process's CPU seconds)."
    )
    head = (
        f"| {'case':<28} | (a) igm | (b) plain | overhead | 95% CI          | p10 (a) | p10 (b) | overhead p10 "
        "| CPU (a) | CPU (b) | overhead CPU | result |"
    )
    print(head)
    print("|" + "|".join("-" * len(p) for p in head.split("|")[1:-1]) + "|")
    for c in cases:
        fa = [x for r in c.a for x in r]
        fb = [x for r in c.b for x in r]
        ca = [x for r in c.a_cpu for x in r]
        cb = [x for r in c.b_cpu for x in r]
        ma, mb = statistics.median(fa) * 1e3, statistics.median(fb) * 1e3
        pa, pb = q(fa, 0.1) * 1e3, q(fb, 0.1) * 1e3
        ua, ub = statistics.median(ca) * 1e3, statistics.median(cb) * 1e3
        lo, hi = bootstrap_ci(c.a, c.b)
        over = ma / mb - 1
        verdict = "PASS" if over <= TARGET else "FAIL"
        print(
            f"| {c.name:<28} | {ma:7.1f} | {mb:9.1f} | {over * 100:+7.1f}% | {lo * 100:+5.1f}% … {hi * 100:+5.1f}% "
            f"| {pa:7.1f} | {pb:7.1f} | {(pa / pb - 1) * 100:+11.1f}% | {ua:7.1f} | {ub:7.1f} | {(ua / ub - 1) * 100:+11.1f}% "
            f"| {verdict:<6} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--iters", type=int, default=None, help="iterations of each side per round (default: per case)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed warm-up rounds (default 1)")
    ap.add_argument("--cases", default=",".join(ALL_CASES), help=f"comma-separated subset of {', '.join(ALL_CASES)}")
    ap.add_argument("--tiny", action="store_true", help=f"add {', '.join(TINY_CASES)}")
    ap.add_argument("--cifar-channels", type=int, default=64, help="DCGAN base width of the CIFAR case (default 64)")
    ap.add_argument("--detach", action="store_true", help="(b) uses G(z).detach() instead of torch.no_grad()")
    ap.add_argument("--flush-denormal", action="store_true", help="torch.set_flush_denormal(True) for both sides")
    ap.add_argument("--json", metavar="PATH", help="also write the per-iteration times (seconds) as JSON")
    ap.add_argument("--profile", metavar="CASE", help="profile (a) and (b) of one case instead of timing")
    ap.add_argument("--components", action="store_true", help="time the pieces of an iteration alone instead")
    args = ap.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    names = [args.profile] if args.profile else [c for c in args.cases.split(",") if c]
    if args.tiny and not args.profile:
        names += [n for n in TINY_CASES if n not in names]
    for n in names:
        if n not in ALL_CASES + TINY_CASES:
            ap.error(f"unknown case {n!r}; valid: {', '.join(ALL_CASES + TINY_CASES)}")

    print(f"igm training-loop overhead — {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"torch {torch.__version__}, igm {getattr(igm, '__version__', '?')}, Python {platform.python_version()}")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}")
    if hasattr(os, "getloadavg"):
        print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"command: python {' '.join(sys.argv)}")
    print(f"(b) fake batch for the critic: {'G(z).detach()' if args.detach else 'torch.no_grad(): G(z)'}")

    cases = [build_case(n, args.iters or DEFAULT_ITERS[n], args.detach, args.cifar_channels) for n in names]
    for c in cases:
        cfg = c.run.config
        print(
            f"  {c.name}: objective {cfg.objective.name}, batch {cfg.train.batch_size}, n_critic {cfg.train.n_critic}, "
            f"grad_clip {cfg.optim.grad_clip}, data {tuple(c.run.data.shape)}, G {sum(p.numel() for p in c.run.generator.parameters())} "
            f"/ D {sum(p.numel() for p in c.run.critic.parameters())} params, {c.iters} it/side/round"
        )
        print(f"    same maths: {check_same_maths(c.run, c.plain)}")

    if args.profile:
        profile(cases[0])
        return
    if args.components:
        for c in cases:
            components(c)
        return

    gc.collect()
    gc.disable()  # collections would land at random on one side; we collect between cases instead
    try:
        for r in range(args.warmup):
            for c in cases:
                c.round(a_first=r % 2 == 0, record=False)
        t_start = time.perf_counter()
        for r in range(args.rounds):
            for i, c in enumerate(cases):
                c.round(a_first=(r + i) % 2 == 0)
                gc.collect()
            print(f"  round {r + 1}/{args.rounds} done ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr)
    finally:
        gc.enable()

    report(cases, args.rounds)
    if args.json:
        import json

        raw = {c.name: {"a": c.a, "b": c.b, "a_cpu": c.a_cpu, "b_cpu": c.b_cpu} for c in cases}
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv, "threads": torch.get_num_threads(), "torch": torch.__version__, "cases": raw}, f)
    if hasattr(os, "getloadavg"):
        print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"total time {time.perf_counter() - T0:.0f} s")


T0 = time.perf_counter()

if __name__ == "__main__":
    main()
