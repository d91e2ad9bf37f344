"""Precision/recall and density/coverage against brute-force NumPy loops, hand-checked cases, limits,
input validation, the accumulating objects and a 2-process gloo sync."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from igm.metrics import DensityCoverage, PrecisionRecall, density_coverage, precision_recall
from igm.metrics.precision_recall import knn_radii2
from tolerance import assert_close, bound

sys.path.insert(0, os.path.dirname(__file__))  # spawned workers import the helper module by name
from metrics_dist_worker import data, knn_one_shot, knn_worker  # noqa: E402

F64 = torch.float64


def loop_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """‖a_i − b_j‖ by an explicit double loop over the pairs (differences, not the expansion)."""
    out = np.empty((a.shape[0], b.shape[0]))
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            out[i, j] = np.sqrt(np.sum((a[i] - b[j]) ** 2))
    return out


def loop_radii(d_self: np.ndarray, k: int) -> np.ndarray:
    """k-th smallest distance in each row, the diagonal (the point itself) left out."""
    n = d_self.shape[0]
    return np.array([sorted(d_self[i, j] for j in range(n) if j != i)[k - 1] for i in range(n)])


def reference(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    d_rr, d_ff, d_fr = loop_distances(real, real), loop_distances(fake, fake), loop_distances(fake, real)
    rad_r, rad_f = loop_radii(d_rr, k), loop_radii(d_ff, k)
    n, m = real.shape[0], fake.shape[0]
    in_real = [any(d_fr[g, r] <= rad_r[r] for r in range(n)) for g in range(m)]
    in_fake = [any(d_fr[g, r] <= rad_f[g] for g in range(m)) for r in range(n)]
    count = sum(d_fr[g, r] <= rad_r[r] for g in range(m) for r in range(n))
    covered = [any(d_fr[g, r] <= rad_r[r] for g in range(m)) for r in range(n)]
    # The smallest gap between a cross distance and a radius it is compared with: the data are only
    # an unambiguous test when every gap exceeds the rounding error of either distance computation.
    gap = min(np.abs(d_fr - rad_r[None, :]).min(), np.abs(d_fr - rad_f[:, None]).min())
    return {
        "precision": sum(in_real) / m, "recall": sum(in_fake) / n,
        "density": count / (k * m), "coverage": sum(covered) / n, "gap": gap,
    }


def random_sets(n: int, m: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, d)) + 3.0  # an offset: the library centres, the loops do not
    fake = 1.2 * rng.standard_normal((m, d)) + 3.3
    return real, fake


@pytest.mark.parametrize("n, m, d, k, block", [(61, 47, 5, 3, 16), (45, 35, 6, 5, 7), (55, 55, 3, 1, 55), (40, 73, 8, 4, 1000), (30, 90, 12, 2, 1)])
def test_matches_numpy_double_loops(n: int, m: int, d: int, k: int, block: int) -> None:
    real, fake = random_sets(n, m, d, seed=n + m + k)
    ref = reference(real, fake, k)
    # Each squared distance or squared radius is off by at most B = bound(d + 2 terms, ‖a‖² + ‖b‖²) in
    # the library's expansion (less in the loops' differences). A comparison d² ≤ ρ² can only flip
    # when |d² − ρ²| ≤ 3B (two library errors, one reference error), and |d² − ρ²| = |d − ρ|(d + ρ)
    # ≥ gap². So gap² > 3B means every comparison is decided the same way: the counts agree exactly.
    scale = float((np.concatenate([real, fake]) ** 2).sum(1).max()) * 2.0
    assert ref["gap"] ** 2 > 3 * bound(F64, scale, terms=d + 2), "test data too close to a ball boundary"
    p, r = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=k, block=block)
    dens, cov = density_coverage(torch.from_numpy(real), torch.from_numpy(fake), k=k, block=block)
    for got, name in ((p, "precision"), (r, "recall"), (dens, "density"), (cov, "coverage")):
        assert_close(got, ref[name], dtype=F64)  # one division: a single rounding
    assert all(0.0 < v < 1.0 for v in (p, r, cov))  # no share saturated: the case discriminates


def test_radii_match_loops_and_do_not_depend_on_block() -> None:
    real, _ = random_sets(50, 1, 6, seed=3)
    want = loop_radii(loop_distances(real, real), 4) ** 2
    for block in (1, 3, 17, 50, 4096):
        got = knn_radii2(torch.from_numpy(real), 4, block=block)
        # the library centres the data: the squared norms entering the expansion are ≤ 2·max‖x−x̄‖²
        centred = real - real.mean(0)
        assert_close(got, want, dtype=F64, magnitude=2 * (centred**2).sum(1).max() + want, terms=6 + 2)


def test_no_pairwise_block_larger_than_a_tile(monkeypatch: pytest.MonkeyPatch) -> None:
    tiles = sys.modules["igm.metrics.precision_recall"]._Tiles  # igm.metrics.precision_recall is the function
    shapes: list[tuple[int, ...]] = []
    call = tiles.__call__
    monkeypatch.setattr(tiles, "__call__", lambda self, r, c: shapes.append(tuple((t := call(self, r, c)).shape)) or t)
    real, fake = random_sets(100, 90, 4, seed=8)
    want = precision_recall(real, fake, block=1000), density_coverage(real, fake, block=1000)
    assert max(max(t) for t in shapes) == 100  # one tile per pairwise matrix
    shapes.clear()
    assert (precision_recall(real, fake, block=16), density_coverage(real, fake, block=16)) == want
    assert max(max(t) for t in shapes) == 16


def test_hand_checked_one_dimensional_case() -> None:
    """real 0, 1, 3, 10, 11; fake 0.5, 3.5, 6, 30, 31 (exact in binary, and so is the real mean 5).

    k = 1: real radii 1, 1, 2, 1, 1; fake radii 3, 2.5, 2.5, 1, 1. Fake inside real balls: 0.5 (balls
    of 0 and 1) and 3.5 (ball of 3): precision 2/5, density (2 + 1)/5 = 3/5. Real inside fake balls:
    0, 1, 3: recall 3/5. Real balls holding a fake point: those of 0, 1, 3: coverage 3/5.
    k = 2: real radii 3, 2, 3, 7, 8; fake radii 5.5, 3, 5.5, 24, 25. Precision: 0.5, 3.5 and 6 (6 lies
    on the boundary of the ball of 3, radius 3: closed balls count it), 3/5; recall 5/5. Density: 0.5
    is in the balls of 0, 1, 3; 3.5 in those of 3, 10, 11; 6 in those of 3, 10, 11: 9/(2·5) = 0.9.
    Coverage: every real ball holds 0.5, 3.5 or 6: 1."""
    real = torch.tensor([[0.0], [1.0], [3.0], [10.0], [11.0]], dtype=F64)
    fake = torch.tensor([[0.5], [3.5], [6.0], [30.0], [31.0]], dtype=F64)
    for block in (1, 2, 5):
        assert precision_recall(real, fake, k=1, block=block) == (2 / 5, 3 / 5)
        assert density_coverage(real, fake, k=1, block=block) == (3 / 5, 3 / 5)
        assert precision_recall(real, fake, k=2, block=block) == (3 / 5, 1.0)
        assert density_coverage(real, fake, k=2, block=block) == (9 / 10, 1.0)


def test_identical_sets_and_duplicates() -> None:
    real, _ = random_sets(80, 1, 16, seed=5)
    x = torch.from_numpy(real)
    assert precision_recall(x, x, k=3, block=13) == (1.0, 1.0)
    assert density_coverage(x, x, k=5, block=13)[1] == 1.0
    # Every point four times: its 3rd neighbour is a copy at distance 0, each ball is the point itself,
    # and another copy still lies inside it (d = ρ = 0 exactly, however the expansion rounds).
    dup = x[:20].repeat(4, 1)
    assert precision_recall(dup, x[:20], k=3) == (1.0, 1.0)
    assert precision_recall(dup, x[20:40], k=3)[0] == 0.0  # balls of radius 0 hold only their copies
    assert density_coverage(dup, x[:20], k=3) == (4 / 3, 1.0)  # each fake point is in its 4 copies' balls


def test_far_apart_sets_score_zero() -> None:
    real, fake = random_sets(60, 50, 4, seed=6)
    p, r = precision_recall(real, fake + 1e3)
    dens, cov = density_coverage(real, fake + 1e3)
    assert (p, r, dens, cov) == (0.0, 0.0, 0.0, 0.0)


def test_numpy_float32_inputs_and_real_fake_roles() -> None:
    real, fake = random_sets(70, 40, 6, seed=7)
    got = precision_recall(real.astype(np.float32), fake.astype(np.float32))
    assert got == precision_recall(torch.from_numpy(real.astype(np.float32)).double(), torch.from_numpy(fake.astype(np.float32)).double())
    p, r = precision_recall(real, fake)
    assert precision_recall(fake, real) == (r, p)  # swapping the sets swaps the two numbers


def test_bad_inputs() -> None:
    x = torch.randn(10, 3, dtype=F64)
    with pytest.raises(ValueError, match="2-D"):
        precision_recall(x[:, 0], x)
    with pytest.raises(ValueError, match="feature dimensions differ"):
        density_coverage(x, torch.randn(10, 4))
    with pytest.raises(ValueError, match="k=10 needs more than k real"):
        precision_recall(x, x, k=10)
    with pytest.raises(ValueError, match="k=3 needs more than k fake"):
        precision_recall(x, x[:3], k=3)
    assert density_coverage(x, x[:1], k=3)[1] > 0.0  # density/coverage need no fake radii
    with pytest.raises(ValueError, match="fake_features is empty"):
        density_coverage(x, x[:0], k=3)
    for bad in (float("nan"), float("inf")):
        y = x.clone()
        y[2, 1] = bad
        with pytest.raises(ValueError, match="non-finite"):
            precision_recall(x, y)
        with pytest.raises(ValueError, match="non-finite"):
            density_coverage(y, x)
    for kwargs, msg in (({"k": 0}, "k must be"), ({"k": 2.0}, "k must be"), ({"block": 0}, "block must be")):
        with pytest.raises(ValueError, match=msg):
            precision_recall(x, x, **kwargs)
    with pytest.raises(ValueError, match="k must be"):
        PrecisionRecall(k=0)


def test_objects_in_chunks_equal_functions() -> None:
    x = data()
    want = knn_one_shot(x)
    pr, dc = PrecisionRecall(dtype=F64, block=32), DensityCoverage(dtype=F64, block=32)
    for name, real in (("real", True), ("fake", False)):
        for chunk in x[name].split(23):
            pr.update(chunk, real=real)
            dc.update(chunk, real=real)
    assert list(pr.compute()) == want["pr"] and list(dc.compute()) == want["dc"]
    assert pr.compute() == pr.compute()  # compute leaves the state alone
    assert 0.0 < want["pr"][0] < 1.0 and 0.0 < want["dc"][1] < 1.0
    # the float32 default stores float32 rows: equal to the function on the float32-rounded features
    pr32 = PrecisionRecall()
    pr32.update(x["real"], real=True)
    pr32.update(x["fake"], real=False)
    assert pr32.compute() == precision_recall(x["real"].float(), x["fake"].float())
    pr.reset()
    with pytest.raises(ValueError, match="needs both real and fake"):
        pr.compute()
    pr.update(x["real"], real=True)
    with pytest.raises(ValueError, match="needs both real and fake"):
        pr.compute()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_two_process_gloo_sync_equals_single_process(tmp_path) -> None:
    mp.spawn(knn_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    want = knn_one_shot(data())
    for rank in range(2):
        with open(tmp_path / f"knn{rank}.json") as fh:
            got = json.load(fh)
        assert got == want  # the same rows in the same order: the same counts, exactly
