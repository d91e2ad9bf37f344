"""The FID Inception-v3: TensorFlow's "2015-12-05" ImageNet graph as pytorch-fid ports it.

The graph differs from torchvision's Inception-v3 in three ways, all reproduced here: it has 1008
output classes; the average pools inside the A, C and first E blocks exclude the zero padding
(TensorFlow's ``count_include_pad=False``); and the last E block (``Mixed_7c``) pools its
``branch_pool`` input with a 3×3 *max* pool. Parameter names and shapes are those of pytorch-fid's
weight file ``pt_inception-2015-12-05-6726825d.pth``, so its state_dict loads unchanged.

The weights are never downloaded: :class:`InceptionFID` reads a local file (see ``docs/features.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .registry import FeatureExtractor, as_image_batch, registry

__all__ = ["InceptionFID", "WEIGHTS_FILE", "WEIGHTS_BYTES", "WEIGHTS_URL", "default_weights_path"]

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_BYTES = 95_628_359  # size of pytorch-fid's release asset
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}"


def default_weights_path() -> Path:
    """Where torch.hub caches the file: ``$TORCH_HOME/hub/checkpoints/`` (``~/.cache/torch`` by default)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as in the TF graph), ReLU.

    In eval mode (always, inside :class:`InceptionFID`) the batch norm is an affine map per channel,
    folded into the convolution: weight·s and bias β − μ·s with s = γ/√(σ² + eps), computed from the
    current parameters at every call. One convolution with bias and an in-place ReLU replace three
    passes over the activations; the result equals conv → batch norm → ReLU up to float32 rounding.
    """

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return F.relu(self.bn(self.conv(x)))
        bn, conv = self.bn, self.conv
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        bias = bn.bias - bn.running_mean * scale
        return F.conv2d(x, conv.weight * scale.view(-1, 1, 1, 1), bias, conv.stride, conv.padding).relu_()


def _fast_layout(x: Tensor) -> Tensor:
    """Channels-last (NHWC) on the CPU: oneDNN's convolutions then run without converting every input
    and output, and the pools vectorise over channels (``benchmarks/RESULTS.md``: 1.7× the images/s of
    NCHW on one thread). Other devices keep their layout (not measured there)."""
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


def _pool3x3(x: Tensor, kind: str) -> Tensor:
    """The stride-1 3×3 pool of a branch_pool: TF average (padding excluded) or max."""
    if kind == "max":
        return F.max_pool2d(x, 3, stride=1, padding=1)
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35×35 block (Mixed_5b–5d): 1×1, 5×5, double 3×3 and pool branches."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_pool3x3(x, "avg"))], 1)


class InceptionB(nn.Module):
    """Grid reduction 35→17 (Mixed_6a)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """17×17 block with factorised 7×7 convolutions (Mixed_6b–6e)."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_pool3x3(x, "avg"))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17→8 (Mixed_7a)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8×8 block with expanded 1×3/3×1 branches; ``pool="avg"`` for Mixed_7b, ``"max"`` for Mixed_7c."""

    def __init__(self, cin: int, pool: str):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(_pool3x3(x, self.pool))], 1)


