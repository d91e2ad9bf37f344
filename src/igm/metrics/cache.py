"""An on-disk cache of real-data features, keyed by dataset and extractor.

The key is a JSON description (dataset name and parameters, extractor name and parameters, sample
count, seed); the file name is its SHA-1. The cache lives in ``$IGM_CACHE`` or ``~/.cache/igm``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ["cache_dir", "cached_features"]


def cache_dir(override: str | Path | None = None) -> Path:
    if override is not None:
        return Path(override)
    return Path(os.environ.get("IGM_CACHE", Path.home() / ".cache" / "igm")) / "features"


def cached_features(key: dict[str, Any], compute: Callable[[], Tensor], directory: str | Path | None = None) -> tuple[Tensor, bool]:
    """``(features, was_cached)``: loads ``<dir>/<sha1(key)>.npz`` or computes and stores it."""
    text = json.dumps(key, sort_keys=True, default=str)
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    folder = cache_dir(directory)
    path = folder / f"{digest}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) == text:
                    return torch.from_numpy(data["features"]), True
        except (OSError, ValueError, KeyError):
            pass  # unreadable or foreign: recompute and overwrite
    features = compute().detach().cpu()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{digest}.{os.getpid()}.tmp.npz"
    np.savez(tmp, features=features.numpy(), key=np.array(text))
    os.replace(tmp, path)
    return features, False
