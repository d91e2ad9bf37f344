"""Readers for datasets in local files: NumPy arrays, MNIST IDX, CIFAR-10 (image folders: images.py).

Nothing is downloaded: every reader takes the ``path`` the user names and raises a
``FileNotFoundError`` naming that path and the file it expected when it is missing. Unreadable
or truncated files are a ``ValueError`` naming the file and the reason; only image folders can
skip bad files instead (``on_error="skip"``), because only they hold independent files.
"""

from __future__ import annotations

import gzip
import importlib
import math
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from igm.checks import positive_int

from .base import TensorDataset, registry, uint8_to_unit
from .images import IMAGE_SUFFIXES, LSUN, CelebA, ImageFolder, _choice

__all__ = ["ImageFolder", "CelebA", "LSUN", "NpyDataset", "MNIST", "CIFAR10", "IMAGE_SUFFIXES"]


# --------------------------------------------------------------------------- NumPy arrays
@registry.register("npy")
class NpyDataset(TensorDataset):
    """Images or points from a ``.npy`` file or one array (``key``; default the first) of a ``.npz``.

    3-D arrays are (N, H, W) images; 4-D arrays are (N, H, W, C) when the last dim is 1 or 3 and
    the second is not, else (N, C, H, W). uint8 pixels map to [-1, 1]; float images are taken to
    lie in ``range`` ("[0,1]" or "[-1,1]") and are checked. 2-D arrays are (N, D) points: a
    ``"toy"`` dataset of shape (D,) returned as float32 unchanged.
    """

    modes = None
    std = None

    def __init__(self, path: str | Path, key: str | None = None, range: str = "[0,1]"):
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(
                f"array file {str(p)!r} does not exist; expected a .npy file or a .npz archive holding "
                "images (N,H,W), (N,H,W,C), (N,C,H,W) or points (N,D)"
            )
        value_range = _choice("range", str(range).replace(" ", ""), ("[0,1]", "[-1,1]"))
        arr = self._load(p, key)
        if arr.ndim == 2:
            if not (np.issubdtype(arr.dtype, np.number) and not np.iscomplexobj(arr)):
                raise ValueError(f"{str(p)!r}: points must be real numbers; got dtype {arr.dtype}")
            super().__init__(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)), "toy")
            return
        if arr.ndim not in (3, 4):
            raise ValueError(f"{str(p)!r}: expected a 2-, 3- or 4-D array; got shape {arr.shape}")
        x = torch.from_numpy(np.ascontiguousarray(arr))
        x = x.unsqueeze(1) if x.ndim == 3 else x
        if arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
            x = x.permute(0, 3, 1, 2)
        x = x.contiguous()
        if x.dtype == torch.uint8:
            if value_range != "[0,1]":
                raise ValueError(f"{str(p)!r}: range applies to float arrays; uint8 is always 0..255")
        elif x.is_floating_point():
            x = x.to(torch.float32)
            lo, hi = (0.0, 1.0) if value_range == "[0,1]" else (-1.0, 1.0)
            xmin, xmax = float(x.min()), float(x.max())
            if not (lo - 1e-3 <= xmin and xmax <= hi + 1e-3):  # also catches NaN
                raise ValueError(f"{str(p)!r}: values span [{xmin:g}, {xmax:g}], outside range={value_range}")
            x = x * 2 - 1 if value_range == "[0,1]" else x
        else:
            raise ValueError(f"{str(p)!r}: images must be uint8 or float; got dtype {arr.dtype}")
        super().__init__(x, "image")

    @staticmethod
    def _load(p: Path, key: str | None) -> np.ndarray:
        try:
            obj = np.load(p, allow_pickle=False)
            if not hasattr(obj, "files"):
                return obj
            with obj:
                if not obj.files:
                    raise ValueError("the archive holds no arrays")
                name = obj.files[0] if key is None else key
                if name not in obj.files:
                    raise ValueError(f"no array {name!r}; arrays: {', '.join(obj.files)}")
                return obj[name]
        except Exception as e:
            raise ValueError(f"could not read {str(p)!r}: {type(e).__name__}: {e}") from e


# --------------------------------------------------------------------------- MNIST (IDX files)
def _read_bytes(p: Path) -> bytes:
    try:
        if p.suffix == ".gz":
            with gzip.open(p, "rb") as f:
                return f.read()
        return p.read_bytes()
    except Exception as e:
        raise ValueError(f"could not read {str(p)!r}: {type(e).__name__}: {e}") from e


def read_idx(p: Path, magic: int, ndim: int) -> np.ndarray:
    """Parse an unsigned-byte IDX file (big-endian header: magic, then ``ndim`` dimensions)."""
    buf = _read_bytes(p)
    header = 4 * (1 + ndim)
    if len(buf) < header:
        raise ValueError(f"{str(p)!r} is truncated: {len(buf)} bytes, less than its {header}-byte IDX header")
    found, *dims = struct.unpack(f">{1 + ndim}I", buf[:header])
    if found != magic:
        raise ValueError(f"{str(p)!r} is not the IDX file expected: magic number {found}, expected {magic}")
    need = header + math.prod(dims)
    if len(buf) != need:
        what = "truncated" if len(buf) < need else "too long"
        raise ValueError(f"{str(p)!r} is {what}: {len(buf)} bytes, expected {need} for dimensions {dims}")
    return np.frombuffer(buf, dtype=np.uint8, offset=header).reshape(dims)


