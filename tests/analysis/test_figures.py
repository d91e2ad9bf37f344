"""The figure registry, its option parsing and the digits method comparison."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass

import pytest

from igm.analysis import comparison, figures
from igm.cli import main


@dataclass
class _Opts:
    steps: int = 10
    lr: float = 0.1
    methods: tuple[str, ...] = ("a", "b")
    fast: bool = False


def test_parse_overrides_types_and_unknown_keys():
    got = figures.parse_overrides(_Opts, ["steps=3", "lr=1", "methods=[x, y]", "fast=true"])
    assert got == {"steps": 3, "lr": 1.0, "methods": ("x", "y"), "fast": True}
    assert isinstance(got["lr"], float)
    assert figures.parse_overrides(_Opts, ["methods=z"]) == {"methods": ("z",)}
    with pytest.raises(ValueError, match="unknown option 'stesp'.*valid: steps, lr, methods, fast"):
        figures.parse_overrides(_Opts, ["stesp=3"])
    with pytest.raises(ValueError, match="must be an integer"):
        figures.parse_overrides(_Opts, ["steps=2.5"])
    with pytest.raises(ValueError, match="key=value"):
        figures.parse_overrides(_Opts, ["steps"])


def test_registration_is_validated():
    with pytest.raises(ValueError, match="quick overrides"):
        figures.register("bad-quick", _Opts, quick={"nope": 1})(lambda o, d: {})
    with pytest.raises(ValueError, match="dataclass"):
        figures.register("bad-options", dict)(lambda o, d: {})


def test_aggregate_against_hand_computation():
    rows = [
        {"preset": "p", "kid": 1.0, "fid": 10.0, "seconds": 3.0},
        {"preset": "q", "kid": 0.5, "fid": 5.0, "seconds": 1.0},
        {"preset": "p", "kid": 2.0, "fid": 14.0, "seconds": 5.0},
        {"preset": "p", "kid": 4.0, "fid": 12.0, "seconds": 4.0},
    ]
    agg = {e["preset"]: e for e in comparison.aggregate(rows)}
    assert agg["p"]["seeds"] == 3 and agg["q"]["seeds"] == 1
    assert agg["p"]["kid"] == pytest.approx(7 / 3)
    mean = 7 / 3
    assert agg["p"]["kid_std"] == pytest.approx((((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2) / 2) ** 0.5)
    assert agg["p"]["fid"] == pytest.approx(12.0) and agg["p"]["fid_std"] == pytest.approx(2.0)
    assert agg["q"]["kid_std"] == 0.0
    table = comparison.markdown_table(list(agg.values()))
    assert table.splitlines()[2].startswith("| `q` |")  # sorted by KID, best first


def test_train_seconds_counts_every_logged_window_once(tmp_path):
    """Σ sec_per_step × window length, skipping records without timing (events, evaluations)."""
    records = [{"step": 0, "event": "speed"}, {"step": 50, "sec_per_step": 0.2}, {"step": 100, "sec_per_step": 0.4},
               {"step": 100, "eval/kid": 1.0}, {"step": 120, "sec_per_step": 1.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert comparison.train_seconds(tmp_path) == pytest.approx(50 * 0.2 + 50 * 0.4 + 20 * 1.0)
    assert comparison.train_seconds(tmp_path / "missing") is None
    rows = [{"preset": "p", "kid": 1.0, "fid": 1.0, "seconds": s} for s in (30.0, 10.0, 20.0)]
    (agg,) = comparison.aggregate(rows)
    assert agg["seconds_min"] == 10.0 and agg["seconds"] == pytest.approx(20.0)
    assert comparison.markdown_table([agg]).splitlines()[2].endswith("| 10 |")


def test_cli_lists_figures_and_rejects_unknown(capsys):
    assert main(["figure", "list"]) == 0
    assert "digits-comparison" in capsys.readouterr().out
    assert main(["figure", "no-such-figure"]) == 2
    assert "unknown figure 'no-such-figure'" in capsys.readouterr().err
    assert main(["figure", "digits-comparison", "--quick", "bogus=1"]) == 2
    assert "unknown option 'bogus'" in capsys.readouterr().err


def test_digits_comparison_quick_is_resumable(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["figure", "digits-comparison", "--quick", "--out", str(out), "presets=[digits-gan]"]
    assert main(args) == 0
    payload = json.loads((out / "digits-comparison.json").read_text())
    runs = payload["runs"]
    assert [(r["preset"], r["seed"]) for r in runs] == [("digits-gan", 0), ("digits-gan", 1)]
    for r in runs:  # the table's numbers are the runs' own summaries
        summary = json.loads((out / "runs" / "digits-gan" / f"seed{r['seed']}" / "summary.json").read_text())
        assert summary["step"] == 2 and r["kid"] == summary["eval/kid"] and r["fid"] == summary["eval/fid"]
    assert runs[0]["kid"] != runs[1]["kid"]  # different seeds, different runs
    (agg,) = payload["aggregate"]
    assert agg["kid"] == pytest.approx(statistics.fmean(r["kid"] for r in runs))
    assert (out / "digits-comparison-kid.png").stat().st_size > 0
    assert (out / "digits-comparison-samples.png").stat().st_size > 0
    # a second call reads the finished runs back instead of training again
    stamp = (out / "runs" / "digits-gan" / "seed0" / "summary.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "runs" / "digits-gan" / "seed0" / "summary.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "digits-comparison.json").read_text())["runs"] == runs


@dataclass
class _Maybe:
    steps: int | None = None


def test_optional_options_take_none_or_their_type():
    assert figures.parse_overrides(_Maybe, ["steps=null"]) == {"steps": None}
    assert figures.parse_overrides(_Maybe, ["steps=7"]) == {"steps": 7}
    with pytest.raises(ValueError, match="integer"):
        figures.parse_overrides(_Maybe, ["steps=2.5"])