@registry.register("inception")
class InceptionFID(FeatureExtractor):
    """FID Inception-v3 features: ``"features"`` = pool3 (n, 2048), ``"probs"`` (n, 1008), ``"logits"``.

    Input handling follows pytorch-fid: images in [-1, 1] (pytorch-fid maps its [0, 1] inputs to
    [-1, 1], which is what igm images already are), resized bilinearly to 299×299
    (``align_corners=False``); one channel is repeated to three. ``"probs"`` is the softmax over
    all 1008 outputs of ``pool3 @ fc.weight.T`` *without* the fc bias: what the original Inception
    Score code (Salimans et al. 2016, TF graph ``softmax/logits/MatMul``) and torch-fidelity's
    ``logits_unbiased`` compute, so IS values are comparable with theirs. ``"logits"`` includes the bias.

    ``weights``: path of ``pt_inception-2015-12-05-6726825d.pth``; ``None`` reads it from the
    torch hub cache (:func:`default_weights_path`). ``pretrained=False`` skips loading (random
    He-initialised weights, meaningless features: for tests and timing only).
    """

    name = "inception"
    dim = 2048
    classes = 1008

    def __init__(self, weights: str | Path | None = None, pretrained: bool = True):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, self.classes)
        self.weights_path: Path | None = None
        if pretrained:
            self.weights_path = _find_weights(weights)
            load_inception_state(self, self.weights_path)
        elif weights is not None:
            raise ValueError("weights was given with pretrained=False; drop one of them")
        else:  # He-normal convolutions keep activations O(1) (PyTorch's default init shrinks pool3 to ~1e-8)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        self.freeze()

    def input_protocol(self) -> dict[str, Any]:
        return {"method": "bilinear", "size": [299, 299],
                "text": "bilinear to 299×299 (align_corners=False); 1 channel repeated to 3"}

    def pool3(self, images: Tensor) -> Tensor:
        """The 2048-d pool3 activations of (n, 1 or 3, H, W) images in [-1, 1]."""
        x = as_image_batch(images, (1, 3), who="the inception feature extractor")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if tuple(x.shape[-2:]) != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = _fast_layout(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        feats = self.pool3(images)
        unbiased = feats @ self.fc.weight.T
        return {"features": feats, "probs": unbiased.softmax(dim=1), "logits": unbiased + self.fc.bias}


def _find_weights(weights: str | Path | None) -> Path:
    cache = default_weights_path()
    given = Path(weights).expanduser() if weights is not None else None
    path = given if given is not None else cache
    if path.is_file():
        return path
    looked = (f"the path given, {str(given)!r} (not found); the torch hub cache, {str(cache)!r}, is only "
              "used when no path is given" if given is not None else
              f"no path was given (weights=None), and the torch hub cache {str(cache)!r} has no such file")
    raise FileNotFoundError(
        f"FID Inception weights {WEIGHTS_FILE} not found: {looked}. The file is pytorch-fid's release "
        f"asset ({WEIGHTS_BYTES} bytes; {WEIGHTS_URL}); nothing is downloaded. Copy it to {str(cache)!r} "
        "(the cache follows $TORCH_HOME, default ~/.cache/torch) or pass its path: "
        "InceptionFID(weights='/path/to/" + WEIGHTS_FILE + "') or "
        "igm.metrics.features.get('inception', weights='/path/to/" + WEIGHTS_FILE + "')."
    )


def load_inception_state(model: nn.Module, path: str | Path) -> None:
    """Load a pytorch-fid state_dict into ``model`` with a strict, readable key and shape check.

    BatchNorm ``num_batches_tracked`` counters are optional (files converted from TF lack them).
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"could not read Inception weights {str(path)!r} ({path.stat().st_size} bytes; "
                         f"expected {WEIGHTS_BYTES}): {type(e).__name__}: {e}") from e
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{str(path)!r} is not a state_dict (a dict of tensors); got {type(state).__name__}")
    own = model.state_dict()
    optional = {k for k in own if k.endswith("num_batches_tracked")}
    missing = sorted(set(own) - set(state) - optional)
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f", … ({len(keys)} in all)" if len(keys) > 8 else "")

        parts = [f"missing keys: {show(missing)}" if missing else "",
                 f"unexpected keys: {show(unexpected)}" if unexpected else "",
                 "wrong shapes: " + show([f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in wrong])
                 if wrong else ""]
        raise ValueError(f"{str(path)!r} does not hold the FID Inception-v3 weights ({WEIGHTS_FILE}); "
                         + "; ".join(p for p in parts if p))
    full = {**{k: own[k] for k in optional if k not in state}, **state}
    model.load_state_dict(full, strict=True)
