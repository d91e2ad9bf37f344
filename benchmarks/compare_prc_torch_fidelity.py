"""Agreement check: igm.metrics.precision_recall against torch-fidelity 0.4.0's own
``calculate_precision_recall_part`` (``torch_fidelity/metric_prc.py``) on the same features.

torch-fidelity is not a dependency of igm. Install it somewhere out of the way, without its
dependencies (it would pull torchvision), and point the script at it:

    pip install --no-deps --target /tmp/tf torch-fidelity==0.4.0
    PYTHONPATH=src python benchmarks/compare_prc_torch_fidelity.py --tf-path /tmp/tf [--n 5000] [--d 2048]

Its package ``__init__`` (and ``torch_fidelity.utils``) import torchvision, so the script registers an
empty package object for ``torch_fidelity`` and a placeholder for ``torch_fidelity.utils`` (only its
feature-extraction entry points use it) and imports the real ``metric_prc`` file; the function called
is theirs, unmodified. Their argument order is (generated, real); ours is (real, fake).

For each case the script prints both (precision, recall) pairs, the absolute differences, how many
samples those differences are (|Δ|·n; torch-fidelity averages in float32, so a few 1e-8 are its
rounding, not a sample), and the wall times. The features are given to torch-fidelity
in float32 (what its pipeline feeds it) and in float64.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import types

import torch

from igm.metrics import precision_recall


def load_metric_prc(path: str | None) -> types.ModuleType:
    if path:
        sys.path.insert(0, path)
    root = next((os.path.join(p, "torch_fidelity") for p in sys.path if os.path.isfile(os.path.join(p, "torch_fidelity", "metric_prc.py"))), None)
    if root is None:
        sys.exit("torch-fidelity not found: pip install --no-deps --target /tmp/tf torch-fidelity==0.4.0, then --tf-path /tmp/tf")
    pkg = types.ModuleType("torch_fidelity")
    pkg.__path__ = [root]  # a package without running its __init__ (which imports torchvision)
    sys.modules["torch_fidelity"] = pkg
    utils = types.ModuleType("torch_fidelity.utils")
    for name in (
        "create_feature_extractor", "extract_featuresdict_from_input_id_cached",
        "resolve_feature_extractor", "resolve_feature_layer_for_metric",
    ):
        setattr(utils, name, None)  # only their image-input path uses these
    sys.modules["torch_fidelity.utils"] = utils
    return importlib.import_module("torch_fidelity.metric_prc")


def inception_like(n: int, d: int, seed: int, shift: float, scale: float) -> torch.Tensor:
    """Non-negative, correlated features (a ReLU of mixed Gaussians), float32 like Inception pool3."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(d) + 0.5 * torch.randn(d, d, generator=torch.Generator().manual_seed(99)) / d**0.5
    return torch.relu(scale * torch.randn(n, d, generator=g) @ mix + shift).contiguous()


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tf-path", default=None, help="directory holding the torch_fidelity package")
    ap.add_argument("--n", type=int, default=5000, help="samples per set")
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    prc = load_metric_prc(args.tf_path)
    cases = [  # (name, real (shift, scale), fake (shift, scale))
        ("same distribution", (0.0, 1.0), (0.0, 1.0)),
        ("fake shifted", (0.0, 1.0), (0.05, 1.0)),
        ("fake narrower", (0.0, 1.0), (0.0, 0.95)),
        ("fake wider", (0.0, 1.0), (0.0, 1.05)),
    ]
    worst = 0.0
    print(f"n = {args.n} per set, d = {args.d}, k = 3, {args.threads} thread(s)")
    for i, (name, (rs, rc), (fs, fc)) in enumerate(cases):
        real = inception_like(args.n, args.d, 2 * i, rs, rc)
        fake = inception_like(args.n, args.d, 2 * i + 1, fs, fc)
        t_ours, ours = timed(lambda: precision_recall(real, fake, k=3))
        print(f"{name}: igm {ours[0]:.6f} {ours[1]:.6f} ({t_ours:.1f} s)")
        for dtype in (torch.float32, torch.float64):
            t_tf, theirs = timed(lambda: prc.calculate_precision_recall_part(fake.to(dtype), real.to(dtype), neighborhood=3))
            diff = [abs(a - b) for a, b in zip(ours, theirs)]
            worst = max(worst, *diff)
            print(
                f"  torch-fidelity {str(dtype)[6:]}: {theirs[0]:.6f} {theirs[1]:.6f} ({t_tf:.1f} s)  "
                f"|dP| = {diff[0]:.2g} ({round(diff[0] * args.n)} samples), |dR| = {diff[1]:.2g} ({round(diff[1] * args.n)} samples)"
            )
    print(f"largest |difference| over all cases: {worst:.3g}")


if __name__ == "__main__":
    main()
