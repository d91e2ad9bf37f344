"""benchmarks/gpu_check.sh (issue 14, item 4): the quick CPU run end to end (every section
measured, the JSON schema, the Markdown table, identical weights across the torchrun ranks), and
in process: time boxes, a failing section that does not stop the others, the custom-activation
comparison, and the exact rank comparison."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import _gpu_sections as S  # noqa: E402
import _gpu_torchrun as T  # noqa: E402
import gpu_check as G  # noqa: E402
from _timebox import TimeBoxExceeded, time_box  # noqa: E402


def positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_quick_run_writes_every_section(tmp_path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["schema"] == G.SCHEMA and report["quick"] is True
    assert list(report["sections"]) == G.SECTION_NAMES
    for name, rec in report["sections"].items():
        assert rec["error"] is None, (name, rec["error"])
        assert rec["status"] == ("not available" if name == "activation" and rec["status"] != "ok" else "ok"), name
        assert rec["seconds"] <= rec["box_s"]

    env_r = report["sections"]["environment"]["result"]
    assert env_r["device"] == "cpu" and env_r["peak_bf16_tflops"] is None and env_r["torch"] == torch.__version__

    fk = report["sections"]["fid_kid"]["result"]
    assert fk["fid_n_lt_d"]["n"] < fk["fid_n_lt_d"]["d"] < fk["fid_full_rank"]["n"]
    for x in (fk["fid_n_lt_d"], fk["fid_full_rank"], fk["kid"]):
        assert positive(x["seconds"])
    assert positive(fk["fid_n_lt_d"]["value"]) and positive(fk["fid_full_rank"]["value"]) and positive(fk["kid"]["mean"])

    inc = report["sections"]["inception"]["result"]
    assert inc["pretrained"] is False and positive(inc["images_per_s"])

    act = report["sections"]["activation"]
    if act["status"] == "ok":  # once igm.nn.LeakyReLU exists
        assert all(positive(r["stock_ms"]) and positive(r["custom_ms"]) for r in act["result"]["rows"])
    else:
        assert "LeakyReLU" in act["note"]

    tr = report["sections"]["torchrun"]["result"]
    assert tr["world"] == 2 and tr["backend"] == "gloo" and tr["rank_devices"] == ["cpu", "cpu"]
    assert tr["steps_done"] == tr["steps"] and tr["returncode"] == 0
    assert tr["identical"] is True and tr["tensors_compared"] > 0 and tr["max_abs_diff"] == 0.0
    assert tr["moved_from_init"] > 0  # the ranks trained: identical weights are not the untouched initial ones

    for preset in ("cifar10-sn-smmd", "cifar10-wgan-gp"):
        res = report["sections"][f"speed:{preset}"]["result"]
        assert res["preset"] == preset and positive(res["critic_step_flops"])
        labels = [r["configuration"] for r in res["rows"]]
        assert {"all off (baseline)", "amp only", "channels_last only", "cudnn_benchmark only", "defaults (auto)",
                "compile only", "all on"} == set(labels)
        for row in res["rows"]:
            if row["switches"]["compile"] != "off":  # quick: compilation would take minutes on a CPU
                assert row["status"] == "skipped"
                continue
            assert row["status"] == "ok", row
            for key in ("gen_it_per_s", "critic_step_ms", "critic_tflops", "speedup"):
                assert positive(row[key]), (preset, row["configuration"], key)
            assert row["critic_tflops"] == pytest.approx(res["critic_step_flops"] / (row["critic_step_ms"] * 1e-3) / 1e12)

    md = (out / "gpu_check.md").read_text()
    assert "quick CPU smoke run (not GPU results)" in md
    assert "| preset | configuration | gen it/s |" in md and "| check | result |" in md
    assert "weights identical across ranks: yes" in md
    assert "[gpu_check] torchrun: ok" in (out / "gpu_check.log").read_text()
    print(f"quick run: {wall:.1f} s")


# ---------------------------------------------------------------------------------- in process


def test_time_box_interrupts_and_nests() -> None:
    t0 = time.monotonic()
    with pytest.raises(TimeBoxExceeded, match="inner: exceeded its time box"):
        with time_box(5, "outer"):
            with time_box(0.2, "inner"):
                while True:
                    time.sleep(0.01)
    assert time.monotonic() - t0 < 2
    with pytest.raises(TimeBoxExceeded, match="outer"):  # an inner box never outlasts the outer one
        with time_box(0.2, "outer"):
            with time_box(30, "inner"):
                while True:
                    time.sleep(0.01)
    with time_box(0.3, "fine"):
        pass
    time.sleep(0.4)  # no alarm left armed after the box closed


def test_failing_sections_are_recorded_and_the_rest_run(tmp_path, monkeypatch) -> None:
    def slow(s, out):
        out["partial"] = 1.0
        while True:
            time.sleep(0.01)

    def broken(s, out):
        raise ValueError("boom")

    def good(s, out):
        out["value"] = 2.0

    sections = [("slow", slow, 0.3), ("broken", broken, 10), ("good", good, 10)]
    monkeypatch.setattr(G, "SECTIONS", sections)
    monkeypatch.setattr(G, "SECTION_NAMES", [n for n, _, _ in sections])
    monkeypatch.setattr(G, "MIN_BOX_S", 0.1)
    assert G.main(["--quick", "--out", str(tmp_path)]) == 1
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    rec = report["sections"]
    assert rec["slow"]["status"] == "error" and "exceeded its time box" in rec["slow"]["error"]
    assert rec["slow"]["result"] == {"partial": 1.0}  # what it measured before the box ran out
    assert rec["broken"]["status"] == "error" and rec["broken"]["error"] == "ValueError: boom"
    assert rec["good"] == {**rec["good"], "status": "ok", "error": None, "result": {"value": 2.0}}
    assert (tmp_path / "gpu_check.md").is_file()


def test_boxes_leave_time_for_later_sections(monkeypatch) -> None:
    monkeypatch.setattr(G, "SECTIONS", [("a", None, 100), ("b", None, 100), ("s1", None, None), ("s2", None, None)])
    deadline = time.monotonic() + 200
    assert G.box_for(0, deadline) == pytest.approx(100, abs=0.1)
    assert G.box_for(1, time.monotonic() + 40) == pytest.approx(40 - 2 * G.RESERVE_S, abs=0.1)
    assert G.box_for(2, time.monotonic() + 100) == pytest.approx(50, abs=0.1)  # an equal share for each speed section
    assert G.box_for(3, time.monotonic() + 100) == pytest.approx(100, abs=0.1)


@pytest.fixture
def quick(tmp_path) -> S.Settings:
    s = S.Settings.quick_cpu(tmp_path)
    s.data = G.synthetic_cifar(tmp_path / "c.npy", 64)
    return s


def test_activation_section_compares_the_custom_leaky_relu(quick, monkeypatch) -> None:
    import igm.nn

    class Same(nn.LeakyReLU):  # a drop-in subclass: the same function
        pass

    class Wrong(nn.LeakyReLU):  # a different function: the gradient check must notice
        def forward(self, x):
            return torch.nn.functional.leaky_relu(x, 2 * self.negative_slope)

    monkeypatch.setattr(igm.nn, "LeakyReLU", Same, raising=False)
    out: dict = {}
    assert S.activation(quick, out) is None
    assert [r["configuration"] for r in out["rows"]] == ["float32 (all off)", "defaults (auto)"]
    for row in out["rows"]:
        assert row["modules_swapped"] == 7  # the SN-GAN critic at 32×32: 7 convolutions, each with a LeakyReLU
        assert row["max_abs_grad_diff"] == 0.0 and positive(row["stock_ms"]) and positive(row["custom_ms"])
    monkeypatch.setattr(igm.nn, "LeakyReLU", Wrong)
    out = {}
    S.activation(quick, out)
    assert out["rows"][0]["max_abs_grad_diff"] > 1e-6
    monkeypatch.delattr(igm.nn, "LeakyReLU")
    got = S.activation(quick, {})
    assert isinstance(got, S.NotAvailable) and "does not exist" in got.reason


def test_set_leaky_swaps_nested_modules() -> None:
    class Custom(nn.LeakyReLU):
        pass

    net = nn.Sequential(nn.Linear(2, 2), nn.LeakyReLU(0.3), nn.Sequential(nn.LeakyReLU(0.1), nn.ReLU()))
    assert S.set_leaky(net, Custom) == 2
    assert type(net[1]) is Custom and net[1].negative_slope == 0.3 and type(net[2][0]) is Custom
    assert S.set_leaky(net, nn.LeakyReLU) == 2 and type(net[1]) is nn.LeakyReLU and type(net[2][1]) is nn.ReLU


def test_rank_comparison_is_exact() -> None:
    a = {"w": torch.ones(3), "n": torch.tensor(4)}
    b = {"w": torch.ones(3), "n": torch.tensor(4)}
    assert T.compare([a, b]) == {"identical": True, "tensors_compared": 2, "max_abs_diff": 0.0, "different": []}
    b["w"] = torch.tensor([1.0, 1.0, 1.0 + 2**-20])
    got = T.compare([a, b])
    assert got["identical"] is False and got["different"] == ["w"] and got["max_abs_diff"] == pytest.approx(2**-20)
    assert T.compare([a, {"w": a["w"]}])["identical"] is False


def test_torchrun_placement() -> None:
    assert T.plan("cpu", 0) == {"device": "cpu", "backend": "gloo", "gpus_used": 0}
    assert T.plan("cuda", 1) == {"device": "cuda:0", "backend": "gloo", "gpus_used": 1}  # NCCL refuses 2 ranks on 1 GPU
    assert T.plan("cuda", 8) == {"device": "cuda", "backend": "nccl", "gpus_used": 2}


def test_compile_warm_up_is_bounded(quick) -> None:
    """The GPU path's torch.compile configurations on the CPU, with a 0.1 s bound on their warm-up:
    compilation takes far longer, so both rows record the time box and the other rows are measured."""
    quick.compile, quick.compile_box_s = True, 0.1
    out: dict = {}
    t0 = time.perf_counter()
    with time_box(120, "section speed"):
        S.speed(quick, out, "cifar10-wgan-gp")
    assert time.perf_counter() - t0 < 90
    rows = {r["configuration"]: r for r in out["rows"]}
    for label in ("compile only", "all on"):
        assert rows[label]["status"] == "error"
        assert "warm-up with torch.compile: exceeded its time box" in rows[label]["error"]
    assert [r["configuration"] for r in out["rows"]][-2:] == ["compile only", "all on"]  # compiled ones last
    assert all(r["status"] == "ok" and positive(r["gen_it_per_s"]) for r in out["rows"] if r["switches"]["compile"] == "off")
