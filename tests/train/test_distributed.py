"""Data-parallel training on 2 CPU processes (gloo): the gathered and block MMD estimators against
single-process computations, gradient averaging, synced statistics and evaluation, rank-0-only
files, identical weights on every rank, resume on a different number of processes, and ``igm train``
in torchrun's environment. The workers live in dist_worker.py (importable by name)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

import igm.objectives
from igm import kernels
from igm.mmd import gather_ranks, mean_ranks, mmd2, mmd2_block, sum_ranks
from igm.train import ConfigError, apply_overrides, build_run, load_run, presets, train
from igm.train import checkpoint as ckpt
from igm.train.distributed import RankShard, rank_seed

sys.path.insert(0, os.path.dirname(__file__))  # spawned workers import the helper module by name
import dist_worker as W  # noqa: E402

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")


def close(a: list[torch.Tensor], b: list[torch.Tensor], tol: float = 1e-12) -> bool:
    return len(a) == len(b) and all(torch.allclose(x, y, rtol=tol, atol=tol) for x, y in zip(a, b))


# ------------------------------------------------------------------------------------ estimators


def test_gathered_mmd_and_gradients_equal_single_process(tmp_path) -> None:
    kernel = kernels.RBFMixture((1.0, 2.0))
    x, y = W.batch()
    x.requires_grad_(True)
    y.requires_grad_(True)
    value = mmd2(x, y, kernel)
    gx, gy = torch.autograd.grad(value, (x, y))
    net = W.critic_net()
    ref = mmd2(net(x.detach()), net(y.detach()), kernel)
    ref.backward()
    ref_grads = [p.grad for p in net.parameters()]
    for rank, out in enumerate(W.launch("gathered", tmp_path)):
        assert out["value"].item() == pytest.approx(value.item(), rel=1e-13, abs=1e-15)
        # every rank's loss is the global one, and the gather's backward sums over ranks: each rank's
        # inputs receive W × their single-process gradient ...
        assert torch.allclose(out["grad_x"], 2 * gx.chunk(2)[rank], rtol=1e-12, atol=1e-14)
        assert torch.allclose(out["grad_y"], 2 * gy.chunk(2)[rank], rtol=1e-12, atol=1e-14)
        # ... so that after averaging over ranks the parameter gradients are exactly single-process
        assert out["ddp_value"].item() == pytest.approx(ref.item(), rel=1e-13)
        assert close(out["ddp_grads"], ref_grads)
        assert close(out["hand_grads"], ref_grads)
        assert out["hand_mean"].item() == pytest.approx(ref.item(), rel=1e-13)


@pytest.mark.parametrize("estimator", ["gathered", "block"])
def test_smmd_critic_step_across_ranks(tmp_path, estimator: str) -> None:
    """SMMD's critic loss with its Jacobian scale (double backward): gathered is the single-process
    loss of the whole batch; block is −scale · (mean of the per-rank MMD²) with the scale of the whole
    batch; in both the averaged critic gradients are those of that single-process function."""
    obj = igm.objectives.get("smmd")
    net = W.critic_net(out=1)
    x, y = W.batch()
    if estimator == "gathered":
        loss, _ = obj.critic_loss(net, x, y)
    else:
        fx, fy, groups = obj._features(net, x, y, for_critic=True)
        scale, _ = obj._scale(obj.kernel, groups, create_graph=True)
        loss = -scale * mmd2_block(fx, fy, obj.kernel, blocks=2)
    loss.backward()
    ref = [p.grad for p in net.parameters()]
    outs = W.launch("smmd_critic_step", tmp_path, estimator)
    per_rank = [o["loss"].item() for o in outs]
    if estimator == "gathered":
        assert per_rank == pytest.approx([loss.item()] * 2, rel=1e-12)
    else:  # the block estimator: the mean of the per-rank estimates (computed in one process above)
        assert sum(per_rank) / 2 == pytest.approx(loss.item(), rel=1e-12)
        x0, x1 = x.chunk(2)
        y0, y1 = y.chunk(2)
        with torch.no_grad():
            singles = [mmd2(net(a), net(b), obj.kernel).item() for a, b in ((x0, y0), (x1, y1))]
        assert [o["mmd2"].item() for o in outs] == pytest.approx(singles, rel=1e-12)
        assert outs[0]["scale"].item() == outs[1]["scale"].item()  # averaged over ranks
    for o in outs:
        assert o["mean"].item() == pytest.approx(loss.item(), rel=1e-12)
        assert close(o["grads"], ref, tol=1e-11)


def test_collectives_are_identity_on_one_process() -> None:
    x = torch.randn(4, 2, requires_grad=True)
    assert gather_ranks(x) is x and sum_ranks(x) is x and mean_ranks(x) is x
    obj = igm.objectives.get("smmd").distribute("gathered")  # no process group: plain estimates
    net = W.critic_net(out=1)
    a, b = W.batch()
    assert obj.critic_loss(net, a, b)[0].item() == igm.objectives.get("smmd").critic_loss(net, a, b)[0].item()
    with pytest.raises(ValueError, match="no full-batch"):
        igm.objectives.get("wgan-gp").distribute("gathered")
    with pytest.raises(ValueError, match="unknown data-parallel estimator"):
        igm.objectives.get("smmd").distribute("global")


def test_stats_reduction_and_hand_averaging(tmp_path) -> None:
    for out in W.launch("reductions", tmp_path):
        assert {k: v.item() for k, v in out["stats"].items()} == {"a": 1.5, "b": 5.0}
        assert out["p"].tolist() == [1.5] * 3  # mean of 1 and 2
        assert out["q"].tolist() == [0.5] * 3  # present on rank 0 only: zero elsewhere
        assert out["r"] is None  # missing everywhere: stays None (the optimiser skips it)
        assert out["loss"].item() == 1.0
        assert out["stop"] is True and out["no_stop"] is False


# -------------------------------------------------------------------------------------- training


def test_two_ranks_train_checkpoint_and_resume_on_one(tmp_path) -> None:
    out = tmp_path / "run"
    results = W.launch("train_run", tmp_path, "ring-smmd", str(out), ["train.steps=4", "train.checkpoint_every=2"], True)
    r0, r1 = results
    # the ranks end with identical weights; only rank 0 has a run directory
    assert close(r0["generator"], r1["generator"], tol=0) and close(r0["critic"], r1["critic"], tol=0)
    assert r0["out_dir"] == str(out) and r1["out_dir"] is None
    assert r0["summary"]["step"] == r1["summary"]["step"] == 4
    assert {k: v for k, v in r0["summary"].items() if k.startswith("eval/")} == {
        k: v for k, v in r1["summary"].items() if k.startswith("eval/")
    }
    # training statistics are the mean over ranks of each rank's own, on every rank
    assert len(r0["logged"]) == len(r1["logged"]) == 4
    for step in range(4):
        for key, value in r0["local"][step].items():
            mean = (r0["local"][step][key] + r1["local"][step][key]) / 2
            assert r0["logged"][step][key] == pytest.approx(mean, rel=1e-6, abs=1e-9)
            assert r1["logged"][step][key] == r0["logged"][step][key]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in lines if "generator_loss" in rec] == [1, 2, 3, 4]
    # the checkpoint holds unwrapped state_dicts (no DDP "module." prefix)
    state = ckpt.load(out / "checkpoints" / "last.pt")
    assert state["step"] == 4
    assert not any(k.startswith("module.") for k in state["generator"]) and not any(k.startswith("module.") for k in state["critic"])
    for saved, trained in zip(state["generator"].values(), r0["generator"]):
        assert torch.equal(saved, trained)
    # resume on one process and continue from step 4
    run = load_run(out, ["train.steps=6"])
    assert run.dist is None
    seen: list[int] = []
    summary = train(run, callbacks=[lambda event, step, values: seen.append(step) if event == "log" else None], resume=True)
    assert seen == [5, 6] and summary["step"] == 6
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in lines if "generator_loss" in rec] == [1, 2, 3, 4, 5, 6]


def test_one_process_checkpoint_resumes_on_two(tmp_path) -> None:
    out = tmp_path / "run"
    cfg = apply_overrides(presets.get("ring-sobolev"), [*W.TINY, "train.steps=2"])
    train(build_run(cfg, out))
    results = W.launch("resume_run", tmp_path, str(out), ["train.steps=4"])
    assert [r["logged"][0]["step"] for r in results] == [3, 3] and [r["summary"]["step"] for r in results] == [4, 4]
    assert close(results[0]["generator"], results[1]["generator"], tol=0)
    assert results[0]["objective"]["multiplier"].item() == results[1]["objective"]["multiplier"].item() != 0.0
    assert ckpt.load(out / "checkpoints" / "last.pt")["step"] == 4


@pytest.mark.parametrize(
    "preset, overrides",
    [
        ("ring-sn-smmd", ["dist.mmd_estimator=gathered"]),  # spectral-norm vectors, the gathered estimator
        ("ring-sobolev", []),  # the Lagrange multiplier (objective state)
        ("ring-gram", ["dist.mmd_estimator=gathered"]),  # simultaneous updates: no DDP, hand averaging
        ("ring-wgan-gp", []),  # a gradient penalty (double backward) with the block path
        ("ring-mmd-net", ["dist.mmd_estimator=gathered"]),  # no critic; DDP generator alone
        ("digits-smmd", ["train.batch_size=8"]),  # a finite dataset (rank shares), BatchNorm buffers in DDP
    ],
)
def test_ranks_stay_identical(tmp_path, preset: str, overrides: list[str]) -> None:
    r0, r1 = W.launch("train_run", tmp_path, preset, str(tmp_path / "run"), ["train.steps=3", *overrides])
    assert close(r0["generator"], r1["generator"], tol=0)
    assert close(r0["critic"], r1["critic"], tol=0)  # parameters and buffers (u, v of the spectral layers)
    assert {k: float(v) for k, v in r0["objective"].items()} == {k: float(v) for k, v in r1["objective"].items()}
    assert r0["logged"] == [{**v, "sec_per_step": r0["logged"][i]["sec_per_step"]} for i, v in enumerate(r1["logged"])]
    if preset.startswith("digits"):
        assert r0["shard"] + r1["shard"] == 1797


def test_failure_on_one_rank_rolls_back_every_rank(tmp_path) -> None:
    r0, r1 = W.launch("failure_run", tmp_path, str(tmp_path / "run"))
    assert r0["summary"]["rollbacks"] == r1["summary"]["rollbacks"] == 2
    assert r0["summary"]["step"] == r1["summary"]["step"] == 5
    assert close(r0["generator"], r1["generator"], tol=0) and close(r0["critic"], r1["critic"], tol=0)


def test_gathered_needs_an_mmd_objective(tmp_path) -> None:
    with pytest.raises(Exception, match="no full-batch"):
        W.launch("train_run", tmp_path, "ring-wgan-gp", str(tmp_path / "run"), ["train.steps=1", "dist.mmd_estimator=gathered"])


def test_finite_datasets_are_sharded_and_eval_is_synced(tmp_path) -> None:
    """digits: each rank samples from its half; KID/FID from split generation equal single-process."""
    cache = ["eval.extractor=digits", f"eval.cache_dir={tmp_path / 'cache'}", "eval.samples=100", "eval.real_samples=150",
             "eval.kid_subsets=5", "eval.kid_subset_size=50", "eval.every=1"]
    r0, r1 = W.launch("evaluation", tmp_path, "digits-wgan-gp", cache)
    assert r0["synced"] == r1["synced"]
    assert r0["synced"]["kid"] == pytest.approx(r0["single"]["kid"], rel=1e-5, abs=1e-7)
    assert r0["synced"]["kid_std"] == pytest.approx(r0["single"]["kid_std"], rel=1e-4, abs=1e-7)
    assert r0["synced"]["fid"] == pytest.approx(r0["single"]["fid"], rel=1e-5)
    assert r0["shard"] + r1["shard"] == 1797 and abs(r0["shard"] - r1["shard"]) <= 1


def test_toy_eval_is_synced(tmp_path) -> None:
    r0, r1 = W.launch("evaluation", tmp_path, "ring-smmd", [])
    assert r0["synced"] == r1["synced"]
    assert r0["synced"] == pytest.approx(r0["single"], rel=1e-6)


def test_release_drops_the_ddp_wrapper_before_the_group_ends(tmp_path) -> None:
    for r in W.launch("release_run", tmp_path):
        assert r == {"alive_before": True, "alive_after": False, "group_up": True}


def test_rank_shards_and_seeds() -> None:
    from igm.data import get

    data = get("digits")
    shards = [RankShard(data, r, 3, seed=5) for r in range(3)]
    idx = torch.cat([s.indices for s in shards])
    assert sorted(idx.tolist()) == list(range(len(data)))  # disjoint and covering
    g = torch.Generator().manual_seed(0)
    batch = shards[1].sample(7, g)
    assert batch.shape == (7, *data.shape) and shards[1].shape == data.shape and shards[1].kind == "image"
    members = {tuple(data[int(i)].flatten().tolist()) for i in shards[1].indices}
    assert all(tuple(b.flatten().tolist()) in members for b in batch)
    with pytest.raises(ConfigError, match="fewer than"):
        RankShard(data, 0, len(data) + 1, seed=0)
    seeds = {rank_seed(0, r, s) for r in range(4) for s in range(4)}
    assert len(seeds) == 16 and rank_seed(0, 1, 2) == rank_seed(0, 1, 2)


# ------------------------------------------------------------------------------------------- CLI


def test_igm_train_in_torchrun_environment(tmp_path) -> None:
    """``igm train`` in two processes that see RANK/WORLD_SIZE/MASTER_ADDR/... (env:// rendezvous)."""
    out = tmp_path / "run"
    argv = ["train", "--preset", "ring-smmd", "--out", str(out), *W.TINY, "train.steps=3"]
    assert W.launch_torchrun_env(argv, tmp_path) == [0, 0]
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "summary.json").is_file()
    assert json.loads((out / "summary.json").read_text())["step"] == 3
    assert "dist" in (out / "config.yaml").read_text()


@pytest.mark.slow
def test_torchrun_cli(tmp_path) -> None:
    """The real launcher: ``python -m torch.distributed.run --standalone --nproc_per_node=2 -m igm.cli train``."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "igm.cli", "train",
           "--preset", "ring-smmd", "--out", str(out), *W.TINY, "train.steps=3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "data-parallel training on 2 processes (gloo)" in proc.stderr
    assert json.loads((out / "summary.json").read_text())["step"] == 3
    if shutil.which("torchrun"):
        out2 = tmp_path / "run2"
        proc = subprocess.run(["torchrun", "--standalone", "--nproc_per_node=2", "--no-python", "igm", "train", "--preset",
                               "ring-smmd", "--out", str(out2), *W.TINY, "train.steps=2"], capture_output=True, text=True,
                              timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
