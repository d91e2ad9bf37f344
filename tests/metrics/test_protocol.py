"""The protocol recorded with every score (igm.metrics.protocol): weights digests checked against
hashlib over the file, extractor resize descriptions, versions, and the printed block."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch import nn

import igm
from igm.metrics import protocol as P
from igm.metrics.features import get, shipped_weights


def test_file_sha256_is_sha256sum_of_the_file(tmp_path):
    path = tmp_path / "w.bin"
    blob = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)  # several read chunks and a ragged end
    path.write_bytes(blob)
    assert P.file_sha256(path) == hashlib.sha256(blob).hexdigest()
    path.write_bytes(blob[:-1])  # a changed file (size differs) is hashed again, not remembered
    assert P.file_sha256(path) == hashlib.sha256(blob[:-1]).hexdigest()


@pytest.mark.parametrize("name", ["digits", "mnist"])
def test_shipped_extractors_record_their_weights_file_and_resize(name):
    ext = get(name)
    rec = P.extractor_protocol(ext, name, {})
    path = shipped_weights(name)
    assert rec["weights"] == str(path)
    assert rec["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    size = 8 if name == "digits" else 28
    assert rec["resize"]["size"] == [size, size] and f"{size}×{size}" in rec["resize"]["text"]


def test_weights_without_a_file_hash_the_state_dict_and_change_with_it():
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    first = P.weights_sha256(net)
    assert first.startswith("state_dict:")
    with torch.no_grad():
        net.weight[0, 0] += 1e-6
    assert P.weights_sha256(net) != first
    assert P.weights_sha256(get("raw")) is None  # no parameters, no weights
    raw = P.extractor_protocol(get("raw", size=4), "raw", {"size": 4})
    assert raw["resize"]["size"] == [4, 4] and raw["weights_sha256"] is None
    assert P.extractor_protocol(get("raw"), "raw", {})["resize"]["size"] is None


def test_protocol_names_every_part_and_prints_them():
    class _Data:
        shape = (1, 28, 28)
        split = "test"

    ref = P.reference_protocol(_Data(), "mnist", {"path": "/data/mnist"}, 1000, seed=0)
    assert ref == {"dataset": "mnist", "params": {"path": "/data/mnist"}, "split": "test", "shape": [1, 28, 28],
                   "images": 1000, "seed": 0}
    assert P.reference_protocol(object(), "digits", None, 10, 0)["split"] == "all"
    ext = P.extractor_protocol(get("mnist"), "mnist", {})
    rec = P.protocol(reference=ref, generated={"source": "run/x", "samples": 500, "seed": 3}, extractor=ext,
                     kid_subsets=100, kid_subset_size=500, seed=3)
    assert rec["versions"]["igm"] == igm.__version__ and rec["versions"]["torch"] == torch.__version__
    assert rec["kid"] == {"subsets": 100, "subset_size": 500} and rec["seed"] == 3
    text = P.format_protocol(rec)
    for part in ("1000 images of 'mnist'", "split test", "1×28×28", "500 from run/x", ext["weights_sha256"][:16],
                 "to 28×28", "100 × 500", f"torch {torch.__version__}"):
        assert part in text, part
