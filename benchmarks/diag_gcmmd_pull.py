"""Where the GCMMD generator is pulled between the ring's modes.

Loads the final checkpoints of ``bench_quality.py``'s ring-gcmmd runs (``--runs DIR``: DIR/seedN)
and finds the mode with the smallest share of 4,000 generated samples. It then puts 8 probe points
on the chord from each neighbouring mode towards that one, at fractions t of the way. At each probe
it prints the generator's descent direction (−∂ loss/∂ probe, the probes sharing a batch with 56
generated samples against 64 real ones): its size and its cosine with the direction to the emptiest
mode. Used by docs/quality.md.

    # the preset before its fix (5 critic steps, 3000 steps), where seed 3 keeps a mode thin
    python benchmarks/bench_quality.py --presets ring-gcmmd --seeds 0,3 --out runs/exp/gcmmd-nc5 \
        train.n_critic=5 train.steps=3000
    python benchmarks/diag_gcmmd_pull.py --runs runs/exp/gcmmd-nc5/ring-gcmmd --seeds 3,0
"""

from __future__ import annotations

import argparse
import math

import torch

from igm.train import checkpoint as ckpt
from igm.train import load_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="3,0")
    ap.add_argument("--runs", default="runs/quality/ring-gcmmd")
    args = ap.parse_args()
    torch.set_num_threads(1)
    modes = torch.tensor([[2 * math.cos(math.pi * k / 4), 2 * math.sin(math.pi * k / 4)] for k in range(8)])
    for seed in (int(s) for s in args.seeds.split(",")):
        run_dir = f"{args.runs}/seed{seed}"
        run = load_run(run_dir, ["train.progress=false"])
        state, path, _ = ckpt.load_latest(f"{run_dir}/checkpoints")
        run.load_state_dict(state)
        g = torch.Generator().manual_seed(5)
        z_dim = run.config.model.z_dim
        with torch.no_grad():
            y = run.generator(torch.randn(4000, z_dim, generator=g))
        share = torch.bincount(torch.cdist(y, modes).argmin(1), minlength=8).double() / len(y)
        empty = int(share.argmin())
        print(f"seed {seed} (step {state['step']}): share per mode {', '.join(f'{float(s):.3f}' for s in share)}; "
              f"the smallest is mode {empty}")
        print("| from mode | t | size of the pull | cos(pull, towards the emptiest mode) |\n| ---: | ---: | ---: | ---: |")
        real = run.data.sample(64, g)
        fake = run.generator(torch.randn(64, z_dim, generator=g)).detach()
        for nb in ((empty - 1) % 8, (empty + 1) % 8):
            for t in (0.0, 0.3, 0.6, 0.9):
                p = (1 - t) * modes[nb] + t * modes[empty]
                probe = p.expand(8, 2).clone().requires_grad_(True)
                loss, _ = run.objective.generator_loss(run.critic, real, torch.cat([fake[:56], probe]))
                (grad,) = torch.autograd.grad(loss, probe)
                pull = -grad.mean(0)
                towards = (modes[empty] - p) / (modes[empty] - p).norm()
                cos = float(pull @ towards / pull.norm().clamp_min(1e-30))
                print(f"| {nb} | {t} | {float(pull.norm()):.1e} | {cos:+.2f} |")


if __name__ == "__main__":
    main()
