"""Benchmark: igm.metrics FID, KID and the FID Inception against torch-fidelity 0.4.0's own code, same
inputs, same process, the two sides timed round-robin, medians over repeats.

torch-fidelity is not a dependency; install it for this script only:
    .venv/bin/pip install --no-deps torch-fidelity==0.4.0
(or ``pip install --no-deps --target /tmp/tfb torch-fidelity==0.4.0`` and ``PYTHONPATH=src:/tmp/tfb``).
Its package ``__init__`` (and ``torch_fidelity.utils``) import torchvision, which has no CPU build
here, so the script registers an empty package object for ``torch_fidelity`` and a placeholder for
``torch_fidelity.utils`` and then imports the real ``metric_fid`` / ``metric_kid`` files; the functions
timed (``fid_features_to_statistics``, ``fid_statistics_to_metric``, ``kid_features_to_metric``) are
theirs, unmodified. The Inception row builds their ``FeatureExtractorInceptionV3`` (which imports
their ``interpolate_compat_tensorflow``) from a state dict of our randomly initialised
``InceptionFID``: both have the same parameter names.

    .venv/bin/python benchmarks/bench_metrics.py [--threads 1] [--repeats 3] [--kid-n 5000]
        [--kid-large-n 50000] [--inception-batch 16] [--inception-repeats 5] [--only fid|kid|inception]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import statistics
import sys
import tempfile
import time
import types
from typing import Any, Callable

import numpy as np
import torch
from _common import cpu_model  # noqa: E402 (benchmarks/ is on sys.path when run as a script)

import igm.metrics.features as FX
from igm.metrics import fid, kid
from igm.metrics.kid import _auto_method, kid_from_indices, kid_subset_indices

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


def round_robin(cases: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, Any]]:
    """Median seconds and last output of each case, timed in turns (each repeat runs every case once,
    the starting case rotating) so that load changes on a shared machine hit all cases alike."""
    names, times, outs = list(cases), {k: [] for k in cases}, {}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            outs[name] = cases[name]()
            times[name].append(time.perf_counter() - t0)
    return {k: (statistics.median(times[k]), outs[k]) for k in names}


def features(n: int, seed: int, shift: float) -> torch.Tensor:
    """Inception-like: non-negative, correlated, float32."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(D) + 0.5 * torch.randn(D, D, generator=torch.Generator().manual_seed(99)) / D**0.5
    return torch.relu(torch.randn(n, D, generator=g) @ mix + shift).contiguous()


