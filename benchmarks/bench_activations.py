#!/usr/bin/env python
"""The critic step with igm's activations against the stock ones and the standard recipe (issue 14).

In ONE process, round-robin with a rotating start, medians over rounds, on the DCGAN critic of
``bench_core.py`` (no batch norm, 3×32×32, batch 64, Adam), every case from the same weights:

- ``X``          igm's objective X with the library's critic (``igm.nn.LeakyReLU``);
- ``X[stock]``   the same objective and weights with ``torch.nn.LeakyReLU``;
- ``wgan-gp[standard]``  the peer libraries' recipe, written out: stock activations, real and fake
  forwards, interpolates, ``autograd.grad(..., create_graph=True)``, (‖∇‖ − 1)² penalty.

Ratios (targets from the issue): wgan-gp / wgan ≤ 1.8; wgan-gp / wgan-gp[standard] ≤ 0.87;
smmd / wgan-gp ≤ 0.8; X / X[stock] for mmd-gan-gp, lgan (max-GP) and sobolev, reported. The
critic gradients of one step with the two activations, and of igm's WGAN-GP against the standard
recipe at the same interpolates, are compared (max |Δ| / max |∇|).

    python benchmarks/bench_activations.py [--threads 1 2] [--rounds 15] [--warmup 2]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys

import torch
from torch import Tensor, nn

sys.path.insert(0, os.path.dirname(__file__))
from _common import cpu_model  # noqa: E402
from bench_core import BATCH, IMAGE, Case, critic_step, dcgan_critic, objective_step, quartiles, run_rounds  # noqa: E402

import igm  # noqa: E402
import igm.objectives as O  # noqa: E402
from igm.nn import LeakyReLU  # noqa: E402
from igm.penalties import interpolates  # noqa: E402

PAIRED = ("wgan-gp", "mmd-gan-gp", "lgan", "sobolev")  # objectives that differentiate the critic's input gradient


def standard_wgan_gp(critic: nn.Module, real: Tensor, fake: Tensor, lam: float = 10.0) -> Tensor:
    """The recipe of StudioGAN, Mimicry, torchgan and the WGAN-GP reference code."""
    em = critic(real).mean() - critic(fake).mean()
    points = interpolates(real, fake).requires_grad_(True)
    out = critic(points)
    (grad,) = torch.autograd.grad(out, points, grad_outputs=torch.ones_like(out), create_graph=True)
    penalty = ((grad.reshape(grad.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()
    return -em + lam * penalty


def critics(seed: int) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    ours = dcgan_critic(1, act=lambda: LeakyReLU(0.2))
    stock = dcgan_critic(1, act=lambda: nn.LeakyReLU(0.2))
    stock.load_state_dict(ours.state_dict())  # the activations hold nothing: the same keys
    return ours, stock


def grads_of(critic: nn.Module, loss_fn, seed: int) -> list[Tensor]:
    critic.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same interpolates
    loss_fn(critic).backward()
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in critic.parameters()]


def relative_gap(a: list[Tensor], b: list[Tensor]) -> float:
    scale = max(float(t.abs().max()) for t in b)
    return max(float((x - y).abs().max()) for x, y in zip(a, b)) / scale


def gradient_checks(real: Tensor, fake: Tensor, seed: int) -> list[tuple[str, float]]:
    out = []
    for name in PAIRED + ("smmd",):
        obj = O.get(name)
        ours, stock = critics(seed)
        loss = lambda c, obj=obj: obj.critic_loss(c, real, fake)[0]  # noqa: E731
        out.append((f"{name}: igm activation vs stock", relative_gap(grads_of(ours, loss, 1), grads_of(stock, loss, 1))))
    ours, stock = critics(seed)
    igm_gp = grads_of(ours, lambda c: O.get("wgan-gp").critic_loss(c, real, fake)[0], 1)
    std_gp = grads_of(stock, lambda c: standard_wgan_gp(c, real, fake), 1)
    out.append(("wgan-gp: igm step vs the standard recipe", relative_gap(igm_gp, std_gp)))
    return out


def build(real: Tensor, fake: Tensor, seed: int) -> list[Case]:
    cases = []
    ours, _ = critics(seed)
    cases.append(Case("wgan", objective_step(O.get("wgan"), ours, real, fake)))
    ours, _ = critics(seed)
    cases.append(Case("smmd", objective_step(O.get("smmd"), ours, real, fake)))
    for name in PAIRED:
        ours, stock = critics(seed)
        cases.append(Case(name, objective_step(O.get(name), ours, real, fake)))
        cases.append(Case(f"{name}[stock]", objective_step(O.get(name), stock, real, fake)))
    _, stock = critics(seed)
    cases.append(Case("wgan-gp[standard]", critic_step(stock, lambda c=stock: standard_wgan_gp(c, real, fake))))
    return cases


RATIOS = [("wgan-gp / wgan", "wgan-gp", "wgan", 1.8), ("wgan-gp / wgan-gp[standard]", "wgan-gp", "wgan-gp[standard]", 0.87),
          ("smmd / wgan-gp", "smmd", "wgan-gp", 0.8)] + [
    (f"{n} / {n}[stock]", n, f"{n}[stock]", None) for n in PAIRED]


def paired(by: dict[str, Case], num: str, den: str) -> tuple[float, float, float]:
    a, b = by[num].total(), by[den].total()
    per_round = [x / y for x, y in zip(a, b)]
    lo, hi = quartiles(per_round)
    return statistics.median(a) / statistics.median(b), lo, hi


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    g = torch.Generator().manual_seed(args.seed)
    real = torch.rand(BATCH, *IMAGE, generator=g) * 2 - 1
    fake = torch.tanh(torch.randn(BATCH, *IMAGE, generator=g))
    print("# igm activations: the critic step against the stock modules and the standard recipe")
    print(f"date {datetime.date.today().isoformat()}; torch {torch.__version__}; igm {igm.__version__}; "
          f"python {platform.python_version()}; cpu {cpu_model()}, {os.cpu_count()} logical cores")
    print(f"command: python {' '.join(sys.argv)}; load average at start {os.getloadavg()[0]:.2f}")
    torch.set_num_threads(1)
    print("\n| gradients compared | max abs difference / max abs gradient |\n|---|---|")
    for label, gap in gradient_checks(real, fake, args.seed):
        print(f"| {label} | {gap:.1e} |")
    for threads in args.threads:
        torch.set_num_threads(threads)
        cases = build(real, fake, args.seed)
        elapsed = run_rounds(cases, args.rounds, args.warmup, exact_every=1, verbose=False)
        by = {c.name: c for c in cases}
        print(f"\n## {threads} thread(s): {args.rounds} rounds in {elapsed:.0f} s, load average after {os.getloadavg()[0]:.2f}\n")
        print("| case | median step (ms) |\n|---|---|")
        for c in cases:
            print(f"| {c.name} | {1e3 * statistics.median(c.total()):.1f} |")
        print("\n| ratio | median ratio | per-round quartiles | target |\n|---|---|---|---|")
        for label, num, den, target in RATIOS:
            r, lo, hi = paired(by, num, den)
            verdict = "reported" if target is None else f"≤ {target}: {'PASS' if r <= target else 'FAIL'}"
            print(f"| {label} | {r:.3f} | {lo:.3f}–{hi:.3f} | {verdict} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
