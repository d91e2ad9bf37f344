"""The shared field checks: each returns the value and rejects with a message naming the field,
the value and the valid range."""

from __future__ import annotations

import math

import numpy as np
import pytest

from igm.checks import in_range, non_negative, positive, positive_int, positive_tuple


def test_positive():
    assert positive("rho", 2) == 2.0 and isinstance(positive("rho", 2), float)
    assert positive("rho", np.float32(0.5)) == 0.5
    assert positive("gamma", None, optional=True) is None
    for bad in (0, -1.0, math.inf, math.nan, True, None, "0.1", [1.0]):
        with pytest.raises(ValueError, match=r"^rho must be a positive finite number, in \(0, inf\); got "):
            positive("rho", bad)
    with pytest.raises(ValueError, match=r"got -1\.0$"):
        positive("rho", -1.0)
    with pytest.raises(ValueError, match="or None; got 0"):
        positive("gamma", 0, optional=True)


def test_non_negative():
    assert non_negative("gp_weight", 0) == 0.0 and non_negative("gp_weight", 10) == 10.0
    for bad in (-1e-9, math.inf, -math.inf, math.nan, False, "1"):
        with pytest.raises(ValueError, match=r"^gp_weight must be a non-negative finite number, in \[0, inf\); got "):
            non_negative("gp_weight", bad)


def test_in_range():
    assert in_range("ema", 0.5, 0, 1, low_open=True, high_open=True) == 0.5
    assert in_range("beta", 0, 0, 1, high_open=True) == 0.0
    assert in_range("p", 1, 0, 1) == 1.0
    with pytest.raises(ValueError, match=r"^ema must be a number in \(0, 1\); got 1$"):
        in_range("ema", 1, 0, 1, low_open=True, high_open=True)
    with pytest.raises(ValueError, match=r"beta must be a number in \[0, 1\); got nan"):
        in_range("beta", math.nan, 0, 1, high_open=True)
    assert in_range("ema", None, 0, 1, optional=True) is None


def test_positive_int():
    assert positive_int("rank", 3) == 3 and positive_int("rank", np.int64(2)) == 2
    assert positive_int("rank", None, optional=True) is None
    for bad in (0, -2, 1.0, True, "3", None):
        with pytest.raises(ValueError, match="^rank must be a positive integer; got "):
            positive_int("rank", bad)
    with pytest.raises(ValueError, match="rank must be a positive integer or None; got 0"):
        positive_int("rank", 0, optional=True)


def test_positive_tuple():
    assert positive_tuple("sigmas", 2) == (2.0,)
    assert positive_tuple("sigmas", [1, 2.5]) == (1.0, 2.5)
    with pytest.raises(ValueError, match=r"sigmas\[1\] must be a positive finite number, in \(0, inf\); got -1"):
        positive_tuple("sigmas", (1.0, -1))
    with pytest.raises(ValueError, match="sigmas must be a non-empty sequence"):
        positive_tuple("sigmas", ())
    with pytest.raises(ValueError, match="sigmas must be a positive finite number or a non-empty sequence"):
        positive_tuple("sigmas", None)


def test_a_yaml_string_gets_a_hint():
    with pytest.raises(ValueError, match="YAML reads a number such as 1e-5 without a dot as text"):
        positive("rho", "1e-5")
