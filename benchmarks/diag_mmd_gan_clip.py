"""Why ring-mmd-gan collapses: how far apart the clipped critic puts the ring's samples.

Trains ring-mmd-gan (seed 0, one thread) for 300 steps with the preset's clip 0.01, with clip 0.05
and with a spectrally normalised critic instead of clipping, and prints the median and largest
pairwise distance between the critic's features of 512 real samples at steps 0, 100 and 300, and the
critic's MMD² at step 300. The preset's RBF bandwidths are 1 to 16, so features 1e-4 apart are one
point to every kernel. Used by docs/quality.md.

    python benchmarks/diag_mmd_gan_clip.py
"""

from __future__ import annotations

import torch

from igm.train import apply_overrides, build_run, presets
from igm.train.loop import train_step

SETTINGS = {
    "clip 0.01 (the preset)": [],
    "clip 0.05": ["objective.params.clip=0.05"],
    "spectral norm, no clip": ["objective.params.clip=null", "model.spectral=fixed"],
}
CHECKPOINTS = (0, 100, 300)


def main() -> None:
    torch.set_num_threads(1)
    print("| critic | step | median feature distance | largest | critic MMD² |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, overrides in SETTINGS.items():
        cfg = apply_overrides(presets.get("ring-mmd-gan"),
                              ["train.progress=false", "eval.every=0", "train.seed=0", *overrides])
        run = build_run(cfg, None)
        x = run.data.sample(512, torch.Generator().manual_seed(1))
        stats: dict = {}
        for step in range(CHECKPOINTS[-1] + 1):
            if step in CHECKPOINTS:
                with torch.no_grad():
                    d = torch.pdist(run.critic(x))
                mmd2 = f"{float(stats['critic/mmd2']):.2e}" if stats else "—"
                print(f"| {name} | {step} | {d.median():.1e} | {d.max():.1e} | {mmd2} |", flush=True)
            if step < CHECKPOINTS[-1]:
                stats = train_step(run)
                run.step += 1


if __name__ == "__main__":
    main()
