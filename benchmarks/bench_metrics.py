"""Benchmark: igm.metrics FID and KID against torch-fidelity 0.4.0's own functions, same inputs,
same process, medians over repeats.

torch-fidelity is not a dependency; install it for this script only:
    .venv/bin/pip install --no-deps torch-fidelity==0.4.0
Its package ``__init__`` (and ``torch_fidelity.utils``) import torchvision, which has no CPU build
here, so the script registers an empty package object for ``torch_fidelity`` and a placeholder for
``torch_fidelity.utils`` and then imports the real ``metric_fid`` / ``metric_kid`` files; the functions
timed (``fid_features_to_statistics``, ``fid_statistics_to_metric``, ``kid_features_to_metric``) are
theirs, unmodified.

    .venv/bin/python benchmarks/bench_metrics.py [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import time
import types
from typing import Any, Callable

import numpy as np
import torch

from igm.metrics import fid, kid
from igm.metrics.kid import kid_from_indices

D = 2048


def load_torch_fidelity() -> tuple[Any, Any]:
    spec = importlib.util.find_spec("torch_fidelity")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torch-fidelity is not installed: .venv/bin/pip install --no-deps torch-fidelity==0.4.0")
    pkg = types.ModuleType("torch_fidelity")
    pkg.__path__ = list(spec.submodule_search_locations)  # a package without running its __init__
    sys.modules["torch_fidelity"] = pkg
    utils = types.ModuleType("torch_fidelity.utils")
    for name in (
        "get_cacheable_input_name", "cache_lookup_one_recompute_on_miss", "extract_featuresdict_from_input_id_cached",
        "create_feature_extractor", "resolve_feature_extractor", "resolve_feature_layer_for_metric",
    ):
        setattr(utils, name, None)  # only used by their input-pipeline functions, not timed here
    sys.modules["torch_fidelity.utils"] = utils
    return importlib.import_module("torch_fidelity.metric_fid"), importlib.import_module("torch_fidelity.metric_kid")


def features(n: int, seed: int, shift: float) -> torch.Tensor:
    """Inception-like: non-negative, correlated, float32."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(D) + 0.5 * torch.randn(D, D, generator=torch.Generator().manual_seed(99)) / D**0.5
    return torch.relu(torch.randn(n, D, generator=g) @ mix + shift).contiguous()


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads, both libraries")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kid-n", type=int, default=5000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)  # NumPy's OpenBLAS, which torch-fidelity's code runs on
    except ImportError:
        print("threadpoolctl missing: NumPy's BLAS threads not limited")
    tf_fid, tf_kid = load_torch_fidelity()

    def theirs_fid(a: torch.Tensor, b: torch.Tensor) -> float:
        s1, s2 = tf_fid.fid_features_to_statistics(a), tf_fid.fid_features_to_statistics(b)
        return tf_fid.fid_statistics_to_metric(s1, s2, False)[tf_fid.KEY_METRIC_FID]

    rows = []
    for n in (500, 5000):
        a, b = features(n, 1, 0.0), features(n, 2, 0.05)
        t_ours, v_ours = timed(lambda: fid(a, b), args.repeats)
        t_theirs, v_theirs = timed(lambda: theirs_fid(a, b), args.repeats)
        v64 = theirs_fid(a.double(), b.double())
        rows.append((f"FID n={n} ({'< d: nuclear norm' if n < D else '> d: Cholesky + eigvalsh'})", t_ours, t_theirs,
                     f"ours {v_ours:.10g}, theirs {v_theirs:.10g} (rel {abs(v_ours - v_theirs) / v_theirs:.1e}); "
                     f"theirs on float64 input {v64:.10g} (rel {abs(v_ours - v64) / v64:.1e})"))

    n = args.kid_n
    a, b = features(n, 3, 0.0), features(n, 4, 0.02)
    kw = dict(kid_subsets=100, kid_subset_size=1000, rng_seed=2020, verbose=False, kid_kernel="poly",
              kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1)
    t_ours, (m_ours, s_ours) = timed(lambda: kid(a, b, subsets=100, subset_size=1000), args.repeats)
    t_sub, _ = timed(lambda: kid(a, b, subsets=100, subset_size=1000, method="subsets"), args.repeats)
    t_theirs, res = timed(lambda: tf_kid.kid_features_to_metric(a, b, **kw), args.repeats)
    rng = np.random.RandomState(2020)  # their draws, replayed: same subsets through our code
    pairs = [(rng.choice(n, 1000, replace=False), rng.choice(n, 1000, replace=False)) for _ in range(100)]
    ia, ib = torch.tensor(np.stack([p[0] for p in pairs])), torch.tensor(np.stack([p[1] for p in pairs]))
    same, exact = kid_from_indices(a, b, ia, ib), float(kid_from_indices(a.double(), b.double(), ia, ib).mean())
    m_theirs = res[tf_kid.KEY_METRIC_KID_MEAN]
    rows.append((f"KID n={n}, 100 x 1000 (auto picks gram)", t_ours, t_theirs,
                 f"ours {m_ours:.6g} ± {s_ours:.2g} (own subsets), theirs {m_theirs:.6g} ± {res[tf_kid.KEY_METRIC_KID_STD]:.2g}; "
                 f"their subsets through ours {float(same.mean()):.8g} vs theirs {m_theirs:.8g}; all-float64 value {exact:.8g}: "
                 f"ours off by {abs(float(same.mean()) - exact) / exact:.1e}, theirs by {abs(m_theirs - exact) / exact:.1e}"))
    rows.append((f"KID n={n}, 100 x 1000 (method=subsets)", t_sub, t_theirs, "one subset at a time (for n >~ 14 000)"))

    print(f"threads={args.threads} repeats={args.repeats} torch {torch.__version__} numpy {np.__version__}")
    print("| case | igm (s) | torch-fidelity 0.4.0 (s) | speed-up | values |")
    print("|---|---|---|---|---|")
    for name, t1, t2, note in rows:
        print(f"| {name} | {t1:.3f} | {t2:.3f} | {t2 / t1:.1f}x | {note} |")


if __name__ == "__main__":
    main()
