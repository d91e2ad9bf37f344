"""Latent codes: the two distributions, reproducible from a generator, and the old import path."""

from __future__ import annotations

import pytest
import torch

from igm.nn.latent import LATENT_DISTS, sample_latent


def test_normal_and_uniform_draws():
    z = sample_latent(20000, 3, "normal", torch.Generator().manual_seed(0))
    assert z.shape == (20000, 3) and z.dtype == torch.float32
    assert abs(float(z.mean())) < 0.02 and abs(float(z.std()) - 1.0) < 0.02
    u = sample_latent(20000, 3, "uniform", torch.Generator().manual_seed(0))
    assert float(u.min()) >= -1.0 and float(u.max()) <= 1.0
    assert abs(float(u.mean())) < 0.02 and abs(float(u.var()) - 1.0 / 3.0) < 0.01  # U[−1, 1]: variance 1/3


def test_same_generator_seed_same_codes():
    for dist in LATENT_DISTS:
        a = sample_latent(5, 2, dist, torch.Generator().manual_seed(7))
        b = sample_latent(5, 2, dist, torch.Generator().manual_seed(7))
        assert torch.equal(a, b)


def test_unknown_distribution_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown latent distribution 'gaussian'; valid: normal, uniform"):
        sample_latent(2, 2, "gaussian", torch.Generator())


def test_old_import_paths_still_work():
    import igm.nn
    from igm.train.config import sample_latent as old

    assert old is sample_latent and igm.nn.sample_latent is sample_latent