def their_subsets(n: int, subsets: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The subsets torch-fidelity's kid_features_to_metric draws (its RandomState calls, replayed)."""
    rng = np.random.RandomState(seed)
    pairs = [(rng.choice(n, 1000, replace=False), rng.choice(n, 1000, replace=False)) for _ in range(subsets)]
    return torch.tensor(np.stack([p[0] for p in pairs])), torch.tensor(np.stack([p[1] for p in pairs]))


def kid_rows(tf_kid: Any, n: int, repeats: int, seeds: tuple[int, int], with_subsets_method: bool) -> list[tuple]:
    a, b = features(n, seeds[0], 0.0), features(n, seeds[1], 0.02)
    kw = dict(kid_subsets=100, kid_subset_size=1000, rng_seed=2020, verbose=False, kid_kernel="poly",
              kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1)
    cases = {"ours": lambda: kid(a, b, subsets=100, subset_size=1000),
             "theirs": lambda: tf_kid.kid_features_to_metric(a, b, **kw)}
    if with_subsets_method:
        cases["subsets"] = lambda: kid(a, b, subsets=100, subset_size=1000, method="subsets")
    res = round_robin(cases, repeats)
    (t_ours, (m_ours, s_ours)), (t_theirs, out) = res["ours"], res["theirs"]
    ia, ib = their_subsets(n, 100, 2020)  # same subsets through our code, in float32 and in float64
    same = float(kid_from_indices(a, b, ia, ib).mean())
    del a, b
    exact = float(kid_from_indices(features(n, seeds[0], 0.0).double(), features(n, seeds[1], 0.02).double(), ia, ib).mean())
    m_theirs = out[tf_kid.KEY_METRIC_KID_MEAN]
    picked = _auto_method(*kid_subset_indices(n, n, 100, 1000), D)
    rows = [(f"KID n={n}, 100 x 1000 (auto: {picked})", t_ours, t_theirs,
             f"ours {m_ours:.6g} ± {s_ours:.2g} (own subsets), theirs {m_theirs:.6g} ± {out[tf_kid.KEY_METRIC_KID_STD]:.2g}; "
             f"their subsets through ours {same:.8g} vs theirs {m_theirs:.8g} (rel {abs(same - m_theirs) / exact:.1e}); "
             f"all-float64 value {exact:.8g}: ours off by {abs(same - exact) / exact:.1e}, "
             f"theirs by {abs(m_theirs - exact) / exact:.1e}")]
    if with_subsets_method:
        rows.append((f"KID n={n}, 100 x 1000 (method=subsets)", res["subsets"][0], t_theirs, "the n >~ 14 000 path"))
    return rows


def inception_row(repeats: int, batch: int) -> tuple:
    """Our InceptionFID and their FeatureExtractorInceptionV3 with the same (random) weights, on the same
    uint8 images: theirs takes uint8, ours the same images as (u - 128) / 128, their own normalisation."""
    fe = importlib.import_module("torch_fidelity.feature_extractor_inceptionv3")
    tf_resize = importlib.import_module("torch_fidelity.interpolate_compat_tensorflow").interpolate_bilinear_2d_like_tensorflow1x
    torch.manual_seed(0)
    ours = FX.get("inception", pretrained=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "inception_random.pth")
        torch.save(ours.state_dict(), path)
        theirs = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=path)
    u = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    x = (u.float() - 128) / 128
    with torch.no_grad():
        ours(x), theirs(u)  # warm-up
        res = round_robin({"ours": lambda: ours(x)["features"], "theirs": lambda: theirs(u)[0]}, repeats)
        # same 299x299 input to both networks: their TF1-style resize, then their normalisation
        big = (tf_resize(u.float(), size=(299, 299), align_corners=False) - 128) / 128
        net_diff = float((ours(big)["features"] - res["theirs"][1]).abs().max())
    (t_ours, f_ours), (t_theirs, f_theirs) = res["ours"], res["theirs"]
    resize_diff = float((f_ours - f_theirs).abs().max())
    return (f"Inception pool3, {batch}x3x32x32 (images/s: ours {batch / t_ours:.2f}, theirs {batch / t_theirs:.2f})",
            t_ours, t_theirs,
            f"same 299x299 input: max abs feature difference {net_diff:.1e} (features up to {float(f_theirs.abs().max()):.2f}); "
            f"from 32x32 each with its own resize (ours pytorch-fid's half-pixel bilinear, theirs TF1's): {resize_diff:.2g}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads, both libraries")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kid-n", type=int, default=5000)
    ap.add_argument("--kid-large-n", type=int, default=50000, help="0 skips the large KID row")
    ap.add_argument("--inception-batch", type=int, default=16, help="0 skips the Inception row")
    ap.add_argument("--inception-repeats", type=int, default=5)
    ap.add_argument("--only", choices=("all", "fid", "kid", "inception"), default="all")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)  # NumPy's OpenBLAS, which torch-fidelity's code runs on
    except ImportError:
        print("threadpoolctl missing: NumPy's BLAS threads not limited")
    tf_fid, tf_kid = load_torch_fidelity()
    load = [os.getloadavg()[0]]

    def theirs_fid(a: torch.Tensor, b: torch.Tensor) -> float:
        s1, s2 = tf_fid.fid_features_to_statistics(a), tf_fid.fid_features_to_statistics(b)
        return tf_fid.fid_statistics_to_metric(s1, s2, False)[tf_fid.KEY_METRIC_FID]

    rows = []
    for n in (500, 5000) if args.only in ("all", "fid") else ():
        a, b = features(n, 1, 0.0), features(n, 2, 0.05)
        res = round_robin({"ours": lambda: fid(a, b), "theirs": lambda: theirs_fid(a, b)}, args.repeats)
        (t_ours, v_ours), (t_theirs, v_theirs) = res["ours"], res["theirs"]
        v64 = theirs_fid(a.double(), b.double())
        rows.append((f"FID n={n} ({'< d: nuclear norm' if n < D else '> d: Cholesky + eigvalsh'})", t_ours, t_theirs,
                     f"ours {v_ours:.10g}, theirs {v_theirs:.10g} (rel {abs(v_ours - v_theirs) / v_theirs:.1e}); "
                     f"theirs on float64 input {v64:.10g} (rel {abs(v_ours - v64) / v64:.1e})"))
    load.append(os.getloadavg()[0])
    if args.only in ("all", "kid"):
        rows += kid_rows(tf_kid, args.kid_n, args.repeats, (3, 4), with_subsets_method=True)
        if args.kid_large_n:
            rows += kid_rows(tf_kid, args.kid_large_n, args.repeats, (5, 6), with_subsets_method=False)
        load.append(os.getloadavg()[0])
    if args.only in ("all", "inception") and args.inception_batch:
        rows.append(inception_row(args.inception_repeats, args.inception_batch))
        load.append(os.getloadavg()[0])

    print(f"threads={args.threads} repeats={args.repeats} torch {torch.__version__} numpy {np.__version__} "
          f"cpu {cpu_model()}; 1-minute load average at start and after each section: {', '.join(f'{v:.2f}' for v in load)}")
    print("| case | igm (s) | torch-fidelity 0.4.0 (s) | speed-up | values |")
    print("|---|---|---|---|---|")
    for name, t1, t2, note in rows:
        print(f"| {name} | {t1:.3f} | {t2:.3f} | {t2 / t1:.2f}x | {note} |")


if __name__ == "__main__":
    main()
