"""The training loop: step schedule, simultaneous updates, EMA, clipping, schedules, bit-identical
resume, atomic checkpoints, NaN rollback, SIGINT/SIGTERM checkpointing and the run directory."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml

from igm.train import TrainingDiverged, TrainingInterrupted, load_config, load_run, presets, train
from igm.train import checkpoint as ckpt
from igm.train import loop
from igm.train import step as step_module
from igm.train.config import to_dict

RING = [n for n in presets.names() if n.startswith("ring-")]


# ------------------------------------------------------------------------------------- helpers


class Wrapped:
    """Delegates to a real objective; subclasses intercept single methods."""

    def __init__(self, inner, run):
        self.inner, self.run = inner, run

    def __getattr__(self, name):
        return getattr(self.inner, name)


class NaNGenerator(Wrapped):
    """generator_loss is NaN at generator step ``at`` (the first ``times`` arrivals there; -1: always)."""

    def __init__(self, inner, run, at: int | None, times: int = 1, corrupt: bool = False):
        super().__init__(inner, run)
        self.at, self.times, self.corrupt, self.fired = at, times, corrupt, 0

    def generator_loss(self, critic, real, fake):
        loss, stats = self.inner.generator_loss(critic, real, fake)
        hit = self.at is None or self.run.step == self.at
        if hit and (self.times < 0 or self.fired < self.times):
            self.fired += 1
            if self.corrupt:  # a real divergence: a generator weight became NaN
                with torch.no_grad():
                    next(self.run.generator.parameters()).view(-1)[0] = float("nan")
            loss = loss * float("nan")
        return loss, stats


class CountCritic(Wrapped):
    def __init__(self, inner, run):
        super().__init__(inner, run)
        self.per_step: dict[int, int] = {}

    def critic_loss(self, critic, real, fake):
        self.per_step[self.run.step] = self.per_step.get(self.run.step, 0) + 1
        return self.inner.critic_loss(critic, real, fake)


def module_tensors(run) -> dict[str, torch.Tensor]:
    out = {}
    for name in ("generator", "critic", "ema"):
        mod = getattr(run, name)
        if mod is not None:
            out.update({f"{name}.{k}": v.detach().clone() for k, v in mod.state_dict().items()})
    return out


def flat(obj, prefix=""):
    """Flatten nested dicts/lists of a state dict into {path: leaf}."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return {prefix: obj}
    out = {}
    for k, v in items:
        out.update(flat(v, f"{prefix}/{k}"))
    return out


def assert_same_state(a: dict, b: dict, skip=("seconds",)):
    fa, fb = flat(a), flat(b)
    assert fa.keys() == fb.keys()
    for key in fa:
        if any(s in key for s in skip):
            continue
        x, y = fa[key], fb[key]
        if isinstance(x, torch.Tensor):
            assert isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y), key
        else:
            assert x == y, key


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def loss_lines(run_dir: Path) -> dict[int, dict]:
    return {r["step"]: r for r in read_metrics(run_dir) if "generator_loss" in r}


# ------------------------------------------------------------------------- every ring preset


@pytest.mark.parametrize("name", RING)
def test_ring_preset_trains(name, tiny):
    run = tiny(name, steps=3)
    logs = []
    summary = train(run, callbacks=[lambda ev, step, values: logs.append((ev, step, values))])
    assert summary["step"] == run.step == 3 and summary["rollbacks"] == 0
    steps = [s for ev, s, _ in logs if ev == "log"]
    assert steps == [1, 2, 3]
    for ev, _, values in logs:
        if ev == "log":
            assert math.isfinite(values["generator_loss"])
            if run.objective.uses_critic:
                assert math.isfinite(values["critic_loss"])
            else:
                assert "critic_loss" not in values
    assert logs[-1][0] == "end"
    assert all(torch.isfinite(p).all() for p in run.generator.parameters())
    assert math.isfinite(summary["eval/mmd2_target"])


def test_mmd_net_never_builds_a_critic(tiny, tmp_path):
    run = tiny("ring-mmd-net", "train.checkpoint_every=1", steps=3, out_dir=tmp_path)
    assert run.critic is None and run.opt_c is None and run.sched_c is None
    assert not run.objective.uses_critic

    def no_critic(*args, **kwargs):
        raise AssertionError("critic_loss called for an objective without a critic")

    run.objective = Wrapped(run.objective, run)
    run.objective.critic_loss = no_critic
    train(run)
    state = ckpt.load(tmp_path / "checkpoints" / "last.pt")
    assert state["critic"] is None and state["opt_c"] is None


