"""A deprecated hyperparameter spelling (``lam``) in a config, a preset, an override and an old run's
stored config: each still loads, with a DeprecationWarning naming the new spelling."""

from __future__ import annotations

import warnings

import pytest
import torch
import yaml

from igm.train import apply_overrides, build_run, load_run, presets, train
from igm.train import checkpoint as ckpt
from igm.train.config import RunConfig, from_dict, load_config
from igm.train.sampling import load_generator

WARNS = pytest.warns(DeprecationWarning, match="objective 'wgan-gp': hyperparameter 'lam' is deprecated.*write 'gp_weight'")


def test_shipped_presets_use_the_new_names():
    assert presets.get("ring-wgan-gp").objective.params == {"gp_weight": 0.1}
    assert presets.get("cifar10-lgan-maxgp").objective.params["gp_weight"] == 0.1
    for name in presets.names():
        assert "lam" not in presets.get(name).objective.params, name


def test_a_config_file_with_the_old_name(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("objective: {name: wgan-gp, params: {lam: 0.5}}\ndata: {name: ring}\n")
    cfg = load_config(path)
    assert cfg.objective.params == {"lam": 0.5}  # the config keeps what was written
    with WARNS:
        run = build_run(cfg)
    assert run.objective.gp_weight == 0.5


def test_a_preset_with_the_old_name_loads_with_a_warning(tmp_path, monkeypatch):
    pkg = tmp_path / "oldpresets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "old-wgan-gp.yaml").write_text(
        "description: an old preset\nobjective: {name: wgan-gp, params: {lam: 0.25, penalty: lp}}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(presets, "_PACKAGE", "oldpresets")
    monkeypatch.setattr(presets, "_loaded", False)
    monkeypatch.setattr(presets, "registry", presets.Registry("preset", validator=presets._validate))
    cfg = presets.get("old-wgan-gp")
    with WARNS:
        run = build_run(cfg)
    assert run.objective.gp_weight == 0.25 and run.objective.penalty == "lp"


def test_an_override_replaces_the_other_spelling():
    base = presets.get("ring-wgan-gp")  # gp_weight: 0.1
    cfg = apply_overrides(base, ["objective.params.lam=5"])  # an old command line
    assert cfg.objective.params == {"lam": 5}
    with WARNS:
        assert build_run(cfg).objective.gp_weight == 5
    old = from_dict(RunConfig, {"objective": {"name": "wgan-gp", "params": {"lam": 0.1}}})
    cfg = apply_overrides(old, ["objective.params.gp_weight=2"])  # new spelling over an old config
    assert cfg.objective.params == {"gp_weight": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert build_run(cfg).objective.gp_weight == 2


def test_both_spellings_in_one_config_is_an_error():
    cfg = from_dict(RunConfig, {"objective": {"name": "wgan-gp", "params": {"lam": 1, "gp_weight": 1}}})
    with pytest.raises(ValueError, match="objective: objective 'wgan-gp': 'lam' is the deprecated spelling of 'gp_weight'"):
        build_run(cfg)


def test_an_old_runs_checkpoint_with_the_old_name_loads_and_resumes(tiny_cfg, tmp_path):
    cfg = tiny_cfg("ring-wgan-gp", "train.checkpoint_every=1", steps=2)
    run_dir = tmp_path / "old-run"
    train(build_run(cfg, run_dir))
    # make it a run written before the rename: config.yaml and every checkpoint's config say lam
    stored = yaml.safe_load((run_dir / "config.yaml").read_text())
    stored["objective"]["params"] = {"lam": 0.1}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    for path in (run_dir / "checkpoints").glob("*.pt"):
        state = ckpt.load(path)
        state["config"]["objective"]["params"] = {"lam": 0.1}
        torch.save(state, path)
    generator, _, old_cfg = load_generator(run_dir)  # igm sample: the stored config
    assert old_cfg.objective.params == {"lam": 0.1} and generator(torch.zeros(1, old_cfg.model.z_dim)).shape == (1, 2)
    with WARNS:
        resumed = load_run(run_dir, ["train.steps=3"])
    assert resumed.objective.gp_weight == 0.1
    summary = train(resumed, resume=True)
    assert summary["step"] == 3
