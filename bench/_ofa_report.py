"""The report side of bench/ofa_fmnist.py: per-arm summary, the targets, the printed table and the switch plot.

``summarise`` reduces the per-seed runs to mean ± std per arm (``ms``): top-1 of the smallest, middle and largest
subnet, training seconds, the full model's top-1 at the DεpS switch and its largest drop in the first shrinking
epoch, and the cost of a shrinking epoch vs a full-model epoch. ``targets`` checks issue 15's targets (a)-(d) on
that summary, ``table`` renders the markdown the script prints, and ``plot`` draws the full-model curve around
the switch from a result JSON (through ``bench/ofa_fmnist.py --plot-only`` in ``.venv-bench`` when the main venv
has no matplotlib). Nothing here trains or measures; the arm names come from bench/_ofa_arms.py.
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from _ofa_arms import ARMS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).with_name("ofa_fmnist.py")
log = logging.getLogger("bench.ofa_fmnist")


# ---- report -----------------------------------------------------------------------------------------------------
def ms(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for arm in ARMS:
        rs = [r for r in runs if r["arm"] == arm]
        if not rs:
            continue
        s: dict[str, Any] = {}
        for k in ("smallest", "middle", "largest"):
            s[k] = ms([r["top1"][k] for r in rs])
        s["train_s"] = ms([r["train_s"] for r in rs])
        if rs[0]["curve"]:
            sw = rs[0]["switch_epoch"]
            dips, befores = [], []
            for r in rs:
                before = [p["top1"] for p in r["curve"] if p["epoch"] <= sw + 1e-9]
                after = [p["top1"] for p in r["curve"] if sw < p["epoch"] <= sw + 1 + 1e-9]
                if before and after:
                    befores.append(before[-1])
                    dips.append(before[-1] - min(after))
            s["acc_at_switch"] = ms(befores) if befores else None
            s["max_drop_first_shrink_epoch"] = ms(dips) if dips else None
        full = [e for r in rs for e, ph in zip(r["epoch_s"], r["epoch_phase"], strict=True) if ph == "warmup"]
        shrink = [e for r in rs for e, ph in zip(r["epoch_s"], r["epoch_phase"], strict=True) if ph == "shrink"]
        if full and shrink:
            s["shrink_vs_full_epoch"] = statistics.fmean(shrink) / statistics.fmean(full)
        summary[arm] = s
    return summary


def targets(summary: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = {}
    d, n, b, o = (summary.get(a) for a in ("deps", "deps_no_eps", "bignas", "ofa"))
    if d and b:
        gap = d["smallest"][0] - b["smallest"][0]
        t["a_smallest_deps_ge_bignas_plus_1"] = {"gap_pts": gap, "met": gap >= 1.0}
    if d and o:
        t["b_deps_ge_ofa_smallest_middle_at_le_time"] = {
            "smallest_gap": d["smallest"][0] - o["smallest"][0],
            "middle_gap": d["middle"][0] - o["middle"][0],
            "time_ratio_deps_over_ofa": d["train_s"][0] / o["train_s"][0],
            "met": d["smallest"][0] >= o["smallest"][0]
            and d["middle"][0] >= o["middle"][0]
            and d["train_s"][0] <= o["train_s"][0],
        }
    if d and n and d.get("max_drop_first_shrink_epoch") and n.get("max_drop_first_shrink_epoch"):
        t["c_no_eps_dip"] = {
            "drop_deps": d["max_drop_first_shrink_epoch"][0],
            "drop_no_eps": n["max_drop_first_shrink_epoch"][0],
            "largest_gap_deps_minus_no_eps": d["largest"][0] - n["largest"][0],
            "met": n["max_drop_first_shrink_epoch"][0] > d["max_drop_first_shrink_epoch"][0],
        }
    if d and "shrink_vs_full_epoch" in d:
        t["d_shrink_epoch_cost_x"] = {"ratio": d["shrink_vs_full_epoch"], "paper": 3.0}
    return t


def _pm(v: Any, nd: int = 2) -> str:
    return "–" if not v else f"{v[0]:.{nd}f} ± {v[1]:.{nd}f}"


def table(result: dict[str, Any]) -> str:
    a = result["args"]
    lines = [
        f"Supernet E1 ({'quick' if a['quick'] else 'smoke' if a['smoke'] else 'full'} run: "
        f"{a['train_images']} train / {a['test_images']} test images at {a['image_size']}x{a['image_size']}, "
        f"{a['epochs']} epochs, batch {a['batch_size']}, seeds {a['seeds']}, {a['threads']} threads)",
        "",
        "| Arm | smallest top-1 | middle top-1 | largest top-1 | train s | full-model drop after switch |",
        "|---|---|---|---|---|---|",
    ]
    for arm, s in result["summary"].items():
        lines.append(
            f"| {arm} | {_pm(s['smallest'])} | {_pm(s['middle'])} | {_pm(s['largest'])} | "
            f"{_pm(s['train_s'], 0)} | {_pm(s.get('max_drop_first_shrink_epoch'))} |"
        )
    st = result.get("step_time")
    if st:
        lines += [
            "",
            f"Step time (batch {st['batch']}, median of {st['reps']}): plain FP32 {st['plain_s'] * 1e3:.0f} ms, "
            f"supernet full-only {st['supernet_full_only_s'] * 1e3:.0f} ms ({st['full_only_ratio']:.2f}x), "
            f"sandwich of 4 {st['sandwich4_s'] * 1e3:.0f} ms ({st['sandwich_ratio']:.2f}x; target <= 3.5x)",
        ]
    ex = result.get("export")
    if ex:
        s, mid, fl = ex["subnet"], ex["middle"], ex["full"]
        lines += [
            "",
            f"Extract + ONNX ({ex['chosen']}): subnet {s['macs'] / 1e6:.2f} MMACs, {s['top1']:.2f} %, "
            f"ORT {s['ort_median_ms']:.3f} ms vs full {fl['macs'] / 1e6:.2f} MMACs, {fl['top1']:.2f} %, "
            f"{fl['ort_median_ms']:.3f} ms ({ex['latency_speedup']:.2f}x faster; batch 1, "
            f"{a['threads']} threads); middle config {mid['macs'] / 1e6:.2f} MMACs, {mid['top1']:.2f} %, "
            f"{mid['ort_median_ms']:.3f} ms ({ex['middle_latency_speedup']:.2f}x); extract rel. err "
            f"{max(r['extract_rel_err'] for r in (s, mid, fl)):.1e}",
        ]
    for k, v in result["targets"].items():
        lines.append(
            f"- {k}: " + ", ".join(f"{kk}={vv:.2f}" if isinstance(vv, float) else f"{kk}={vv}" for kk, vv in v.items())
        )
    return "\n".join(lines)


def plot(json_path: Path) -> Path | None:
    """The full model's top-1 around the switch, per DεpS arm and seed, the switch marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        bench_py = ROOT / ".venv-bench" / "bin" / "python"
        if bench_py.exists() and Path(sys.executable).resolve() != bench_py.resolve():
            subprocess.run([str(bench_py), str(SCRIPT), "--plot-only", str(json_path)], check=False)
            png = json_path.with_suffix(".png")
            return png if png.exists() else None
        log.warning("matplotlib is not installed; no plot written")
        return None
    result = json.loads(json_path.read_text())
    fig, ax = plt.subplots(figsize=(7, 4))
    colours = {"deps": "tab:blue", "deps_no_eps": "tab:red"}
    switch = None
    for r in result["runs"]:
        if not r["curve"]:
            continue
        switch = r["switch_epoch"]
        ax.plot(
            [p["epoch"] for p in r["curve"]],
            [p["top1"] for p in r["curve"]],
            "o-",
            ms=3,
            color=colours.get(r["arm"], "k"),
            alpha=0.5 + 0.5 * (r["seed"] == result["args"]["seeds"][0]),
            label=f"{r['arm']} seed {r['seed']}",
        )
    if switch is not None:
        ax.axvline(switch, color="grey", ls="--", label="switch (subnets join)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("full model top-1 (%), BN recalibrated")
    a = result["args"]
    ax.set_title(
        f"E1 {'quick' if a['quick'] else 'smoke' if a['smoke'] else 'full'}: full model around the DεpS switch"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = json_path.with_suffix(".png")
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png
