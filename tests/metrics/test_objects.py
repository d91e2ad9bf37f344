"""Metric objects: batched accumulation equals the one-shot functions; reset; 2-process gloo sync."""

from __future__ import annotations

import json
import os
import sys

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from igm.metrics import FID, KID, fid, kid

sys.path.insert(0, os.path.dirname(__file__))  # spawned workers import the helper module by name
from metrics_dist_worker import KID_ARGS, accumulate, data, one_shot, worker  # noqa: E402

@pytest.mark.parametrize("d", [24, 300])  # n > d (full rank) and n < d (rank-truncated path)
def test_batches_equal_one_shot(d: int) -> None:
    x = data(d=d)
    got, want = accumulate(x), one_shot(x)
    assert got["fid"] == pytest.approx(want["fid"], rel=1e-9)
    assert got["kid"] == want["kid"]
    assert got["is"] == pytest.approx(want["is"], rel=1e-12)


def test_reset_and_repeated_compute() -> None:
    x = data()
    m = FID()
    m.update(x["real"] + 5.0, real=True)
    m.update(x["fake"], real=False)
    first = m.compute()
    assert m.compute() == first  # compute does not consume or double the state
    m.reset()
    with pytest.raises(ValueError, match="before any update"):
        m.compute()
    m.update(x["real"], real=True)
    m.update(x["fake"], real=False)
    assert m.compute() == pytest.approx(fid(x["real"], x["fake"]), rel=1e-9) and m.compute() != first
    k = KID(**KID_ARGS)
    k.update(x["real"], real=True)
    with pytest.raises(ValueError, match="both real and fake"):
        k.compute()
    k.reset()
    assert k.store.count == [0, 0]


def test_kid_cap_keeps_first_samples() -> None:
    x = data()
    k = KID(**KID_ARGS, max_samples=100)
    with pytest.warns(UserWarning, match="max_samples=100"):
        for chunk in x["real"].split(30):
            k.update(chunk, real=True)
    k.update(x["fake"][:100], real=False)
    assert k.compute() == kid(x["real"][:100].float(), x["fake"][:100].float(), **KID_ARGS)


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_two_process_gloo_sync_equals_single_process(tmp_path) -> None:
    mp.spawn(worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    want = one_shot(data())
    for rank in range(2):
        with open(tmp_path / f"rank{rank}.json") as fh:
            got = json.load(fh)
        assert got["fid"] == pytest.approx(want["fid"], rel=1e-9)
        assert got["kid"] == pytest.approx(want["kid"], rel=1e-12)
        assert got["is"] == pytest.approx(want["is"], rel=1e-12)
