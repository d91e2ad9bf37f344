"""GPU timings for the evaluation maths, the Inception extractor and the core critic steps.

Run on a CUDA machine:  PYTHONPATH=src python benchmarks/bench_gpu.py
Medians of repeated timings with CUDA synchronisation; no reference library is involved here
(the CPU benchmarks compare against references side by side).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

import igm.objectives as O
from igm.metrics import fid, kid
from igm.metrics.features import InceptionFID


def timed(fn, repeats=10, warmup=2):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def dcgan_critic(out_dim=1):
    return nn.Sequential(
        nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(256, out_dim, 4, 1, 0), nn.Flatten())


def main():
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    g = torch.Generator(device=dev).manual_seed(0)
    for n in (500, 5000):
        a = torch.randn(n, 2048, device=dev, generator=g)
        b = torch.randn(n, 2048, device=dev, generator=g) + 0.1
        print(f"FID  n={n:5d} d=2048 (float64, eigh)      {timed(lambda: fid(a, b), 5) * 1e3:9.1f} ms")
    a = torch.randn(5000, 2048, device=dev, generator=g)
    b = torch.randn(5000, 2048, device=dev, generator=g)
    print(f"KID  100 subsets x 1000, d=2048            {timed(lambda: kid(a, b, subsets=100, subset_size=1000), 5) * 1e3:9.1f} ms")
    net = InceptionFID(pretrained=False).to(dev)
    for bs in (64, 256):
        x = torch.rand(bs, 3, 32, 32, device=dev) * 2 - 1
        with torch.no_grad():
            t = timed(lambda: net(x), 10)
        print(f"Inception features, batch {bs:3d}, fp32        {bs / t:9.0f} images/s")
    real = torch.randn(64, 3, 32, 32, device=dev)
    fake = torch.randn(64, 3, 32, 32, device=dev)
    rows = {}
    for label, name, hp, out_dim in [("wgan", "wgan", {}, 1), ("wgan-gp", "wgan-gp", {}, 1),
                                     ("mmd-gan (no AE)", "mmd-gan", {"ae_weight": 0.0}, 16),
                                     ("smmd scalar", "smmd", {}, 1),
                                     ("smmd 16-d exact", "smmd", {"jacobian": "exact"}, 16),
                                     ("smmd 16-d projection", "smmd", {"jacobian": "projection"}, 16)]:
        torch.manual_seed(0)
        critic = dcgan_critic(out_dim).to(dev)
        opt = torch.optim.Adam(critic.parameters(), 1e-4, betas=(0.5, 0.9))
        obj = O.get(name, **hp)

        def step():
            opt.zero_grad(set_to_none=True)
            loss, _ = obj.critic_loss(critic, real, fake)
            loss.backward()
            opt.step()

        rows[label] = timed(step, 30, 5)
        print(f"critic step {label:22s} batch 64 32x32  {rows[label] * 1e3:7.2f} ms")
    print(f"ratios: wgan-gp/wgan {rows['wgan-gp'] / rows['wgan']:.2f}; smmd/mmd-gan {rows['smmd scalar'] / rows['mmd-gan (no AE)']:.2f}; "
          f"smmd/wgan-gp {rows['smmd scalar'] / rows['wgan-gp']:.2f}; exact/projection {rows['smmd 16-d exact'] / rows['smmd 16-d projection']:.2f}")


if __name__ == "__main__":
    main()
