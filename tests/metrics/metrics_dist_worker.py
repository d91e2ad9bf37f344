"""Helpers for tests/metrics/test_objects.py and test_precision_recall.py, in a module of their own so that processes started
with ``torch.multiprocessing.spawn`` can import the worker by name."""

from __future__ import annotations

import json
import os

import torch
import torch.distributed as dist

from igm.metrics import (
    FID,
    KID,
    DensityCoverage,
    InceptionScore,
    PrecisionRecall,
    density_coverage,
    fid,
    inception_score,
    kid,
    precision_recall,
)

KID_ARGS = dict(subsets=6, subset_size=50, seed=4)


def data(n_real: int = 130, n_fake: int = 110, d: int = 24) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "real": torch.randn(n_real, d, generator=g, dtype=torch.float64),
        "fake": 1.3 * torch.randn(n_fake, d, generator=g, dtype=torch.float64) + 0.2,
        "probs": torch.softmax(2 * torch.randn(120, 10, generator=g, dtype=torch.float64), 1),
    }


def one_shot(x: dict[str, torch.Tensor]) -> dict[str, object]:
    return {
        "fid": fid(x["real"], x["fake"]),
        "kid": list(kid(x["real"].float(), x["fake"].float(), **KID_ARGS)),
        "is": list(inception_score(x["probs"], splits=4)),
    }


def accumulate(parts: dict[str, torch.Tensor], batch: int = 17) -> dict[str, object]:
    f, k, s = FID(), KID(**KID_ARGS), InceptionScore(splits=4)
    for name, real in (("real", True), ("fake", False)):
        for chunk in parts[name].split(batch):
            f.update(chunk, real=real)
            k.update(chunk, real=real)
    for chunk in parts["probs"].split(batch):
        s.update(chunk)
    return {"fid": f.compute(), "kid": list(k.compute()), "is": list(s.compute())}


def worker(rank: int, world: int, tmp: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp}/pg", rank=rank, world_size=world)
    try:
        x = data()
        cut = {"real": 50, "fake": 80, "probs": 70}  # uneven halves: the gathers must pad
        parts = {k: (v[: cut[k]] if rank == 0 else v[cut[k] :]) for k, v in x.items()}
        result = accumulate(parts)
        with open(os.path.join(tmp, f"rank{rank}.json"), "w") as fh:
            json.dump(result, fh)
    finally:
        dist.destroy_process_group()




KNN_BLOCK = 32  # smaller than the sets: the tiles are exercised on every rank


def knn_one_shot(x: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    return {
        "pr": list(precision_recall(x["real"], x["fake"], block=KNN_BLOCK)),
        "dc": list(density_coverage(x["real"], x["fake"], block=KNN_BLOCK)),
    }


def knn_worker(rank: int, world: int, tmp: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp}/pg", rank=rank, world_size=world)
    try:
        x = data()
        cut = {"real": 50, "fake": 80}  # uneven shares: the gathers must pad
        pr = PrecisionRecall(block=KNN_BLOCK, dtype=torch.float64)
        dc = DensityCoverage(block=KNN_BLOCK, dtype=torch.float64)
        for name, real in (("real", True), ("fake", False)):
            part = x[name][: cut[name]] if rank == 0 else x[name][cut[name] :]
            for chunk in part.split(17):
                pr.update(chunk, real=real)
                dc.update(chunk, real=real)
        result = {"pr": list(pr.compute()), "dc": list(dc.compute())}
        with open(os.path.join(tmp, f"knn{rank}.json"), "w") as fh:
            json.dump(result, fh)
    finally:
        dist.destroy_process_group()
