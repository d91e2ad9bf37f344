"""The Markdown tables of benchmarks/gpu_check.py, rendered from its JSON report."""

from __future__ import annotations

from typing import Any


def _num(x: Any, fmt: str = ".2f") -> str:
    return "—" if x is None else format(x, fmt)


def _cell(text: Any, limit: int = 400) -> str:
    """Free text (an error message, a log tail) made safe for one Markdown table cell."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sec(report: dict[str, Any], name: str) -> dict[str, Any]:
    return report["sections"].get(name) or {"status": "not run", "result": {}}


def _failed(rec: dict[str, Any]) -> str | None:
    if rec["status"] in ("ok", "partial"):
        return None
    return _cell(f"{rec['status']}: {rec.get('error') or rec.get('note') or ''}".strip())


def _speed_table(report: dict[str, Any]) -> list[str]:
    lines = ["| preset | configuration | gen it/s | vs all off | critic step ms | critic TFLOP/s | % of bf16 peak | warm-up s | applied |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, rec in report["sections"].items():
        if not name.startswith("speed:"):
            continue
        res = rec.get("result") or {}
        head = f"{name[6:]} ({_num((res.get('critic_step_flops') or 0) / 1e9)} GFLOP/critic step)"
        if _failed(rec) and not res.get("rows"):
            lines.append(f"| {head} | {_failed(rec)} | | | | | | | |")
            continue
        for i, row in enumerate(res.get("rows", [])):
            first = head if i == 0 else ""
            if row["status"] != "ok":
                why = _cell(f"{row['status']}: {row.get('error') or row.get('note')}")
                lines.append(f"| {first} | {row['configuration']} | {why} | | | | | | |")
                continue
            lines.append(f"| {first} | {row['configuration']} | {row['gen_it_per_s']:.2f} | {_num(row['speedup'])}× | "
                         f"{row['critic_step_ms']:.2f} | {row['critic_tflops']:.3f} | {_num(row['percent_of_peak'], '.1f')} | "
                         f"{row['warmup_s']:.1f} | {row.get('applied', '')} |")
        if rec["status"] == "error":
            lines.append(f"| {head} | (section stopped) {_cell(rec['error'])} | | | | | | | |")
    return lines


def _other_rows(report: dict[str, Any]) -> list[str]:
    rows = []
    fk = _sec(report, "fid_kid")
    r = fk["result"]
    for key, label in (("fid_n_lt_d", "FID, n < d (rank-deficient)"), ("fid_full_rank", "FID, full rank")):
        if key in r:
            x = r[key]
            rows.append((f"{label}: n = {x['n']}, d = {x['d']}", f"{x['seconds'] * 1e3:.1f} ms (FID {x['value']:.4g})"))
    if "kid" in r:
        x = r["kid"]
        rows.append((f"KID: n = {x['n']}, d = {x['d']}, {x['subsets']} subsets × {x['subset_size']}",
                     f"{x['seconds'] * 1e3:.1f} ms (KID {x['mean']:.3g} ± {x['std']:.2g})"))
    if _failed(fk):
        rows.append(("FID / KID", _failed(fk)))
    inc = _sec(report, "inception")
    if "images_per_s" in inc["result"]:
        x = inc["result"]
        rows.append((f"Inception (random weights), batch {x['batch']}, 32×32 → 299×299, float32",
                     f"{x['images_per_s']:.0f} images/s ({x['batch_ms']:.1f} ms/batch)"))
    if _failed(inc):
        rows.append(("Inception", _failed(inc)))
    act = _sec(report, "activation")
    for x in act["result"].get("rows", []):
        rows.append((f"WGAN-GP critic step, {act['result']['critic']}, {x['configuration']}, batch {x['batch_size']}",
                     f"nn.LeakyReLU {x['stock_ms']:.2f} ms, igm.nn.LeakyReLU {x['custom_ms']:.2f} ms: "
                     f"{x['speedup']:.2f}× (largest gradient difference {x['max_abs_grad_diff']:.1e})"))
    if act["status"] == "not available":
        rows.append(("igm.nn.LeakyReLU against nn.LeakyReLU", _cell(f"not available: {act.get('note', '')}")))
    elif _failed(act):
        rows.append(("igm.nn.LeakyReLU against nn.LeakyReLU", _failed(act)))
    tr = _sec(report, "torchrun")
    x = tr["result"]
    if "identical" in x:
        rows.append((f"torchrun, 2 processes ({x['backend']} on {', '.join(x['rank_devices'])}), {x['steps_done']} steps of {x['preset']}",
                     f"weights identical across ranks: {'yes' if x['identical'] else 'NO'} ({x['tensors_compared']} tensors, "
                     f"largest difference {x['max_abs_diff']:.1e}); {x['gen_it_per_s']:.2f} gen it/s"))
    if _failed(tr):
        rows.append(("torchrun, 2 processes", _failed(tr)))
    return ["| check | result |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]


def markdown(report: dict[str, Any]) -> str:
    env = _sec(report, "environment")["result"]
    kind = "quick CPU smoke run (not GPU results)" if report.get("quick") else "GPU check"
    lines = [f"# igm {kind}: {env.get('device_name', '?')}, {report['started'][:10]}", ""]
    if report.get("error"):
        lines += [f"**{report['error']}**", ""]
    if env:
        lines += [f"torch {env.get('torch')}, CUDA {env.get('cuda') or 'none'}, Python {env.get('python')}; CPU {env.get('cpu')}; "
                  f"dense bf16 peak (spec sheet) {_num(env.get('peak_bf16_tflops'), '.1f')} TFLOP/s"
                  + (f"; a 4096³ bf16 matmul reached {env['bf16_matmul_4096_tflops']:.0f} TFLOP/s" if env.get("bf16_matmul_4096_tflops") else ""), ""]
    lines += ["| section | status | seconds | time box s |", "|---|---|---:|---:|"]
    lines += [f"| {n} | {r['status']} | {_num(r.get('seconds'), '.1f')} | {_num(r.get('box_s'), '.0f')} |"
              for n, r in report["sections"].items()]
    if any(n.startswith("speed:") for n in report["sections"]):
        lines += ["", "Speed switches: one generator iteration = n_critic critic steps + one generator step; critic FLOPs counted "
                  "once on the float32 eager step.", "", *_speed_table(report)]
    lines += ["", *_other_rows(report), ""]
    return "\n".join(lines)