def mnist_size(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, 1, 28, 28) digits at ``size``: 28 unchanged, 32 padded with 2 background pixels a
    side (uint8 0 is −1 after conversion), any other size a bilinear resize to float in [−1, 1]."""
    if size == x.shape[-1]:
        return x
    if size == 32 and x.shape[-1] == 28:
        return F.pad(x, (2, 2, 2, 2))
    return F.interpolate(uint8_to_unit(x), size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < x.shape[-1]).clamp_(-1, 1)


@registry.register("mnist")
class MNIST(TensorDataset):
    """MNIST from its IDX files in folder ``path`` (also its ``raw/`` or ``MNIST/raw/``), optionally gzipped.

    ``split="train"`` reads ``train-images-idx3-ubyte``, ``"test"`` reads ``t10k-...``; the labels
    file beside it is optional (``labels`` is then None). ``size=28`` keeps the images, ``size=32``
    pads 2 background pixels on each side (values unchanged), any other size resizes bilinearly.
    """

    def __init__(self, path: str | Path, split: str = "train", size: int = 28):
        prefix = {"train": "train", "test": "t10k"}[_choice("split", split, ("train", "test"))]
        size = positive_int("size", size)
        root = Path(path).expanduser()
        expected = f"a folder containing {prefix}-images-idx3-ubyte (or {prefix}-images-idx3-ubyte.gz)"
        if not root.is_dir():
            raise FileNotFoundError(f"MNIST folder {str(root)!r} does not exist or is not a folder; expected {expected}")
        images = self._find(root, f"{prefix}-images")
        if images is None:
            raise FileNotFoundError(f"no MNIST {split} images in {str(root)!r}; expected {expected}")
        x = torch.from_numpy(read_idx(images, 2051, 3).copy()).unsqueeze(1)
        labels_file = self._find(images.parent, f"{prefix}-labels", idx="idx1", subdirs=False)
        labels = None
        if labels_file is not None:
            labels = torch.from_numpy(read_idx(labels_file, 2049, 1).astype(np.int64))
            if len(labels) != len(x):
                raise ValueError(f"{str(labels_file)!r} holds {len(labels)} labels for {len(x)} images")
        super().__init__(mnist_size(x, size), "image", labels)
        self.split, self.size = split, size

    @staticmethod
    def _find(root: Path, stem: str, idx: str = "idx3", subdirs: bool = True) -> Path | None:
        folders = [root, root / "raw", root / "MNIST" / "raw"] if subdirs else [root]
        for d in folders:
            for name in (f"{stem}-{idx}-ubyte", f"{stem}.{idx}-ubyte"):
                for candidate in (d / name, d / f"{name}.gz"):
                    if candidate.is_file():
                        return candidate
        return None


# --------------------------------------------------------------------------- CIFAR-10 (pickles)
def _numpy_core() -> str:
    try:
        importlib.import_module("numpy._core.multiarray")
        return "numpy._core"
    except ImportError:  # NumPy < 2
        return "numpy.core"


class _ArrayUnpickler(pickle.Unpickler):
    """Loads only what a CIFAR batch holds (dicts, lists, bytes and NumPy arrays): no code runs."""

    _allowed = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
                ("multiarray", "_reconstruct"), ("multiarray", "scalar")}

    def find_class(self, module: str, name: str) -> Any:
        short = module.rsplit(".", 1)[-1] if module.startswith(("numpy.core.", "numpy._core.")) else module
        if (short, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if short == "multiarray":
            module = f"{_numpy_core()}.multiarray"
        return super().find_class(module, name)


@registry.register("cifar10")
class CIFAR10(TensorDataset):
    """CIFAR-10 from the python batches in ``path`` (``cifar-10-batches-py`` or its parent).

    ``split="train"`` reads ``data_batch_1`` … ``data_batch_5``, ``"test"`` reads ``test_batch``;
    images are (3, 32, 32) in [-1, 1], ``labels`` the classes. The pickles are read with an
    unpickler that only accepts NumPy arrays and plain containers.
    """

    def __init__(self, path: str | Path, split: str = "train"):
        _choice("split", split, ("train", "test"))
        root = Path(path).expanduser()
        folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"CIFAR-10 batches {', '.join(missing)} not found in {str(folder)!r}; expected the "
                "cifar-10-batches-py folder (data_batch_1..5, test_batch) or its parent"
            )
        parts = [self._load(folder / n) for n in names]
        x = torch.from_numpy(np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32))
        labels = torch.from_numpy(np.concatenate([lab for _, lab in parts]))
        super().__init__(x, "image", labels)
        self.split = split

    @staticmethod
    def _load(p: Path) -> tuple[np.ndarray, np.ndarray]:
        try:
            with open(p, "rb") as f:
                batch = _ArrayUnpickler(f, encoding="bytes").load()
        except Exception as e:
            raise ValueError(f"could not read CIFAR-10 batch {str(p)!r}: {type(e).__name__}: {e}") from e
        if not isinstance(batch, dict):
            raise ValueError(f"{str(p)!r} is not a CIFAR-10 batch (a dict); got {type(batch).__name__}")
        data = batch.get(b"data", batch.get("data"))
        labels = batch.get(b"labels", batch.get("labels"))
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
            raise ValueError(f"{str(p)!r}: b'data' must be a uint8 (N, 3072) array; got {got}")
        labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
        if labels.shape != (len(data),):
            raise ValueError(f"{str(p)!r}: {labels.size} labels for {len(data)} images")
        return data, labels
