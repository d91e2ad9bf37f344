"""Typed run configs: YAML, overrides, and errors that name the key at fault."""

from __future__ import annotations

import math

import pytest
import yaml

from igm.train import build_run
from igm.train.config import (
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    load_config,
    to_dict,
)


def write(tmp_path, text: str):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------- YAML


def test_defaults_are_the_dataclass_defaults():
    cfg = RunConfig()
    assert cfg.train == TrainConfig() and cfg.optim == OptimConfig() and cfg.model == ModelConfig()
    assert cfg.optim.betas == (0.5, 0.9)
    assert cfg.data == DataConfig(name="ring", params={})


def test_load_yaml(tmp_path):
    path = write(
        tmp_path,
        """
description: a test run
model: {z_dim: 3, generator_params: {hidden: 8}}
objective: {name: wgan-gp, params: {lam: 10}}
optim: {betas: [0.0, 0.99], lr_generator: 2.0e-4, grad_clip: 1}
train: {steps: 7, ema: 0.99, progress: false}
eval: {samples: 123}
""",
    )
    cfg = load_config(path)
    assert cfg.description == "a test run"
    assert cfg.model.z_dim == 3 and cfg.model.generator_params == {"hidden": 8}
    assert cfg.model.critic == "mlp"  # untouched fields keep their defaults
    assert cfg.objective.name == "wgan-gp" and cfg.objective.params == {"lam": 10}
    assert cfg.optim.betas == (0.0, 0.99) and isinstance(cfg.optim.betas, tuple)
    assert cfg.optim.lr_generator == 2e-4 and cfg.optim.lr_critic == 1e-4
    assert cfg.optim.grad_clip == 1.0 and isinstance(cfg.optim.grad_clip, float)  # int → float
    assert cfg.train.steps == 7 and cfg.train.ema == 0.99 and cfg.train.progress is False
    assert cfg.eval.samples == 123


def test_empty_yaml_is_the_default_config(tmp_path):
    assert load_config(write(tmp_path, "")) == RunConfig()
    assert load_config(write(tmp_path, "# only a comment\n")) == RunConfig()


def test_null_is_accepted_only_for_optional_fields(tmp_path):
    cfg = load_config(write(tmp_path, "optim: {grad_clip: null}\ntrain: {ema: null}\n"))
    assert cfg.optim.grad_clip is None and cfg.train.ema is None
    with pytest.raises(ConfigError, match=r"train\.steps"):
        load_config(write(tmp_path, "train: {steps: null}\n"))


