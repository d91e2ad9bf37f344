"""The protocol of a score: what was compared with what, and how.

Every ``eval.json`` and every in-training evaluation row carries one, and the reference-feature
cache is keyed by the parts that decide the reference features, so that a cache computed at another
resolution, from another split or with other weights is never used by mistake.

- :func:`extractor_protocol`: the extractor's name, parameters, weights file and its sha256, and the
  resize it applies to its input.
- :func:`reference_protocol`: the reference dataset (name, parameters, split, image shape) and the
  number of images and the seed they were drawn with.
- :func:`protocol`: the whole record; :func:`format_protocol` prints it as a block of lines.
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["file_sha256", "weights_sha256", "extractor_protocol", "reference_protocol", "versions", "protocol",
           "format_protocol"]

_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, remembered per (path, size, mtime) for the life of the process."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def weights_sha256(extractor: nn.Module) -> str | None:
    """The sha256 of the weights file the extractor loaded (``weights_path``), what ``sha256sum``
    prints for it. An extractor built without a file but with parameters (random weights) gets the
    sha256 of its state_dict's names, dtypes, shapes and bytes; one with no parameters gets None."""
    path = getattr(extractor, "weights_path", None)
    if path is not None:
        return file_sha256(path)
    state = extractor.state_dict()
    if not state:
        return None
    h = hashlib.sha256()
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return "state_dict:" + h.hexdigest()


def extractor_protocol(extractor: nn.Module, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"name", "params", "weights", "weights_sha256", "resize"}`` of a built extractor; ``resize``
    is its :meth:`~igm.metrics.features.FeatureExtractor.input_protocol`."""
    path = getattr(extractor, "weights_path", None)
    resize = extractor.input_protocol() if hasattr(extractor, "input_protocol") else None
    return {"name": name, "params": {k: str(v) if isinstance(v, Path) else v for k, v in (params or {}).items()},
            "weights": None if path is None else str(path), "weights_sha256": weights_sha256(extractor),
            "resize": resize}


def reference_protocol(dataset: Any, name: str, params: dict[str, Any] | None, images: int, seed: int) -> dict[str, Any]:
    """The reference set of a dataset: its name and parameters, the split it reads (``"all"`` when
    the dataset has no splits), the shape of one image, and how many images were drawn with which seed."""
    shape = getattr(dataset, "shape", None)
    return {"dataset": name, "params": dict(params or {}), "split": getattr(dataset, "split", None) or "all",
            "shape": None if shape is None else [int(s) for s in shape], "images": int(images), "seed": int(seed)}


def versions() -> dict[str, str]:
    """The versions that can move a score: igm, torch, NumPy and Python."""
    import igm

    return {"igm": igm.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def protocol(*, reference: dict[str, Any], generated: dict[str, Any], extractor: dict[str, Any],
             kid_subsets: int, kid_subset_size: int, seed: int) -> dict[str, Any]:
    """The whole record: the reference, the generated samples (``{"source", "samples", ...}``), the
    extractor, the KID subsets (count and size actually used), the seed and the versions."""
    return {"reference": reference, "generated": generated, "extractor": extractor,
            "kid": {"subsets": int(kid_subsets), "subset_size": int(kid_subset_size)},
            "seed": int(seed), "versions": versions()}


def _describe_reference(ref: dict[str, Any]) -> str:
    if "dataset" in ref:
        params = ", ".join(f"{k}={v}" for k, v in ref["params"].items())
        shape = "×".join(map(str, ref["shape"])) if ref.get("shape") else "?"
        return (f"{ref['images']} images of '{ref['dataset']}'" + (f" ({params})" if params else "")
                + f", split {ref['split']}, {shape}, drawn with seed {ref['seed']}")
    return f"{ref['images']} images from {ref['source']}"


def format_protocol(p: dict[str, Any]) -> str:
    """The protocol as aligned ``key  value`` lines (what ``igm eval`` prints above its table)."""
    ext = p["extractor"]
    resize = ext.get("resize") or {}
    weights = "none" if ext["weights_sha256"] is None else (
        f"{ext['weights'] or 'random (no file)'} (sha256 {ext['weights_sha256'].split(':')[-1][:16]}…)")
    gen = p["generated"]
    rows = [("reference", _describe_reference(p["reference"])),
            ("generated", f"{gen['samples']} from {gen['source']}"
             + (f", latents seed {gen['latents_seed']}" if gen.get("latents_seed") is not None else "")
             + (f", resized from {'×'.join(map(str, gen['shape']))} to {'×'.join(map(str, gen['resized']))}"
                if gen.get("resized") else "")),
            ("extractor", ext["name"] + (" " + ", ".join(f"{k}={v}" for k, v in ext["params"].items()) if ext["params"] else "")),
            ("weights", weights),
            ("resize", resize.get("text", "none") if resize else "none"),
            ("KID subsets", f"{p['kid']['subsets']} × {p['kid']['subset_size']}"),
            ("seed", str(p["seed"])),
            ("versions", ", ".join(f"{k} {v}" for k, v in p["versions"].items()))]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
