#!/usr/bin/env python
"""CPU throughput of the feature extractors (issue: evaluation).

Times ``extractor(images)`` under ``torch.no_grad()`` (images/s, median over repeats, after one
warm-up call) for

- ``inception``: the FID Inception-v3 on a batch of 16 images of 3×32×32 (resized to 299×299
  inside, as for CIFAR-10); random He-initialised weights (``pretrained=False``): the cost does not
  depend on the weights, and the real ones cannot be downloaded here;
- ``digits``: the shipped digits net on batches of 16 and 1000 images of 1×8×8 and 1×16×16.

The ``raw`` extractor is a reshape (a view) and is not timed.

    python benchmarks/bench_features.py [--repeats N] [--threads T]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from typing import Callable

from _common import cpu_model  # noqa: E402 (benchmarks/ is on sys.path when run as a script)
import torch

import igm.metrics.features as FX


def throughput(fn: Callable[[torch.Tensor], object], x: torch.Tensor, repeats: int) -> tuple[float, float]:
    """(median images/s, median seconds per call) of ``fn(x)`` over ``repeats`` timed calls."""
    with torch.no_grad():
        fn(x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return len(x) / med, med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)

    def images(n: int, c: int, s: int) -> torch.Tensor:
        return torch.rand(n, c, s, s, generator=gen) * 2 - 1

    torch.manual_seed(0)
    inception, digits = FX.InceptionFID(pretrained=False), FX.get("digits")
    cases = [("inception", inception, images(16, 3, 32), max(2, args.repeats // 2))]
    for n in (16, 1000):
        for s in (8, 16):
            cases.append(("digits", digits, images(n, 1, s), args.repeats * 4))

    print("# igm feature-extractor throughput (issue: evaluation)")
    print(f"date    : {datetime.date.today().isoformat()}")
    print(f"command : python {' '.join(sys.argv)}")
    print(f"torch   : {torch.__version__}, python {platform.python_version()}, threads {torch.get_num_threads()}")
    print(f"cpu     : {cpu_model()}, {os.cpu_count()} logical cores")
    print(f"{'extractor':<10} {'input':<18} {'images/s':>11} {'ms/batch':>10}")
    for name, ext, x, reps in cases:
        rate, sec = throughput(ext, x, reps)
        shape = "×".join(map(str, x.shape))
        print(f"{name:<10} {shape:<18} {rate:>11.1f} {sec * 1e3:>10.2f}")
    try:
        print(f"load avg: {' '.join(f'{v:.2f}' for v in os.getloadavg())} (at the end; other jobs share the CPU)")
    except OSError:
        pass


if __name__ == "__main__":
    main()