def test_gram_updates_both_networks_from_one_joint_pass(tiny):
    run = tiny("ring-gram", steps=1)
    assert run.objective.simultaneous
    calls = {"joint": 0}

    class Joint(Wrapped):
        def joint_loss(self, critic, real, fake):
            calls["joint"] += 1
            return self.inner.joint_loss(critic, real, fake)

        def critic_loss(self, *a):
            raise AssertionError("simultaneous objective: critic_loss must not be called")

        def generator_loss(self, *a):
            raise AssertionError("simultaneous objective: generator_loss must not be called")

    run.objective = Joint(run.objective, run)
    before = module_tensors(run)
    train(run)
    after = module_tensors(run)
    assert calls["joint"] == 1
    for prefix in ("generator.", "critic."):
        changed = [k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])]
        weights = [k for k in before if k.startswith(prefix) and k.endswith("weight")]
        assert weights and set(weights) <= set(changed), (prefix, changed)


# ---------------------------------------------------------------------------- step schedule


def test_extra_critic_step_schedule(tiny):
    run = tiny(
        "ring-wgan-gp",
        "train.n_critic=2",
        "train.extra_critic_steps=5",
        "train.extra_critic_until=2",
        "train.extra_critic_every=4",
        steps=10,
    )
    run.objective = counter = CountCritic(run.objective, run)
    train(run)
    got = [counter.per_step[s] for s in range(10)]
    assert got == [5, 5, 2, 2, 5, 2, 2, 2, 5, 2]


def test_plain_n_critic(tiny):
    run = tiny("ring-wgan-gp", "train.n_critic=3", steps=4)
    run.objective = counter = CountCritic(run.objective, run)
    train(run)
    assert counter.per_step == {0: 3, 1: 3, 2: 3, 3: 3}


# ------------------------------------------------------------------------- clipping, schedules


def test_clip_per_tensor():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.zeros(s)) for s in ((3, 4), (5,), (2, 2, 2), (7,), (4,))]
    params[0].grad = torch.randn(3, 4) * 10  # large
    params[1].grad = torch.full((5,), 0.1)  # small: norm ≈ 0.22
    params[2].grad = torch.randn(2, 2, 2) * 1e3  # very large
    params[3].grad = torch.zeros(7)  # zero stays zero, no NaN
    params[4].grad = None  # no gradient: skipped
    small, big = params[1].grad.clone(), params[0].grad.clone()
    step_module._clip_per_tensor(params, 1.0)
    for p in params[:4]:
        assert torch.isfinite(p.grad).all()
        assert float(p.grad.norm()) <= 1.0 + 1e-6
    assert torch.equal(params[1].grad, small)
    assert torch.equal(params[3].grad, torch.zeros(7))
    assert params[4].grad is None
    assert float(params[0].grad.norm()) == pytest.approx(1.0, rel=1e-5)
    assert float(params[2].grad.norm()) == pytest.approx(1.0, rel=1e-5)
    # per tensor, not global: the direction of each tensor is kept
    assert torch.allclose(params[0].grad, big / big.norm(), atol=1e-6)


def test_grad_clip_is_applied_to_both_optimisers(tiny, monkeypatch):
    calls = []
    real = step_module._clip_per_tensor
    monkeypatch.setattr(step_module, "_clip_per_tensor", lambda params, c: (calls.append((len(params), c)), real(params, c)))
    run = tiny("ring-wgan-gp", "optim.grad_clip=0.5", "train.n_critic=2", steps=2)
    train(run)
    n_g = len(list(run.generator.parameters()))
    n_c = len(list(run.critic.parameters()))
    assert calls == [(n_c, 0.5), (n_c, 0.5), (n_g, 0.5)] * 2
    calls.clear()
    train(tiny("ring-wgan-gp", "optim.grad_clip=null", steps=2))
    assert calls == []


def test_linear_schedule_decays_to_zero(tiny, tmp_path):
    run = tiny("ring-smmd", "optim.schedule=linear", "optim.lr_generator=0.01", "optim.lr_critic=0.02", steps=10, out_dir=tmp_path)
    lrs = []
    train(run, callbacks=[lambda ev, s, v: lrs.append((s, v["lr_generator"])) if ev == "log" else None])
    assert len(lrs) == 10
    for s, lr in lrs:  # logged after the step: the rate the next step will use
        assert lr == pytest.approx(0.01 * (1 - s / 10), abs=1e-12)
    assert lrs[-1][1] == pytest.approx(0.0, abs=1e-12)
    assert run.opt_c.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    # the last step itself still trained with a positive rate
    assert lrs[-2][1] > 0