def test_invalid_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "train: {steps: 3\nmodel: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_yaml_that_is_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- train\n- model\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found") as err:
        load_config(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(err.value)


@pytest.mark.parametrize(
    "text,key",
    [
        ("trian: {steps: 3}\n", "trian"),
        ("train: {stepz: 3}\n", "train.stepz"),
        ("model: {generator_parms: {}}\n", "model.generator_parms"),
        ("eval: {every: 1, samplez: 3}\n", "eval.samplez"),
    ],
)
def test_yaml_unknown_keys_are_named(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    msg = str(err.value)
    assert f"unknown key {key}" in msg
    assert "valid keys" in msg


def test_yaml_unknown_nested_key_lists_the_valid_keys_of_its_section(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "train: {stepz: 3}\n"))
    msg = str(err.value)
    assert "steps" in msg and "batch_size" in msg and "max_rollbacks" in msg
    assert "lr_generator" not in msg  # the optim section's keys are not listed


@pytest.mark.parametrize(
    "text,key",
    [
        ("train: {steps: abc}\n", "train.steps"),
        ("train: {steps: true}\n", "train.steps"),
        ("train: {steps: 2.5}\n", "train.steps"),
        ("optim: {lr_generator: fast}\n", "optim.lr_generator"),
        ("train: {progress: 1}\n", "train.progress"),
        ("model: {generator: 3}\n", "model.generator"),
        ("train: 5\n", "train"),
        ("objective: {params: [1, 2]}\n", "objective.params"),
    ],
)
def test_yaml_wrong_types_are_named(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert str(err.value).startswith(f"{key}:"), str(err.value)


# ----------------------------------------------------------------------------------- overrides


def test_overrides_nested_free_mappings_and_lists():
    base = RunConfig()
    cfg = apply_overrides(
        base,
        [
            "train.steps=12",
            "objective.params.lam=1",
            "model.generator_params.hidden=16",
            "optim.betas=[0.0,0.9]",
            "optim.grad_clip=null",
            "train.ema=0.5",
            "description=hello world",
            "data.params={n: 4}",
        ],
    )
    assert cfg.train.steps == 12
    assert cfg.objective.params == {"lam": 1}
    assert cfg.model.generator_params == {"hidden": 16}
    assert cfg.optim.betas == (0.0, 0.9) and isinstance(cfg.optim.betas, tuple)
    assert cfg.optim.grad_clip is None
    assert cfg.train.ema == 0.5
    assert cfg.description == "hello world"
    assert cfg.data.params == {"n": 4}
    # the input is not modified
    assert base == RunConfig()


def test_override_value_may_contain_equals_sign():
    cfg = apply_overrides(RunConfig(), ["data.params.path=/tmp/a=b"])
    assert cfg.data.params == {"path": "/tmp/a=b"}


def test_later_override_wins():
    cfg = apply_overrides(RunConfig(), ["train.steps=3", "train.steps=5"])
    assert cfg.train.steps == 5


def test_int_override_of_float_field_becomes_float():
    cfg = apply_overrides(RunConfig(), ["optim.lr_generator=1"])
    assert cfg.optim.lr_generator == 1.0 and isinstance(cfg.optim.lr_generator, float)


def test_override_scientific_notation_without_dot():
    cfg = apply_overrides(RunConfig(), ["optim.lr_generator=1e-4", "optim.lr_critic=3E-5"])
    assert cfg.optim.lr_generator == 1e-4 and cfg.optim.lr_critic == 3e-5


@pytest.mark.parametrize(
    "override,key,extra",
    [
        ("nosuch=1", "nosuch", ""),
        ("train.stepz=3", "train.stepz", ""),
        ("trian.steps=3", "trian", ""),
        ("optim.betas.x=3", "optim.betas", "not a section"),
        ("model.spectral.foo=1", "model.spectral", "not a section"),
    ],
)
def test_override_unknown_keys_are_named(override, key, extra):
    with pytest.raises(ConfigError) as err:
        apply_overrides(RunConfig(), [override])
    assert key in str(err.value)
    assert extra in str(err.value)


@pytest.mark.parametrize(
    "override,key,expected",
    [
        ("train.steps=abc", "train.steps", "integer"),
        ("train.steps=true", "train.steps", "integer"),
        ("train.steps=1.5", "train.steps", "integer"),
        ("optim.lr_generator=abc", "optim.lr_generator", "number"),
        ("optim.lr_critic=false", "optim.lr_critic", "number"),
        ("train.progress=yes please", "train.progress", "true or false"),
        ("train.progress=1", "train.progress", "true or false"),
        ("model.z_dim=[1,2]", "model.z_dim", "integer"),
        ("optim.grad_clip=abc", "optim.grad_clip", "got 'abc'"),
        ("train.ema=[0.9]", "train.ema", "expected"),
        ("optim.betas=0.5", "optim.betas", "list"),
        ("optim.betas=[0.5]", "optim.betas", "expected 2 values, got 1"),
        ("optim.betas=[0.5,0.9,0.99]", "optim.betas", "expected 2 values, got 3"),
        ("optim.betas=[0.5,x]", "optim.betas[1]", "number"),
        ("model.generator_params=3", "model.generator_params", "mapping"),
        ("train=3", "train", "mapping"),
    ],
)
def test_override_wrong_types_are_named(override, key, expected):
    with pytest.raises(ConfigError) as err:
        apply_overrides(RunConfig(), [override])
    msg = str(err.value)
    assert msg.startswith(f"{key}:"), msg
    assert expected in msg, msg


def test_literal_violation_lists_the_valid_values():
    with pytest.raises(ConfigError) as err:
        apply_overrides(RunConfig(), ["optim.schedule=cosine"])
    msg = str(err.value)
    assert msg.startswith("optim.schedule:")
    assert "cosine" in msg
    for valid in ("constant", "linear", "step"):
        assert valid in msg
    with pytest.raises(ConfigError, match=r"model\.z_dist.*normal.*uniform"):
        apply_overrides(RunConfig(), ["model.z_dist=gaussian"])
    with pytest.raises(ConfigError, match=r"model\.spectral.*none.*fixed.*learned"):
        apply_overrides(RunConfig(), ["model.spectral=true"])


@pytest.mark.parametrize("bad", ["train.steps", "=3", "train.steps 3", ""])
def test_malformed_override(bad):
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides(RunConfig(), [bad])


def test_unparsable_value_names_the_key():
    with pytest.raises(ConfigError) as err:
        apply_overrides(RunConfig(), ["objective.params.lam=[1, 2"])
    assert str(err.value).startswith("objective.params.lam:")


# ----------------------------------------------------------------------------- round trips


def test_to_dict_is_yaml_safe_and_round_trips():
    cfg = apply_overrides(
        RunConfig(),
        ["optim.betas=[0.0,0.9]", "objective.params.kernel={name: rbf, sigmas: [1.0, 2.0]}", "train.ema=0.9"],
    )
    data = to_dict(cfg)
    assert data["optim"]["betas"] == [0.0, 0.9]  # tuples become lists
    text = yaml.safe_dump(data)  # would raise on a tuple or another Python object
    again = from_dict(RunConfig, yaml.safe_load(text))
    assert again == cfg
    assert again.optim.betas == (0.0, 0.9)
    assert from_dict(RunConfig, to_dict(RunConfig())) == RunConfig()


def test_to_dict_does_not_share_mutable_state():
    cfg = apply_overrides(RunConfig(), ["objective.params.kernel={name: rbf}"])
    data = to_dict(cfg)
    data["objective"]["params"]["kernel"]["name"] = "changed"
    assert cfg.objective.params["kernel"]["name"] == "rbf"


def test_load_config_round_trips_through_a_file(tmp_path):
    cfg = apply_overrides(RunConfig(), ["train.steps=9", "optim.grad_clip=1.0", "model.generator_params.hidden=4"])
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    assert load_config(path) == cfg


# ------------------------------------------------------------------- validation at build time


@pytest.mark.parametrize(
    "override,key",
    [
        ("train.steps=0", "train.steps"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.n_critic=0", "train.n_critic"),
        ("train.checkpoint_every=0", "train.checkpoint_every"),
        ("train.ema=1.0", "train.ema"),
        ("train.ema=0", "train.ema"),
        ("optim.lr_generator=0", "optim.lr_generator"),
        ("optim.lr_critic=-1", "optim.lr_critic"),
        ("optim.grad_clip=0", "optim.grad_clip"),
        ("model.z_dim=0", "model.z_dim"),
        ("train.max_rollbacks=-1", "train.max_rollbacks"),
        ("train.device=tpu9", "train.device"),
        ("objective.name=nosuch", "objective"),
        ("objective.params.bogus=1", "objective"),
        ("data.name=nosuch", "data"),
        ("model.generator=nosuch", "model"),
        ("model.generator_params.bogus=1", "model"),
    ],
)
def test_build_rejects_bad_values_naming_the_key(override, key):
    cfg = apply_overrides(RunConfig(), ["train.progress=false", override])
    with pytest.raises(ConfigError) as err:
        build_run(cfg, None)
    assert key in str(err.value)


@pytest.mark.parametrize("override", ["optim.lr_generator=.nan", "optim.lr_critic=.nan", "optim.grad_clip=.nan"])
def test_build_rejects_nan_hyperparameters(override):
    cfg = apply_overrides(RunConfig(), ["train.progress=false", override])
    assert math.isnan(getattr(cfg.optim, override.split(".")[1].split("=")[0]))
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        build_run(cfg, None)


def test_build_rejects_zero_step_every():
    cfg = apply_overrides(RunConfig(), ["train.progress=false", "optim.schedule=step", "optim.step_every=0"])
    with pytest.raises(ConfigError, match=r"optim\.step_every"):
        build_run(cfg, None)
