"""npy/npz, MNIST IDX and CIFAR-10 pickle readers on files written in their real formats."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import igm.data as D


def unit(a: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(np.asarray(a, dtype=np.float32)) / 255) * 2 - 1


# ------------------------------------------------------------------ npy / npz
def test_npy_channel_last_uint8(tmp_path: Path) -> None:
    a = np.random.default_rng(0).integers(0, 256, (6, 5, 4, 3), dtype=np.uint8)
    np.save(tmp_path / "a.npy", a)
    ds = D.get("npy", path=tmp_path / "a.npy")
    assert ds.shape == (3, 5, 4) and len(ds) == 6 and ds.kind == "image"
    torch.testing.assert_close(ds.tensors(), unit(a).permute(0, 3, 1, 2), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "shape,expected",
    [((4, 5, 6), (1, 5, 6)), ((4, 5, 6, 1), (1, 5, 6)), ((4, 1, 5, 6), (1, 5, 6)), ((4, 3, 4, 3), (3, 4, 3))],
)
def test_npy_layouts(tmp_path: Path, shape: tuple, expected: tuple) -> None:
    np.save(tmp_path / "a.npy", np.zeros(shape, np.uint8))
    assert D.get("npy", path=tmp_path / "a.npy").shape == expected


def test_npy_float_ranges(tmp_path: Path) -> None:
    a = np.random.default_rng(1).random((3, 1, 4, 4)).astype(np.float64)
    np.save(tmp_path / "f.npy", a)
    ds = D.get("npy", path=tmp_path / "f.npy")
    torch.testing.assert_close(ds.tensors(), torch.from_numpy(a).float() * 2 - 1)
    np.save(tmp_path / "g.npy", a * 2 - 1)
    with pytest.raises(ValueError, match="range"):
        D.get("npy", path=tmp_path / "g.npy")
    ds = D.get("npy", path=tmp_path / "g.npy", range="[-1,1]")
    torch.testing.assert_close(ds.tensors(), torch.from_numpy(a * 2 - 1).float())


def test_npz_keys_and_points(tmp_path: Path) -> None:
    pts = np.random.default_rng(2).normal(size=(50, 3))
    imgs = np.zeros((2, 8, 8), np.uint8)
    np.savez(tmp_path / "z.npz", points=pts, images=imgs)
    ds = D.get("npy", path=tmp_path / "z.npz")  # first array: points
    assert ds.kind == "toy" and ds.shape == (3,) and len(ds) == 50
    torch.testing.assert_close(ds.tensors(), torch.from_numpy(pts).float())
    assert ds.sample(5, torch.Generator().manual_seed(0)).shape == (5, 3)
    assert D.get("npy", path=tmp_path / "z.npz", key="images").shape == (1, 8, 8)
    with pytest.raises(ValueError, match="points, images"):
        D.get("npy", path=tmp_path / "z.npz", key="labels")


def test_npy_truncated_and_missing(tmp_path: Path) -> None:
    p = tmp_path / "t.npy"
    np.save(p, np.zeros((100, 8, 8), np.uint8))
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(ValueError, match="t.npy"):
        D.get("npy", path=p)
    with pytest.raises(FileNotFoundError, match="nothere.npy"):
        D.get("npy", path=tmp_path / "nothere.npy")


# ------------------------------------------------------------------ MNIST IDX
def idx_bytes(magic: int, arr: np.ndarray) -> bytes:
    return struct.pack(f">{1 + arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes()


def write_mnist(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray | None, gz: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if gz else open
    ext = ".gz" if gz else ""
    with opener(folder / f"{prefix}-images-idx3-ubyte{ext}", "wb") as f:
        f.write(idx_bytes(2051, images))
    if labels is not None:
        with opener(folder / f"{prefix}-labels-idx1-ubyte{ext}", "wb") as f:
            f.write(idx_bytes(2049, labels))
    return folder / f"{prefix}-images-idx3-ubyte{ext}"


@pytest.fixture
def digits28() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), rng.integers(0, 10, 5, dtype=np.uint8)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_raw_and_gz(tmp_path: Path, digits28, gz: bool) -> None:
    images, labels = digits28
    write_mnist(tmp_path, "train", images, labels, gz)
    write_mnist(tmp_path, "t10k", images[:2], None, gz)
    ds = D.get("mnist", path=tmp_path)
    assert ds.shape == (1, 28, 28) and len(ds) == 5
    torch.testing.assert_close(ds.tensors()[:, 0], unit(images), rtol=0, atol=1e-6)
    assert torch.equal(ds.labels, torch.from_numpy(labels.astype(np.int64)))
    test = D.get("mnist", path=tmp_path, split="test")
    assert len(test) == 2 and test.labels is None
    padded = D.get("mnist", path=tmp_path, size=32).tensors()
    assert padded.shape == (5, 1, 32, 32)
    torch.testing.assert_close(padded[:, 0, 2:30, 2:30], unit(images), rtol=0, atol=1e-6)
    assert float(padded[:, :, :2].max()) == -1.0 and float(padded[:, :, :, 30:].max()) == -1.0
    assert D.get("mnist", path=tmp_path, size=14).shape == (1, 14, 14)


def test_mnist_raw_subfolder(tmp_path: Path, digits28) -> None:
    write_mnist(tmp_path / "MNIST" / "raw", "train", *digits28, gz=False)
    assert len(D.get("mnist", path=tmp_path)) == 5


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_truncated_idx(tmp_path: Path, digits28, gz: bool) -> None:
    images, labels = digits28
    blob = idx_bytes(2051, images)[:-37]
    p = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    p.write_bytes(gzip.compress(blob) if gz else blob)
    with pytest.raises(ValueError, match="truncated") as err:
        D.get("mnist", path=tmp_path)
    assert str(p) in str(err.value)
    if gz:  # a cut gzip stream
        p.write_bytes(gzip.compress(idx_bytes(2051, images))[:-40])
        with pytest.raises(ValueError) as err:
            D.get("mnist", path=tmp_path)
        assert str(p) in str(err.value)


def test_mnist_bad_magic_and_missing(tmp_path: Path, digits28) -> None:
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(2049, digits28[0]))
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        D.get("mnist", path=tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        D.get("mnist", path=tmp_path / "absent")
    assert str(tmp_path / "absent") in str(err.value) and "train-images-idx3-ubyte" in str(err.value)
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        D.get("mnist", path=tmp_path, split="test")


# ------------------------------------------------------------------ CIFAR-10 pickles
def write_cifar(folder: Path, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(4)
    out = {}
    for name, n in sizes.items():
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batch = {b"batch_label": name.encode(), b"data": data, b"labels": rng.integers(0, 10, n).tolist(),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        out[name] = data
    return out


def test_cifar10_layout_and_splits(tmp_path: Path) -> None:
    sizes = {f"data_batch_{i}": i for i in range(1, 6)} | {"test_batch": 4}
    data = write_cifar(tmp_path / "cifar-10-batches-py", sizes)
    ds = D.get("cifar10", path=tmp_path)
    assert len(ds) == 15 and ds.shape == (3, 32, 32) and len(ds.labels) == 15
    x = ds.tensors()
    row = data["data_batch_2"][1]  # global index 1 + 1 = 2
    for c, h, w in [(0, 0, 0), (1, 5, 7), (2, 31, 31)]:
        assert float(x[2, c, h, w]) == pytest.approx(row[c * 1024 + h * 32 + w] / 255 * 2 - 1, abs=1e-6)
    test = D.get("cifar10", path=tmp_path / "cifar-10-batches-py", split="test")
    torch.testing.assert_close(test.tensors(), unit(data["test_batch"]).view(4, 3, 32, 32), rtol=0, atol=1e-6)


def test_cifar10_errors(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, {"test_batch": 3})
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        D.get("cifar10", path=tmp_path)
    p = folder / "test_batch"
    p.write_bytes(p.read_bytes()[:-500])
    with pytest.raises(ValueError) as err:
        D.get("cifar10", path=folder, split="test")
    assert str(p) in str(err.value)
    p.write_bytes(pickle.dumps({b"data": os.getcwd}))  # a pickle that names a function
    with pytest.raises(ValueError, match="refusing to load"):
        D.get("cifar10", path=folder, split="test")
