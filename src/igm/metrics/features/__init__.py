"""Feature extractors for FID, KID and the Inception Score.

``get(name, **params)`` builds one; ``names()`` lists them: ``"inception"`` (the FID Inception-v3,
weights from a local file), ``"digits"`` and ``"mnist"`` (a small digit classifier whose weights,
trained on sklearn's 8×8 digits and on real 28×28 MNIST digits, ship with the package) and ``"raw"`` (pixels). Each maps images in [-1, 1], (n, C, H, W), to a dict with
``"features"`` and, for classifiers, ``"probs"``. See ``docs/features.md``.
"""

from __future__ import annotations

from .digits_net import (DigitsFeatures, DigitsNet, MNISTFeatures, digits_split, mnist5k_split, shipped_weights,
                         train_digits_net)
from .inception import WEIGHTS_BYTES, WEIGHTS_FILE, InceptionFID, default_weights_path
from .raw import RawPixels
from .registry import FeatureExtractor, embed, get, names, registry, resize_images

__all__ = [
    "DigitsFeatures",
    "DigitsNet",
    "FeatureExtractor",
    "InceptionFID",
    "MNISTFeatures",
    "RawPixels",
    "WEIGHTS_BYTES",
    "WEIGHTS_FILE",
    "default_weights_path",
    "embed",
    "digits_split",
    "mnist5k_split",
    "get",
    "names",
    "registry",
    "resize_images",
    "shipped_weights",
    "train_digits_net",
]
