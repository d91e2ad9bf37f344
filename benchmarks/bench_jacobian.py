#!/usr/bin/env python
"""The SMMD Jacobian term E_μ ‖∇φ‖²_F with a d-dimensional critic (issue 9): cost and noise.

1. **Cost.** One SMMD critic step (zero_grad + critic_loss + backward + Adam) for each
   ``jacobian`` method, side by side in one process, round-robin, medians:
   - the ring critic (MLP 2 → 128 → 128 → 128 → 16, leaky ReLU, batch 128), D = 2 < d = 16;
   - the digits critic (the ``digits-*`` DCGAN critic, 1×16×16 → 16, batch 64), D = 256 > d = 16.
   Methods: ``exact`` (d backward passes), ``forward`` (D forward-mode products), ``projection``
   with 1 and 4 Rademacher probes.
2. **Noise of the estimate**, on the critic of a ring-smmd run with 16-d features trained for
   ``--train-steps`` generator steps with the exact norm, on one fixed real batch of 128, over
   ``--draws`` probe draws: the relative standard deviation of the batch mean X̂, the Jensen bias of
   the scale E[1/(1 + 10 X̂)] · (1 + 10 E X̂) − 1, and the cosine between the critic-loss gradient with
   the estimate and with the exact norm (1 = noise-free). Gaussian and Rademacher probes, k = 1, 4, 16;
   for scale, the same figures for the exact norm on a fresh real batch each draw (the sampling noise
   that every minibatch estimate has, probes or not).
3. **The spectral critic's gain**: ring-sn-smmd at critic lr 1e-3 (the preset before issue 9) and
   2e-4 (the shipped one), seed 0: the product ∏s of the learned per-layer scales and E‖∇φ‖² over the
   first ``--gain-steps`` generator steps.

    python benchmarks/bench_jacobian.py [--rounds 15] [--draws 200] [--threads 1] [--train-steps 600]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model  # noqa: E402

import torch  # noqa: E402

import igm.objectives as O  # noqa: E402
import igm.nn  # noqa: E402
from igm.penalties import jacobian_sqnorm  # noqa: E402

METHODS = [("exact", {}), ("forward", {}), ("projection k=1", {"projections": 1}), ("projection k=4", {"projections": 4})]


def _step(critic, obj, opt, real, fake):
    def run():
        opt.zero_grad(set_to_none=True)
        loss, _ = obj.critic_loss(critic, real, fake)
        loss.backward()
        opt.step()
    return run


def cost(rounds: int) -> list[tuple[str, str, float, float]]:
    torch.manual_seed(0)
    setups = {
        "ring (D=2, d=16, batch 128)": (
            igm.nn.build("mlp", "critic", shape=(2,), z_dim=4, out_dim=16, hidden=128, depth=3, activation="leaky_relu"),
            torch.randn(128, 2), torch.randn(128, 2)),
        "digits (D=256, d=16, batch 64)": (
            igm.nn.build("dcgan", "critic", shape=(1, 16, 16), z_dim=32, out_dim=16, base_channels=32),
            torch.rand(64, 1, 16, 16) * 2 - 1, torch.rand(64, 1, 16, 16) * 2 - 1),
    }
    cases = []
    for setup, (critic, real, fake) in setups.items():
        opt = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.5, 0.9))
        for label, extra in METHODS:
            method = label.split()[0]
            obj = O.get("smmd", jacobian=method, **extra)
            cases.append((setup, label, _step(critic, obj, opt, real, fake), []))
    for r in range(rounds + 2):
        order = cases if r % 2 == 0 else cases[::-1]
        for case in order:
            t0 = time.perf_counter()
            case[2]()
            if r >= 2:  # two warm-up rounds
                case[3].append(time.perf_counter() - t0)
    out = []
    for setup in setups:
        mine = [c for c in cases if c[0] == setup]
        ref = statistics.median(next(c for c in mine if c[1] == "exact")[3])
        for s, label, _, times in mine:
            med = statistics.median(times)
            out.append((s, label, 1e3 * med, med / ref))
    return out


def trained_critic(steps: int):
    from igm.train import apply_overrides, build_run, presets, train

    cfg = apply_overrides(presets.get("ring-smmd"), [
        "model.critic_out=16", "objective.params.jacobian=forward", f"train.steps={steps}",
        "train.progress=false", "eval.every=0", "train.seed=0"])
    run = build_run(cfg, None)
    train(run)
    return run.critic, run.data


def noise(draws: int, train_steps: int) -> tuple[list[tuple[str, int, float, float, float]], float]:
    critic, data = trained_critic(train_steps)
    gen = torch.Generator().manual_seed(1)
    real = data.sample(128, gen)
    shift = torch.randn(128, 2, generator=gen)
    fake = real[torch.randperm(128, generator=gen)] + 0.1 * shift
    params = list(critic.parameters())

    def grad_and_x(real_batch, **kw):
        obj = O.get("smmd", **kw)
        loss, stats = obj.critic_loss(critic, real_batch, fake)
        g = torch.autograd.grad(loss, params, allow_unused=True)
        flat = torch.cat([(gi if gi is not None else torch.zeros_like(p)).flatten() for gi, p in zip(g, params)])
        return flat, float(stats["jacobian"])

    g_exact, x_exact = grad_and_x(real, jacobian="exact")

    def summarise(label, k, draw):
        xs, cos = [], []
        for _ in range(draws):
            g, x = draw()
            xs.append(x)
            cos.append(float(torch.nn.functional.cosine_similarity(g, g_exact, dim=0)))
        mean_x = statistics.fmean(xs)
        rel_sd = statistics.stdev(xs) / mean_x
        jensen = statistics.fmean(1 / (1 + 10 * x) for x in xs) * (1 + 10 * mean_x) - 1  # E[s(X̂)] / s(E X̂) − 1
        return (label, k, rel_sd, jensen, statistics.median(cos))

    # the noise every estimate has anyway: a fresh real batch of 128 (exact norm) each draw
    rows = [summarise("exact, fresh real batch", 0, lambda: grad_and_x(data.sample(128, gen), jacobian="exact"))]
    for probe in ("gaussian", "rademacher"):
        for k in (1, 4, 16):
            rows.append(summarise(probe, k, lambda: grad_and_x(real, jacobian="projection", projections=k, probe=probe)))
    return rows, x_exact


def spectral_gain(steps: int) -> list[tuple[str, list[float], list[float], float, float, float]]:
    """ring-sn-smmd at critic lr 1e-3 (the old preset) and 2e-4 (the shipped one), seed 0: the product
    of the learned per-layer scales ∏s and the logged E‖∇φ‖² over the first ``steps`` generator steps,
    the median and largest step-to-step move of log ∏s, and the median E‖∇φ‖² of the last 100 steps."""
    import math

    from igm.train import apply_overrides, build_run, presets
    from igm.train.loop import train_step

    rows = []
    for lr in ("1e-3", "2e-4"):
        cfg = apply_overrides(presets.get("ring-sn-smmd"), [f"optim.lr_critic={lr}", "train.progress=false",
                                                            "eval.every=0", "train.seed=0"])
        run = build_run(cfg, None)
        scales = [m.scale for m in run.critic.modules() if getattr(m, "learn_scale", False)]
        prods, jacs = [], []
        for _ in range(steps):
            stats = train_step(run)
            run.step += 1
            prods.append(math.prod(float(s.detach()) for s in scales))
            jacs.append(float(stats["critic/jacobian"]))
        moves = [abs(math.log(b / a)) for a, b in zip(prods[:-1], prods[1:])]
        rows.append((lr, prods, jacs, statistics.median(moves), max(moves), statistics.median(jacs[-100:])))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=600)
    ap.add_argument("--gain-steps", type=int, default=600, help="generator steps of the spectral-gain section (0: skip)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, torch {torch.__version__}, "
          f"Python {platform.python_version()}, {args.threads} thread(s), load {os.getloadavg()[0]:.1f}; {date.today()}")
    print("\n| critic | method | median ms per critic step | / exact |\n| --- | --- | ---: | ---: |")
    for setup, label, ms, ratio in cost(args.rounds):
        print(f"| {setup} | {label} | {ms:.2f} | {ratio:.2f}× |")
    rows, x = noise(args.draws, args.train_steps)
    print(f"\nexact E‖∇φ‖² on the batch: {x:.4f} (critic after {args.train_steps} generator steps)")
    print("\n| probe | k | rel. std of X̂ | Jensen bias of the scale | median cos(grad, exact grad) |\n| --- | ---: | ---: | ---: | ---: |")
    for probe, k, sd, jb, cos in rows:
        print(f"| {probe} | {k or '—'} | {100 * sd:.1f}% | {100 * jb:+.2f}% | {cos:.3f} |")
    if args.gain_steps:
        marks = [m for m in (100, 300, 600, 1000) if m <= args.gain_steps]
        print("\n| ring-sn-smmd critic lr | ∏s at steps " + ", ".join(map(str, marks)) + " | E‖∇φ‖² at the same steps "
              "| median / max \\|Δ log ∏s\\| per generator step | median E‖∇φ‖², last 100 steps |\n| --- | --- | --- | --- | ---: |")
        for lr, prods, jacs, med, top, late in spectral_gain(args.gain_steps):
            print(f"| {lr} | {', '.join(f'{prods[m - 1]:.2f}' for m in marks)} | {', '.join(f'{jacs[m - 1]:.2f}' for m in marks)} "
                  f"| {100 * med:.2f}% / {100 * top:.2f}% | {late:.2f} |")


if __name__ == "__main__":
    main()
