"""Feature extractors: the FID Inception layout and loading, the shipped digits net, raw pixels, the registry."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import igm.metrics.features as FX
from igm.data import Digits
import igm.metrics.features.inception as inception_module
from igm.metrics.features.inception import BasicConv2d, _pool3x3

# --------------------------------------------------------------------------- reference layout
# Transcribed from the published port (pytorch-fid's fid_inception_v3 / torch-fidelity's
# FeatureExtractorInceptionV3, whose TF→PyTorch map lists the same 94 conv+bn pairs and softmax →
# fc): (name, in, out, kh, kw) per BasicConv2d, block templates parameterised as in the source.
STEM = [("Conv2d_1a_3x3", 3, 32, 3, 3), ("Conv2d_2a_3x3", 32, 32, 3, 3), ("Conv2d_2b_3x3", 32, 64, 3, 3),
        ("Conv2d_3b_1x1", 64, 80, 1, 1), ("Conv2d_4a_3x3", 80, 192, 3, 3)]


def block_a(c: int, pf: int) -> list[tuple]:
    return [("branch1x1", c, 64, 1, 1), ("branch5x5_1", c, 48, 1, 1), ("branch5x5_2", 48, 64, 5, 5),
            ("branch3x3dbl_1", c, 64, 1, 1), ("branch3x3dbl_2", 64, 96, 3, 3), ("branch3x3dbl_3", 96, 96, 3, 3),
            ("branch_pool", c, pf, 1, 1)]


def block_b(c: int) -> list[tuple]:
    return [("branch3x3", c, 384, 3, 3), ("branch3x3dbl_1", c, 64, 1, 1), ("branch3x3dbl_2", 64, 96, 3, 3),
            ("branch3x3dbl_3", 96, 96, 3, 3)]


def block_c(c: int, c7: int) -> list[tuple]:
    return [("branch1x1", c, 192, 1, 1), ("branch7x7_1", c, c7, 1, 1), ("branch7x7_2", c7, c7, 1, 7),
            ("branch7x7_3", c7, 192, 7, 1), ("branch7x7dbl_1", c, c7, 1, 1), ("branch7x7dbl_2", c7, c7, 7, 1),
            ("branch7x7dbl_3", c7, c7, 1, 7), ("branch7x7dbl_4", c7, c7, 7, 1), ("branch7x7dbl_5", c7, 192, 1, 7),
            ("branch_pool", c, 192, 1, 1)]


def block_d(c: int) -> list[tuple]:
    return [("branch3x3_1", c, 192, 1, 1), ("branch3x3_2", 192, 320, 3, 3), ("branch7x7x3_1", c, 192, 1, 1),
            ("branch7x7x3_2", 192, 192, 1, 7), ("branch7x7x3_3", 192, 192, 7, 1), ("branch7x7x3_4", 192, 192, 3, 3)]


def block_e(c: int) -> list[tuple]:
    return [("branch1x1", c, 320, 1, 1), ("branch3x3_1", c, 384, 1, 1), ("branch3x3_2a", 384, 384, 1, 3),
            ("branch3x3_2b", 384, 384, 3, 1), ("branch3x3dbl_1", c, 448, 1, 1), ("branch3x3dbl_2", 448, 384, 3, 3),
            ("branch3x3dbl_3a", 384, 384, 1, 3), ("branch3x3dbl_3b", 384, 384, 3, 1), ("branch_pool", c, 192, 1, 1)]


BLOCKS = {"Mixed_5b": block_a(192, 32), "Mixed_5c": block_a(256, 64), "Mixed_5d": block_a(288, 64),
          "Mixed_6a": block_b(288), "Mixed_6b": block_c(768, 128), "Mixed_6c": block_c(768, 160),
          "Mixed_6d": block_c(768, 160), "Mixed_6e": block_c(768, 192), "Mixed_7a": block_d(768),
          "Mixed_7b": block_e(1280), "Mixed_7c": block_e(2048)}


def published_layout() -> dict[str, tuple[int, ...]]:
    convs = STEM + [(f"{b}.{n}", *rest) for b, layers in BLOCKS.items() for n, *rest in layers]
    assert len(convs) == 94  # the TF→PyTorch map has 94 conv2d_params/batchnorm pairs
    keys: dict[str, tuple[int, ...]] = {}
    for name, cin, cout, kh, kw in convs:
        keys[f"{name}.conv.weight"] = (cout, cin, kh, kw)
        for part in ("weight", "bias", "running_mean", "running_var"):  # gamma, beta, moving mean/variance
            keys[f"{name}.bn.{part}"] = (cout,)
    keys["fc.weight"], keys["fc.bias"] = (1008, 2048), (1008,)
    return keys


@pytest.fixture(scope="module")
def inception() -> FX.InceptionFID:
    torch.manual_seed(0)
    return FX.InceptionFID(pretrained=False)


def test_inception_state_dict_matches_published_file(inception: FX.InceptionFID) -> None:
    ours = {k: tuple(v.shape) for k, v in inception.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert ours == published_layout()


def test_inception_parameter_count(inception: FX.InceptionFID) -> None:
    # torchvision's inception_v3 has 27,161,264 parameters (its weights' meta "num_params"); the FID
    # graph has no aux head (conv 768→128 1×1 + bn, conv 128→768 5×5 + bn, fc 768→1000) and 1008 classes.
    aux = 768 * 128 + 2 * 128 + 128 * 768 * 25 + 2 * 768 + 768 * 1000 + 1000
    expected = 27_161_264 - aux + 8 * (2048 + 1)
    assert expected == 23_850_960 == sum(p.numel() for p in inception.parameters())
    assert all(not p.requires_grad for p in inception.parameters()) and not inception.train().training
    bns = [m for m in inception.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 94 and all(m.eps == 1e-3 for m in bns)  # the TF graph's variance epsilon


def test_inception_forward_shapes_and_probs(inception: FX.InceptionFID) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        rgb = inception(torch.rand(2, 3, 32, 32) * 2 - 1)
        gray_in = torch.rand(2, 1, 28, 28) * 2 - 1
        gray, gray3 = inception(gray_in), inception(gray_in.repeat(1, 3, 1, 1))
    for out in (rgb, gray):
        assert out["features"].shape == (2, 2048) and out["probs"].shape == (2, 1008)
        assert torch.allclose(out["probs"].sum(1), torch.ones(2), atol=1e-5)
        assert torch.isfinite(out["features"]).all()
    torch.testing.assert_close(gray["features"], gray3["features"])
    # IS probabilities: softmax of the bias-free logits (original IS code / torch-fidelity logits_unbiased)
    unbiased = rgb["features"] @ inception.fc.weight.T
    torch.testing.assert_close(rgb["probs"], unbiased.softmax(1))
    torch.testing.assert_close(rgb["logits"], unbiased + inception.fc.bias)


def test_inception_resizes_like_pytorch_fid(inception: FX.InceptionFID) -> None:
    x = torch.rand(1, 3, 20, 24) * 2 - 1
    big = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(inception.pool3(x), inception.pool3(big))


def _randomise_batch_norms(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                for t, lo, hi in ((m.weight, 0.5, 1.5), (m.bias, -0.2, 0.2), (m.running_var, 0.01, 2.0)):
                    t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)


def _plain_forward(self: BasicConv2d, x: torch.Tensor) -> torch.Tensor:
    return F.relu(self.bn(self.conv(x)))


def test_folded_batch_norm_equals_conv_bn_relu() -> None:
    """The eval-mode folding against the three modules in float64: agreement to float64 rounding."""
    torch.manual_seed(4)
    layer = BasicConv2d(5, 7, (3, 1), stride=2, padding=(1, 0)).double().eval()
    _randomise_batch_norms(layer, 5)
    x = torch.randn(3, 5, 11, 9, dtype=torch.float64)
    with torch.no_grad():
        ref = _plain_forward(layer, x)
        torch.testing.assert_close(layer(x), ref, rtol=0, atol=64 * torch.finfo(torch.float64).eps * float(ref.abs().max()))
        layer.train()  # training mode: batch statistics, no folding
        torch.testing.assert_close(layer(x), _plain_forward(layer, x), rtol=0, atol=0)


def test_inception_fast_path_matches_plain_nchw_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    """Channels-last layout and folded batch norms change the pool3 features by float32 rounding only."""
    torch.manual_seed(6)
    model = FX.InceptionFID(pretrained=False)
    _randomise_batch_norms(model, 7)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(8)) * 2 - 1
    with torch.no_grad():
        fast = model.pool3(x)
        monkeypatch.setattr(BasicConv2d, "forward", _plain_forward)
        monkeypatch.setattr(inception_module, "_fast_layout", lambda t: t)
        ref = model.pool3(x)
    assert float(ref.abs().max()) > 0.1  # features not vanishing: the comparison means something
    torch.testing.assert_close(fast, ref, rtol=0, atol=128 * torch.finfo(torch.float32).eps * float(ref.abs().max()))


def test_tf_pools(inception: FX.InceptionFID) -> None:
    x = torch.full((1, 2, 5, 5), 3.0)
    assert torch.all(_pool3x3(x, "avg") == 3.0)  # TF average pool ignores the zero padding
    y = torch.arange(25.0).reshape(1, 1, 5, 5)
    assert _pool3x3(y, "max")[0, 0, 0, 0] == 6.0
    assert inception.Mixed_7b.pool == "avg" and inception.Mixed_7c.pool == "max"  # E_1 / E_2


def test_inception_round_trip_and_strict_keys(inception: FX.InceptionFID, tmp_path: Path) -> None:
    torch.manual_seed(2)
    with torch.no_grad():  # make the BN statistics non-trivial so a missed buffer would show
        for name, buf in inception.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
    state = {k: v for k, v in inception.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / FX.WEIGHTS_FILE
    torch.save(state, path)
    torch.manual_seed(3)
    fresh = FX.InceptionFID(pretrained=False)
    x = torch.rand(1, 3, 40, 40) * 2 - 1
    with torch.no_grad():
        before = fresh(x)["features"]
        loaded = FX.InceptionFID(weights=path)
        target = inception(x)["features"]
        assert not torch.allclose(before, target)
        torch.testing.assert_close(loaded(x)["features"], target, rtol=0, atol=0)
    assert loaded.weights_path == path
    bad = dict(state)
    del bad["Mixed_6c.branch7x7_2.conv.weight"]
    bad["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError) as err:
        FX.InceptionFID(weights=tmp_path / "bad.pth")
    assert "Mixed_6c.branch7x7_2.conv.weight" in str(err.value) and "AuxLogits.fc.weight" in str(err.value)


def test_missing_weights_error_and_hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    cache = tmp_path / "th" / "hub" / "checkpoints" / FX.WEIGHTS_FILE
    assert FX.default_weights_path() == cache
    for given in (None, tmp_path / "elsewhere" / "w.pth"):
        with pytest.raises(FileNotFoundError) as err:
            FX.InceptionFID(weights=given)
        msg = str(err.value)
        assert str(cache) in msg and FX.WEIGHTS_FILE in msg and "95628359 bytes" in msg and "weights=" in msg
        assert given is None or str(given) in msg
    cache.parent.mkdir(parents=True)
    torch.save(FX.InceptionFID(pretrained=False).state_dict(), cache)  # with num_batches_tracked: also fine
    assert FX.get("inception").weights_path == cache


# --------------------------------------------------------------------------- digits net
def shipped_meta() -> dict:
    path = FX.shipped_weights()
    assert path.is_file() and path.stat().st_size < 500_000
    return json.loads(path.with_suffix(".json").read_text())


def held_out(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.model_selection import train_test_split

    meta = shipped_meta()
    data = Digits(size=size)
    y = data.labels.numpy()
    _, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=meta["split_seed"])
    assert len(test) == meta["n_test"] == 360
    return data.tensors()[test], data.labels[test]


@pytest.mark.parametrize("size", [8, 16])
def test_shipped_digits_net_accuracy(size: int) -> None:
    x, y = held_out(size)
    ext = FX.get("digits")
    with torch.no_grad():
        out = ext(x)
    assert out["features"].shape == (len(x), ext.dim) == (360, 128)
    assert torch.allclose(out["probs"].sum(1), torch.ones(len(x)), atol=1e-5)
    acc = (out["probs"].argmax(1) == y).float().mean().item()
    assert acc >= 0.95
    if size == 8:
        assert acc == pytest.approx(shipped_meta()["accuracy"], abs=0.01)


def write_idx(path: Path, magic: int, arr: np.ndarray) -> None:
    path.write_bytes(struct.pack(f">{1 + arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes())


def test_train_digits_net_mnist_and_digits(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 64), ("t10k", 32)):
        labels = rng.integers(0, 10, n)
        images = np.zeros((n, 28, 28)) + (labels[:, None, None] * 25)  # class = brightness
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", 2051, images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", 2049, labels)
    acc, out = FX.train_digits_net("mnist", path=tmp_path, epochs=1, out=tmp_path / "m" / "net.pt", log=None)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert out.is_file() and 0 <= acc <= 1 and meta["size"] == 28 and meta["accuracy"] == acc
    ext = FX.get("digits", weights=out)
    assert ext.net.size == 28 and ext(torch.zeros(3, 1, 8, 8))["features"].shape == (3, 128)
    acc, out = FX.train_digits_net("digits", epochs=3, out=tmp_path / "d.pt", log=None)
    assert acc > 0.6 and json.loads(out.with_suffix(".json").read_text())["split_seed"] == 0
    with pytest.raises(ValueError, match="mnist"):
        FX.train_digits_net("mnist", path=None)
    with pytest.raises(ValueError, match="'digits', 'mnist5k', 'mnist'"):
        FX.train_digits_net("cifar")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        FX.get("digits", weights=tmp_path / "nope.pt")


# --------------------------------------------------------------------------- raw, registry, layering
def test_raw_extractor() -> None:
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    out = FX.get("raw")(x)
    assert set(out) == {"features"} and torch.equal(out["features"], x.reshape(5, -1))
    small = FX.get("raw", size=8, channels=3)
    assert small.dim == 192 and small(x)["features"].shape == (5, 192)
    torch.testing.assert_close(small(x)["features"], F.avg_pool2d(x, 2).reshape(5, -1))
    assert FX.get("raw", size=32)(x)["features"].shape == (5, 3 * 32 * 32)
    with pytest.raises(ValueError, match="3 channels"):
        small(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        FX.get("raw")(torch.zeros(4, 64))


def test_registry_errors_list_names() -> None:
    assert FX.names() == ["digits", "inception", "mnist", "raw"]
    with pytest.raises(ValueError) as err:
        FX.get("vgg16")
    assert all(n in str(err.value) for n in FX.names())
    with pytest.raises(ValueError, match="'colour'.*size"):
        FX.get("raw", colour=1)
    with pytest.raises(ValueError, match="FeatureExtractor"):
        FX.registry.register("plain", torch.nn.Linear)


def test_features_do_not_import_train() -> None:
    code = "import sys, igm.metrics.features; print(sorted(m for m in sys.modules if m.startswith('igm.train')))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