def test_step_schedule(tiny):
    run = tiny("ring-smmd", "optim.schedule=step", "optim.step_every=3", "optim.step_gamma=0.5", "optim.lr_generator=0.01", steps=7)
    lrs = {}
    train(run, callbacks=[lambda ev, s, v: lrs.__setitem__(s, v["lr_generator"]) if ev == "log" else None])
    assert lrs == {s: pytest.approx(0.01 * 0.5 ** (s // 3)) for s in range(1, 8)}


def test_ema_is_a_hand_computed_average(tiny):
    run = tiny("ring-smmd", "train.ema=0.9", steps=1)
    assert run.ema is not None and run.ema is not run.generator
    assert not any(p.requires_grad for p in run.ema.parameters())
    theta0 = [p.detach().clone() for p in run.generator.parameters()]
    for e, g in zip(run.ema.parameters(), run.generator.parameters()):
        assert torch.equal(e, g)
    train(run)
    theta1 = [p.detach().clone() for p in run.generator.parameters()]
    ema1 = [p.detach().clone() for p in run.ema.parameters()]
    differs = False
    for t0, t1, e in zip(theta0, theta1, ema1):
        assert torch.allclose(e, 0.9 * t0 + 0.1 * t1, rtol=0, atol=1e-6)
        differs |= not torch.equal(e, t1)
    assert differs, "EMA parameters equal the raw generator after a step"
    # a second step: ema2 = 0.9 ema1 + 0.1 theta2
    run.config.train.steps = 2
    train(run)
    for e1, t2, e2 in zip(ema1, run.generator.parameters(), run.ema.parameters()):
        assert torch.allclose(e2, 0.9 * e1 + 0.1 * t2.detach(), rtol=0, atol=1e-6)


def test_evaluation_uses_the_ema(tiny):
    run = tiny("ring-smmd", "train.ema=0.5", steps=2)
    seen = []
    inner = run.evaluator

    class Spy:
        key = inner.key

        def __call__(self, model):
            seen.append(model)
            return inner(model)

    run.evaluator = Spy()
    train(run)
    assert seen and all(m is run.ema for m in seen)


# --------------------------------------------------------------------------------- resume


def _resume_cfg(*extra):
    return ["train.checkpoint_every=4", "optim.schedule=constant", *extra]


def _compare_runs(a, b):
    ta, tb = module_tensors(a), module_tensors(b)
    assert ta.keys() == tb.keys() and ta
    for key in ta:
        assert torch.equal(ta[key], tb[key]), f"{key} differs after resume"
    for name in ("opt_g", "opt_c", "sched_g", "sched_c"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None)
        if x is not None:
            assert_same_state(x.state_dict(), y.state_dict())
    assert_same_state(a.objective.state_dict(), b.objective.state_dict())
    assert torch.equal(a.data_rng.get_state(), b.data_rng.get_state())


@pytest.mark.parametrize(
    "preset,extra",
    [
        ("ring-smmd", []),
        ("ring-wgan-gp", []),  # interpolation ε from the global torch RNG
        ("ring-smmd", ["train.ema=0.9"]),
        ("ring-sobolev", []),  # objective state (the Lagrange multiplier)
        ("ring-gram", []),  # simultaneous updates
    ],
    ids=["smmd", "wgan-gp", "smmd-ema", "sobolev", "gram"],
)
def test_resume_is_bit_identical(preset, extra, tiny, tmp_path):
    a = tiny(preset, *_resume_cfg(*extra), steps=12, out_dir=tmp_path / "a")
    train(a)
    b = tiny(preset, *_resume_cfg(*extra), steps=8, out_dir=tmp_path / "b")
    train(b)
    assert ckpt.load(tmp_path / "b" / "checkpoints" / "last.pt")["step"] == 8
    b = load_run(tmp_path / "b", ["train.steps=12"])
    assert b.step == 0  # nothing is loaded before train(resume=True)
    summary = train(b, resume=True)
    assert summary["step"] == b.step == 12
    _compare_runs(a, b)
    # the logged losses of the resumed part match the uninterrupted run exactly
    la, lb = loss_lines(tmp_path / "a"), loss_lines(tmp_path / "b")
    assert sorted(la) == sorted(lb) == list(range(1, 13))
    for s in la:
        assert la[s]["generator_loss"] == lb[s]["generator_loss"], s
        assert la[s].get("critic_loss") == lb[s].get("critic_loss"), s
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["step"] == 12
    assert load_config(tmp_path / "b" / "config.yaml").train.steps == 12


def test_interrupt_and_resume_with_linear_schedule_is_bit_identical(tiny, tmp_path):
    """SIGTERM mid-run (not at a checkpoint step) checkpoints first; resuming with the same config
    reproduces the uninterrupted run, linear learning-rate decay included."""
    extra = ["train.checkpoint_every=4", "optim.schedule=linear", "train.ema=0.8"]
    a = tiny("ring-wgan-gp", *extra, steps=10, out_dir=tmp_path / "a")
    train(a)
    b = tiny("ring-wgan-gp", *extra, steps=10, out_dir=tmp_path / "b")

    def kill_at_6(event, step, values):
        if event == "log" and step == 6:
            os.kill(os.getpid(), signal.SIGTERM)

    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as err:
        train(b, callbacks=[kill_at_6])
    assert signal.getsignal(signal.SIGTERM) == handler  # the loop restored the handler
    assert err.value.step == 6 and err.value.path == tmp_path / "b" / "checkpoints" / "last.pt"
    assert ckpt.load(err.value.path)["step"] == 6
    assert not (tmp_path / "b" / "summary.json").exists()
    b = load_run(tmp_path / "b")
    train(b, resume=True)
    _compare_runs(a, b)


def test_resume_drops_metrics_past_the_checkpoint(tiny, tmp_path):
    run = tiny("ring-smmd", "train.checkpoint_every=4", steps=6, out_dir=tmp_path)
    train(run)
    # the run finished at step 6; simulate a crash after step 6 was logged but before it was saved
    state = ckpt.load(tmp_path / "checkpoints" / "last.pt")
    state["step"] = 4
    ckpt.save_atomic(state, tmp_path / "checkpoints" / "last.pt")
    run = load_run(tmp_path, ["train.steps=6"])
    train(run, resume=True)
    steps = [r["step"] for r in read_metrics(tmp_path) if "generator_loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_survives_a_torn_metrics_line(tiny, tmp_path):
    run = tiny("ring-smmd", "train.checkpoint_every=2", steps=4, out_dir=tmp_path)
    train(run)
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 5, "generator_lo')  # the process died mid-write
    run = load_run(tmp_path, ["train.steps=6"])
    train(run, resume=True)
    assert [r["step"] for r in read_metrics(tmp_path) if "generator_loss" in r] == [1, 2, 3, 4, 5, 6]


def test_resume_with_a_mismatched_structure_is_a_checkpoint_error(tiny, tmp_path):
    train(tiny("ring-smmd", steps=2, out_dir=tmp_path))
    run = load_run(tmp_path, ["train.ema=0.9"])
    with pytest.raises(ckpt.CheckpointError, match="ema"):
        train(run, resume=True)


# ---------------------------------------------------------------------------- checkpoints


def test_checkpoint_is_weights_only(tiny, tmp_path):
    run = tiny("ring-sobolev", "train.ema=0.9", "optim.schedule=linear", steps=3, out_dir=tmp_path)
    train(run)
    path = tmp_path / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    assert state["step"] == 3 and isinstance(state["step"], int)
    assert state["config"] == to_dict(run.config)
    for key in ("generator", "critic", "ema", "opt_g", "opt_c", "sched_g", "sched_c", "objective", "rng"):
        assert state[key] is not None, key
    assert set(state["rng"]) >= {"torch", "data", "numpy", "python"}
    assert_same_state(state["generator"], run.generator.state_dict())
    assert_same_state(state["ema"], run.ema.state_dict())
    assert_same_state(state["objective"], run.objective.state_dict())


def test_checkpoint_restores_every_rng(tiny, tmp_path):
    import numpy as np

    run = tiny("ring-smmd", steps=1)
    state = ckpt.rng_state(run.data_rng)
    expect = (torch.rand(3), torch.rand(3, generator=run.data_rng), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()  # move every RNG on
    torch.rand(2, generator=run.data_rng)
    # through a weights-only file, as in a real checkpoint
    path = ckpt.save_atomic({"rng": state}, tmp_path / "rng.pt")
    ckpt.set_rng_state(ckpt.load(path)["rng"], run.data_rng)
    again = (torch.rand(3), torch.rand(3, generator=run.data_rng), np.random.rand(3), random.random())
    assert torch.equal(expect[0], again[0]) and torch.equal(expect[1], again[1])
    assert (expect[2] == again[2]).all() and expect[3] == again[3]


def test_load_errors(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        ckpt.load(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ckpt.CheckpointError, match="bad.pt"):
        ckpt.load(bad)


class _Boom(RuntimeError):
    pass


def test_crash_mid_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.pt"
    old = {"step": 3, "w": torch.arange(10.0), "nested": {"x": [1, 2, 3]}}
    ckpt.save_atomic(old, path)
    before = path.read_bytes()

    real_save = torch.save

    def crash(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04partial garbage")  # some bytes reach the file, then the process "dies"
        raise _Boom("disk on fire")

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(_Boom):
        ckpt.save_atomic({"step": 4, "w": torch.zeros(10)}, path)
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert path.read_bytes() == before
    state = ckpt.load(path)
    assert state["step"] == 3 and torch.equal(state["w"], old["w"]) and state["nested"] == old["nested"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temporary files left


def test_crash_in_fsync_or_rename_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_atomic({"step": 1}, path)
    for target in ("fsync", "replace"):
        with monkeypatch.context() as m:
            m.setattr(ckpt.os, target, lambda *a: (_ for _ in ()).throw(OSError(f"{target} failed")))
            with pytest.raises(OSError, match=target):
                ckpt.save_atomic({"step": 2}, path)
        assert ckpt.load(path) == {"step": 1}
        assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


_CHILD = textwrap.dedent(
    """
    import sys, torch
    from igm.train import checkpoint as ckpt
    path = sys.argv[1]
    big = torch.empty(3_000_000)
    i = 0
    while True:
        i += 1
        ckpt.save_atomic({"i": i, "big": big.fill_(float(i)), "tail": torch.full((1000,), float(i))}, path)
        if i == 1:
            print("ready", flush=True)
    """
)


def test_sigkill_during_save_leaves_a_loadable_checkpoint(tmp_path):
    """Three writers (started together to pay the torch import once) are SIGKILLed at random moments
    of their save loops; each path still holds a complete checkpoint."""
    rng = random.Random(1234)
    paths = [tmp_path / f"w{k}" / "last.pt" for k in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, str(p)], stdout=subprocess.PIPE, text=True) for p in paths]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            time.sleep(rng.uniform(0.05, 0.3))
            proc.kill()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            proc.stdout.close()
    for proc, path in zip(procs, paths):
        assert proc.returncode == -signal.SIGKILL
        state = ckpt.load(path)
        i = state["i"]
        assert i >= 1
        assert torch.equal(state["big"], torch.full((3_000_000,), float(i)))
        assert torch.equal(state["tail"], torch.full((1000,), float(i)))


# ------------------------------------------------------------------------------- rollback


def _nan_run(tiny, tmp_path, *extra, steps=8):
    return tiny("ring-smmd", "train.checkpoint_every=4", "optim.schedule=constant", *extra, steps=steps, out_dir=tmp_path)


def test_nan_loss_rolls_back_once(tiny, tmp_path):
    run = _nan_run(tiny, tmp_path, steps=8)
    run.objective = NaNGenerator(run.objective, run, at=5)
    events = []
    summary = train(run, callbacks=[lambda ev, s, v: events.append((ev, s, v))])
    assert summary["step"] == run.step == 8
    assert run.rollbacks == 1 and summary["rollbacks"] == 1
    assert run.objective.fired == 1
    records = [r for r in read_metrics(tmp_path) if r.get("event") == "rollback"]
    assert len(records) == 1
    msg = records[0]["message"]
    assert records[0]["step"] == 4
    assert "generator step 5" in msg and "rolled back to step 4" in msg and "non-finite generator loss" in msg
    assert [(ev, s) for ev, s, _ in events if ev == "rollback"] == [("rollback", 4)]
    assert all(torch.isfinite(p).all() for p in run.generator.parameters())
    assert ckpt.load(tmp_path / "checkpoints" / "last.pt")["rollbacks"] == 1


class FailedFactorisation(Wrapped):
    """At generator step ``at`` (once), the loss goes through a Cholesky of an indefinite matrix,
    as GRAM's density ratio does when its kernel matrix loses definiteness."""

    def __init__(self, inner, run, at: int):
        super().__init__(inner, run)
        self.at, self.fired = at, 0

    def generator_loss(self, critic, real, fake):
        loss, stats = self.inner.generator_loss(critic, real, fake)
        if self.run.step == self.at and not self.fired:
            self.fired += 1
            bad = torch.tensor([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
            loss = loss + torch.linalg.cholesky(bad).sum()
        return loss, stats


class NaNCritic(Wrapped):
    """critic_loss is NaN at the ``index``-th critic step of generator step ``at`` (once)."""

    def __init__(self, inner, run, at: int, index: int):
        super().__init__(inner, run)
        self.at, self.index, self.calls, self.fired = at, index, 0, 0

    def critic_loss(self, critic, real, fake):
        loss, stats = self.inner.critic_loss(critic, real, fake)
        if self.run.step == self.at and not self.fired:
            if self.calls == self.index:
                self.fired += 1
                loss = loss * float("nan")
            self.calls += 1
        return loss, stats


@pytest.mark.parametrize("index", [0, 2, 4])  # the first, a middle and the last of the 5 critic steps
def test_nan_at_any_critic_step_is_caught_and_rolled_back(tiny, tmp_path, index):
    run = _nan_run(tiny, tmp_path, "train.n_critic=5", steps=6)
    run.objective = NaNCritic(run.objective, run, at=5, index=index)
    summary = train(run)
    assert run.objective.fired == 1 and summary["step"] == 6 and summary["rollbacks"] == 1
    (rec,) = [r for r in read_metrics(tmp_path) if r.get("event") == "rollback"]
    assert rec["step"] == 4 and "non-finite critic loss (nan) at generator step 5" in rec["message"]
    for path in (tmp_path / "checkpoints").glob("*.pt"):  # the bad step never reached a checkpoint
        state = ckpt.load(path)
        for part in ("generator", "critic"):
            assert all(torch.isfinite(v).all() for v in state[part].values() if v.is_floating_point()), (path, part)
    assert all(torch.isfinite(p).all() for m in (run.generator, run.critic) for p in m.parameters())
    logged = [r for r in read_metrics(tmp_path) if "critic_loss" in r]
    assert all(math.isfinite(r["critic_loss"]) for r in logged)


def test_finite_guard_checks_once_and_names_the_first_bad_loss():
    from igm.train.step import FiniteGuard, NonFiniteLoss

    guard = FiniteGuard()
    guard.flush()  # nothing recorded: nothing to do
    for v, what in ((1.0, "critic"), (float("inf"), "critic"), (float("nan"), "generator")):
        guard.add(torch.tensor(v), what, 7)
    with pytest.raises(NonFiniteLoss, match=r"non-finite critic loss \(inf\) at generator step 7"):
        guard.flush()
    guard.flush()  # the failed batch is cleared with the raise
    guard.add(torch.tensor([2.0]), "generator", 8)
    guard.flush()


def test_failed_factorisation_rolls_back_like_a_nan(tiny, tmp_path):
    run = _nan_run(tiny, tmp_path, steps=6)
    run.objective = FailedFactorisation(run.objective, run, at=5)
    summary = train(run)
    assert run.objective.fired == 1
    assert summary["step"] == 6 and summary["rollbacks"] == 1
    (rec,) = [r for r in read_metrics(tmp_path) if r.get("event") == "rollback"]
    assert rec["step"] == 4 and "positive-definite" in rec["message"] and "rolled back to step 4" in rec["message"]


def test_nan_before_the_first_checkpoint_rolls_back_to_step_0(tiny, tmp_path):
    run = _nan_run(tiny, tmp_path, steps=3)
    run.objective = NaNGenerator(run.objective, run, at=1)
    train(run)
    rec = [r for r in read_metrics(tmp_path) if r.get("event") == "rollback"]
    assert len(rec) == 1 and "rolled back to step 0" in rec[0]["message"] and "generator step 1" in rec[0]["message"]


def test_persistent_nan_raises_training_diverged(tiny, tmp_path):
    run = _nan_run(tiny, tmp_path, "train.max_rollbacks=2", steps=8)
    run.objective = NaNGenerator(run.objective, run, at=None, times=-1)
    with pytest.raises(TrainingDiverged) as err:
        train(run)
    msg = str(err.value)
    assert "max_rollbacks=2" in msg and "generator step 0" in msg
    assert run.rollbacks == 2
    assert len([r for r in read_metrics(tmp_path) if r.get("event") == "rollback"]) == 2


def test_max_rollbacks_zero_fails_at_once(tiny):
    run = tiny("ring-smmd", "train.max_rollbacks=0", steps=4)
    run.objective = NaNGenerator(run.objective, run, at=2)
    with pytest.raises(TrainingDiverged, match="max_rollbacks=0"):
        train(run)


def test_rollback_lr_factor_constant_schedule(tiny, tmp_path):
    run = _nan_run(tiny, tmp_path, "train.rollback_lr_factor=0.5", "optim.lr_generator=0.01", "optim.lr_critic=0.02", steps=6)
    run.objective = NaNGenerator(run.objective, run, at=5)
    train(run)
    assert run.opt_g.param_groups[0]["lr"] == pytest.approx(0.005)
    assert run.opt_c.param_groups[0]["lr"] == pytest.approx(0.01)


def test_rollback_lr_factor_survives_a_linear_schedule(tiny, tmp_path):
    run = _nan_run(
        tiny, tmp_path, "train.rollback_lr_factor=0.5", "optim.lr_generator=0.01", "optim.schedule=linear", steps=8
    )
    run.objective = NaNGenerator(run.objective, run, at=5)
    lrs = {}
    train(run, callbacks=[lambda ev, s, v: lrs.__setitem__(s, v["lr_generator"]) if ev == "log" else None])
    assert lrs[7] == pytest.approx(0.5 * 0.01 * (1 - 7 / 8))


def test_rollback_restores_the_checkpointed_weights(tiny, tmp_path):
    run = _nan_run(tiny, tmp_path, steps=8)
    run.objective = NaNGenerator(run.objective, run, at=7)  # after steps 5, 6 and step 7's critic updates
    seen = {}

    def on_rollback(event, step, values):
        if event == "rollback":
            saved = ckpt.load(tmp_path / "checkpoints" / "last.pt")  # written at step 4
            assert saved["step"] == step == 4
            seen["ok"] = True
            assert_same_state(saved["critic"], run.critic.state_dict())
            assert_same_state(saved["generator"], run.generator.state_dict())
            assert_same_state(saved["opt_c"], run.opt_c.state_dict())

    train(run, callbacks=[on_rollback])
    assert seen["ok"]


def test_rollback_recovers_from_nan_weights(tiny, tmp_path):
    run = _nan_run(tiny, tmp_path, steps=6)
    run.objective = NaNGenerator(run.objective, run, at=5, corrupt=True)
    train(run)
    assert run.rollbacks == 1
    assert all(torch.isfinite(p).all() for p in run.generator.parameters())


# ------------------------------------------------------------------------- SIGINT (a real process)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_first_checkpoint_stops_after_one_step(tiny, tmp_path, sig):
    """A signal that lands while the step-0 checkpoint is written (a slow first torch.save on a busy
    machine) is caught like one mid-run: one more step, a checkpoint, TrainingInterrupted."""
    run = tiny("ring-smmd", "train.checkpoint_every=1000", steps=50, out_dir=tmp_path / "run")
    save = run.save_step
    calls = []

    def save_and_signal():
        calls.append(run.step)
        if len(calls) == 1:
            os.kill(os.getpid(), sig)  # delivered to the main thread before this call returns
        return save()

    run.save_step = save_and_signal
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted):
        train(run)
    assert calls == [0, 1]
    assert ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 1
    # the handlers the loop installed are gone again: the process's own are back (the default ones
    # in a terminal; SIG_IGN for SIGINT where a shell started pytest in the background)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_sigint_checkpoints_and_resume_completes(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [
        "train.steps=100000",
        "train.batch_size=16",
        "train.log_every=1",
        "train.progress=false",
        "train.sample_every=0",
        "train.checkpoint_every=100000",
        "eval.every=0",
        "eval.samples=200",
        "model.generator_params.hidden=16",
        "model.critic_params.hidden=16",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "igm.cli", "train", "--preset", "ring-smmd", "--out", str(run_dir), *args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 120
        metrics = run_dir / "metrics.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if metrics.exists() and metrics.read_text().count("\n") >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "--resume" in err and str(run_dir) in err
    assert "Traceback" not in err
    state = ckpt.load(run_dir / "checkpoints" / "last.pt")
    step = state["step"]
    assert step >= 1
    assert max(r["step"] for r in read_metrics(run_dir)) == step
    # `igm train --resume DIR train.steps=N`, in this process (a second interpreter costs seconds)
    from igm.cli import main

    assert main(["train", "--resume", str(run_dir), f"train.steps={step + 3}"]) == 0
    assert ckpt.load(run_dir / "checkpoints" / "last.pt")["step"] == step + 3
    assert json.loads((run_dir / "summary.json").read_text())["step"] == step + 3
    assert load_config(run_dir / "config.yaml").train.steps == step + 3


# --------------------------------------------------------------------------- run directory


def test_run_directory_layout(tiny, tmp_path):
    out = tmp_path / "run"
    run = tiny("ring-smmd", "train.checkpoint_every=3", "train.sample_every=3", "eval.every=3", "train.log_every=2", steps=6, out_dir=out)
    assert (out / "config.yaml").is_file()  # written at build time
    summary = train(run)
    # config.yaml reloads to the same config
    assert load_config(out / "config.yaml") == run.config
    assert yaml.safe_load((out / "config.yaml").read_text()) == to_dict(run.config)
    # metrics.jsonl: one JSON object per line, each with an integer step
    records = read_metrics(out)
    assert records and all(isinstance(r["step"], int) for r in records)
    logged = [r["step"] for r in records if "generator_loss" in r]
    assert logged == [2, 4, 6]
    assert all({"critic_loss", "sec_per_step", "lr_generator"} <= r.keys() for r in records if "generator_loss" in r)
    evals = [r for r in records if "eval/mmd2_target" in r]
    assert [r["step"] for r in evals] == [3, 6]
    # summary.json
    saved = json.loads((out / "summary.json").read_text())
    assert saved["step"] == 6 and saved["rollbacks"] == 0 and "eval/mmd2_target" in saved
    assert saved["eval/mmd2_target"] == pytest.approx(summary["eval/mmd2_target"])
    # checkpoints
    assert ckpt.load(out / "checkpoints" / "last.pt")["step"] == 6
    assert (out / "checkpoints" / "best.pt").is_file()
    assert ckpt.load(out / "checkpoints" / "best.pt")["best"] is not None
    assert not [p for p in (out / "checkpoints").iterdir() if p.suffix == ".tmp"]
    # samples
    pngs = sorted(p.name for p in (out / "samples").glob("*.png"))
    assert pngs == ["step_0000003.png", "step_0000006.png"]
    from PIL import Image

    with Image.open(out / "samples" / pngs[-1]) as im:
        assert im.size[0] > 50 and im.size[1] > 50
    # TensorBoard
    events = list(out.glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_no_out_dir_writes_nothing(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tiny("ring-smmd", steps=2)
    summary = train(run)
    assert summary["step"] == 2
    assert list(tmp_path.iterdir()) == []
    assert run.save("last") is None


def test_update_cosine_is_one_for_sgd_and_matches_a_direct_computation_for_adam(tiny):
    from igm.train.step import _optimizer_step, train_step

    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(7, 3))
    b = torch.nn.Parameter(torch.randn(3))
    unused = torch.nn.Parameter(torch.randn(2))  # no gradient: left out
    for opt_cls, kwargs in ((torch.optim.SGD, {"lr": 0.1}), (torch.optim.Adam, {"lr": 0.01, "betas": (0.5, 0.9)})):
        opt = opt_cls([w, b, unused], **kwargs)
        for _ in range(3):  # Adam's update turns away from −g once its moments build up
            opt.zero_grad(set_to_none=True)
            loss = ((torch.randn(5, 7) @ w + b) ** 2).sum()
            loss.backward()
            g = torch.cat([w.grad.flatten(), b.grad.flatten()]).clone()
            before = torch.cat([w.detach().flatten(), b.detach().flatten()]).clone()
            cos = _optimizer_step(opt, [w, b, unused], None, cosine=True)
            step = torch.cat([w.detach().flatten(), b.detach().flatten()]) - before
            expected = float(torch.nn.functional.cosine_similarity(step, -g, dim=0))
            assert float(cos) == pytest.approx(expected, rel=1e-5, abs=1e-6)
        if opt_cls is torch.optim.SGD:
            assert float(cos) == pytest.approx(1.0, abs=1e-6)
    run = tiny("ring-wgan", "train.update_cosine=true", steps=2)
    stats = train_step(run)
    assert -1 <= float(stats["critic/update_cosine"]) <= 1 and -1 <= float(stats["generator/update_cosine"]) <= 1
    off = tiny("ring-wgan", steps=2)
    assert "critic/update_cosine" not in train_step(off)
