"""Image-folder datasets (generic, CelebA, LSUN) read lazily with Pillow.

A bad file is a ``ValueError`` naming it (``on_error="raise"``) or a warning and is left out
(``on_error="skip"``); files are checked once at construction so indices stay stable.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from igm.checks import positive_int

from .base import FiniteDataset, registry, uint8_to_unit

__all__ = ["ImageFolder", "CelebA", "LSUN", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_BICUBIC = getattr(Image, "Resampling", Image).BICUBIC


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


# --------------------------------------------------------------------------- image folders
@registry.register("image-folder")
class ImageFolder(FiniteDataset):
    """Every image file under ``path`` (recursive, sorted by relative path), loaded lazily.

    Each image is converted to RGB (``channels=3``) or grayscale "L" (``channels=1``),
    center-cropped to a ``crop``-pixel square (``None``: the short side) and resized to
    ``size``² with Pillow's antialiased bicubic filter, then mapped to [-1, 1].
    With ``verify=True`` every file is checked with ``PIL.Image.verify`` at construction: a bad
    file is a ValueError (``on_error="raise"``) or a warning and is left out (``"skip"``), so
    indices never change afterwards. A file that still fails to decode later raises ValueError.
    """

    kind = "image"

    def __init__(
        self,
        path: str | Path,
        size: int = 64,
        crop: int | None = None,
        channels: int = 3,
        on_error: str = "raise",
        verify: bool = True,
    ):
        root = Path(path).expanduser()
        expected = f"a folder of {'/'.join(IMAGE_SUFFIXES)} images (searched recursively)"
        if not root.exists():
            raise FileNotFoundError(f"image folder {str(root)!r} does not exist; expected {expected}")
        if not root.is_dir():
            raise ValueError(f"{str(root)!r} is not a folder; expected {expected}")
        self.size = positive_int("size", size)
        self.crop = None if crop is None else positive_int("crop", crop)
        self.channels = channels
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3; got {channels!r}")
        self.on_error = _choice("on_error", on_error, ("raise", "skip"))
        files = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        files.sort(key=lambda p: p.relative_to(root).as_posix())
        if verify:
            files = [p for p in files if self._check(p)]
        if not files:
            raise ValueError(f"no readable images in {str(root)!r}; expected {expected}")
        self.root = root
        self.files: list[Path] = files
        self.shape = (channels, self.size, self.size)

    def _check(self, p: Path) -> bool:
        try:
            with Image.open(p) as im:
                im.verify()
                w, h = im.size
        except Exception as e:  # Pillow raises many types for bad files
            msg = f"corrupt image file {str(p)!r}: {type(e).__name__}: {e}"
            if self.on_error == "raise":
                raise ValueError(msg + " (on_error='skip' leaves such files out)") from e
            warnings.warn(msg + "; skipping it", stacklevel=4)
            return False
        self._check_crop(p, w, h)
        return True

    def _check_crop(self, p: Path, w: int, h: int) -> None:
        if self.crop is not None and self.crop > min(w, h):
            raise ValueError(
                f"crop={self.crop} is larger than image {str(p)!r} ({w}x{h}); use a smaller crop or crop=None"
            )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor:
        p = self.files[index]
        try:
            with Image.open(p) as im:
                im = im.convert("RGB" if self.channels == 3 else "L")
        except Exception as e:
            raise ValueError(f"could not decode image file {str(p)!r}: {type(e).__name__}: {e}") from e
        w, h = im.size
        self._check_crop(p, w, h)
        c = min(w, h) if self.crop is None else self.crop
        left, top = (w - c) // 2, (h - c) // 2
        im = im.crop((left, top, left + c, top + c))
        if c != self.size:
            im = im.resize((self.size, self.size), _BICUBIC)
        t = torch.from_numpy(np.array(im, dtype=np.uint8))
        t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
        return uint8_to_unit(t.contiguous())


@registry.register("celeba")
class CelebA(ImageFolder):
    """CelebA as a folder of images; 160-pixel centre crop resized to 64 by default.

    The 160 crop of the aligned 178x218 images is the convention of the MMD-GAN line of work;
    pass ``crop=None`` for the full short side.
    """

    def __init__(self, path: str | Path, size: int = 64, crop: int | None = 160, channels: int = 3,
                 on_error: str = "raise", verify: bool = True):
        super().__init__(path, size, crop, channels, on_error, verify)


@registry.register("lsun")
class LSUN(ImageFolder):
    """LSUN exported to image files (the LMDB databases are not read); short-side crop, 64²."""

    def __init__(self, path: str | Path, size: int = 64, crop: int | None = None, channels: int = 3,
                 on_error: str = "raise", verify: bool = True):
        super().__init__(path, size, crop, channels, on_error, verify)
