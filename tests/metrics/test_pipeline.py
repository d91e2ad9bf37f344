"""The one evaluation pipeline (igm.metrics.pipeline): default extractor, reference cache key,
generated features and the final scores, checked against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from igm.metrics import fid, kid, pipeline


def test_default_extractor_from_the_data():
    assert pipeline.default_extractor("digits") == "digits"
    assert pipeline.default_extractor(None, (1, 8, 8)) == "digits"
    assert pipeline.default_extractor("cifar10") == "inception"
    assert pipeline.default_extractor(None, (3, 32, 32)) == "inception"
    for name in ("mnist", "mnist5k"):
        assert pipeline.default_extractor(name) == "mnist"
        assert pipeline.default_extractor(name, (1, 32, 32)) == "mnist"  # MNIST padded to 32: still MNIST
    assert pipeline.default_extractor(None, (1, 28, 28)) == "mnist"
    assert pipeline.default_extractor("npy", (1, 28, 28)) == "mnist"
    assert pipeline.default_extractor("digits", (1, 28, 28)) == "digits"  # the name decides when known
    assert pipeline.default_extractor(None, (3, 28, 28)) == "inception"


def _toy_key(n=20, seed=0, sha="abc", size=None, name="double"):
    ref = {"dataset": "toy", "params": {}, "split": "all", "shape": [4], "images": n, "seed": seed}
    ext = {"name": name, "params": {}, "weights": "/somewhere/w.pt", "weights_sha256": sha,
           "resize": {"method": "none", "size": size, "text": "none"}}
    return pipeline.reference_key(ref, ext)


def test_reference_key_is_plain_and_names_everything_that_decides_the_features():
    key = _toy_key()
    assert set(key) == {"reference", "extractor", "versions"}
    assert key["reference"]["images"] == 20 and key["extractor"]["weights_sha256"] == "abc"
    assert "weights" not in key["extractor"]  # the path is not part of it: the digest is
    assert key == _toy_key()  # plain data, equal when rebuilt
    import json

    json.dumps(key)  # and serialisable, as the cache stores it
    for other in (_toy_key(n=21), _toy_key(seed=1), _toy_key(sha="abd"), _toy_key(size=[8, 8]), _toy_key(name="x")):
        assert other != key


class _Data:
    def __init__(self, rows):
        self.rows = rows

    def sample(self, n, generator):
        return self.rows[torch.randint(len(self.rows), (n,), generator=generator)]


def test_reference_features_are_cached(tmp_path):
    data = _Data(torch.randn(50, 4, dtype=torch.float64))
    calls = []

    def embed(x):
        calls.append(x.shape[0])
        return x * 2

    key = _toy_key()
    first, cached = pipeline.reference_features(data, key, embed, str(tmp_path))
    again, cached_again = pipeline.reference_features(data, key, embed, str(tmp_path))
    assert (cached, cached_again) == (False, True) and calls == [20]
    assert torch.equal(first, again)
    expected = data.sample(20, torch.Generator().manual_seed(0)) * 2
    assert torch.equal(first, expected)
    # other weights or another resolution: never the cached features
    for changed in (_toy_key(sha="other"), _toy_key(size=[16, 16])):
        _, hit = pipeline.reference_features(data, changed, embed, str(tmp_path))
        assert not hit
    assert calls == [20, 20, 20]


def test_evaluate_generator_is_kid_and_fid_of_the_generated_features():
    torch.manual_seed(0)
    gen = nn.Linear(3, 5).double()
    z = torch.randn(37, 3, dtype=torch.float64)
    real = torch.randn(40, 5, dtype=torch.float64)

    def embed(images):
        return torch.tanh(images)

    out = pipeline.evaluate_generator(gen, z, embed, real, kid_subsets=4, kid_subset_size=30, batch_size=8)
    with torch.no_grad():
        fake = torch.tanh(gen(z))  # all at once, not in batches of 8
    mean, std = kid(real, fake, subsets=4, subset_size=30, seed=0)
    assert set(out) == {"kid", "kid_std", "fid"}
    assert out["kid"] == pytest.approx(mean, rel=1e-12) and out["kid_std"] == pytest.approx(std, rel=1e-12)
    assert out["fid"] == pytest.approx(fid(real, fake), rel=1e-12)
    # the subset size is capped by the smaller set
    scores = pipeline.score_features(real, fake, kid_subsets=2, kid_subset_size=1000, with_fid=False)
    assert scores["kid_subset_size"] == 37 and "fid" not in scores


def test_igm_eval_picks_the_digits_extractor_for_8x8_images(tmp_path):
    from igm.train.scoring import score

    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.uniform(0, 1, size=(40, 1, 8, 8)).astype(np.float32))
    np.save(tmp_path / "b.npy", rng.uniform(0, 1, size=(40, 1, 8, 8)).astype(np.float32))
    result = score(tmp_path / "a.npy", against=tmp_path / "b.npy", n=40, subsets=2, subset_size=30)
    assert result["protocol"]["extractor"]["name"] == "digits" and result["kid_subset_size"] == 30
