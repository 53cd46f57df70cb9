"""``report.png``: a 2x2 panel of FP32 vs compressed bar charts (accuracy, size, BOPs/FLOPs, ORT latency)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from netsculpt.report.markdown import latency_batches

__all__ = ["plot_report"]

FP32_COLOR = "#8c8c8c"
COMP_COLOR = "#1f77b4"


def _val(side: Mapping[str, Any], key: str, scale: float = 1.0) -> float:
    v = side.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        return float("nan")
    return float(v) * scale


def _label(v: float, fmt: str) -> str:
    return "n/a" if not math.isfinite(v) else fmt.format(v)


def _grouped(ax: Any, groups: Sequence[str], fp32: Sequence[float], comp: Sequence[float], fmt: str,
             *, log: bool = False) -> None:
    """Bars of FP32 and compressed side by side for each group, values written on the bars."""
    width = 0.38
    xs = list(range(len(groups)))
    for offset, values, color, name in ((-width / 2, fp32, FP32_COLOR, "FP32"), (width / 2, comp, COMP_COLOR,
                                                                               "compressed")):
        heights = [v if math.isfinite(v) else 0.0 for v in values]
        bars = ax.bar([x + offset for x in xs], heights, width, color=color, label=name)
        for bar, v in zip(bars, values):
            ax.annotate(_label(v, fmt), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(xs)
    ax.set_xticklabels(groups, fontsize=10)
    if log and any(math.isfinite(v) and v > 0 for v in [*fp32, *comp]):
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * 4)
    else:
        finite = [v for v in [*fp32, *comp] if math.isfinite(v)]
        top = max(finite) if finite else 1.0
        ax.set_ylim(0, top * 1.2 if top > 0 else 1.0)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _pair(ax: Any, fp32: float, comp: float, fmt: str, top: float | None = None) -> None:
    """Two bars (FP32, compressed) for a single metric, values written on the bars."""
    bars = ax.bar([0, 1], [v if math.isfinite(v) else 0.0 for v in (fp32, comp)], 0.55,
                  color=[FP32_COLOR, COMP_COLOR])
    for bar, v in zip(bars, (fp32, comp)):
        ax.annotate(_label(v, fmt), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=10)
    ax.set_xticks([0, 1])
    ax.set_xticklabels(["FP32", "compressed"], fontsize=10)
    finite = [v for v in (fp32, comp) if math.isfinite(v)]
    ax.set_ylim(0, top if top is not None else (max(finite) * 1.2 if finite and max(finite) > 0 else 1.0))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _ratio_text(a: float, b: float, word: str) -> str:
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return ""
    return f" ({a / b:.2f}x {word})"


def plot_report(report: Mapping[str, Any], path: Path) -> Path:
    """Draw the 2x2 comparison figure to ``path`` (PNG, Agg backend, no display needed).

    Args:
        report: the report dict (``fp32`` and ``compressed`` sections, as written to report.json).
        path: the PNG file to write.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fp = report.get("fp32") or {}
    cp = report.get("compressed") or {}
    fig = Figure(figsize=(11, 8.5), dpi=110)
    axes = fig.subplots(2, 2)
    algos = report.get("algorithms", "compressed")
    title = f"{report.get('model', '?')} on {report.get('dataset', '?')}: FP32 vs {algos}"
    fig.suptitle(title, fontsize=14, fontweight="bold")

    ax = axes[0][0]
    a_fp, a_cp = _val(fp, "accuracy", 100.0), _val(cp, "accuracy", 100.0)
    _pair(ax, a_fp, a_cp, "{:.2f} %", top=112)
    delta = f" ({a_cp - a_fp:+.2f} pp)" if math.isfinite(a_fp) and math.isfinite(a_cp) else ""
    ax.set_title(f"{report.get('metric') or 'Top-1 accuracy'}{delta}", fontsize=12)
    ax.set_ylabel("%")

    ax = axes[0][1]
    s_fp, s_cp = _val(fp, "onnx_bytes", 1 / 2**20), _val(cp, "onnx_bytes", 1 / 2**20)
    _pair(ax, s_fp, s_cp, "{:.3f} MiB")
    g_fp, g_cp = _val(fp, "onnx_gzip_bytes", 1 / 2**20), _val(cp, "onnx_gzip_bytes", 1 / 2**20)
    gz = _ratio_text(g_fp, g_cp, "smaller")
    # Sparse weights (zeros) do not shrink the raw file, only the compressed one: show both ratios.
    ax.set_title("ONNX model file size" + _ratio_text(s_fp, s_cp, "smaller")
                 + (f"\ngzip -9: {g_fp:.3f} -> {g_cp:.3f} MiB{gz}" if gz else ""), fontsize=12)
    ax.set_ylabel("MiB")

    ax = axes[1][0]
    groups, f_vals, c_vals = ["GFLOPs / sample", "GBOPs / sample"], [], []
    for key in ("flops", "bops"):
        f_vals.append(_val(fp, key, 1e-9))
        c_vals.append(_val(cp, key, 1e-9))
    _grouped(ax, groups, f_vals, c_vals, "{:.3g}", log=True)
    ax.legend(loc="upper left", fontsize=9)
    ax.set_title("Compute" + _ratio_text(f_vals[1], c_vals[1], "fewer BOPs"), fontsize=12)
    ax.set_ylabel("billions (log scale)")

    ax = axes[1][1]
    batches = latency_batches(report)
    lat_fp = [_val((fp.get("latency") or {}).get(str(b)) or {}, "median_s", 1e3) for b in batches]
    lat_cp = [_val((cp.get("latency") or {}).get(str(b)) or {}, "median_s", 1e3) for b in batches]
    if batches:
        _grouped(ax, [f"batch {b}" for b in batches], lat_fp, lat_cp, "{:.2f} ms", log=True)
        ax.legend(loc="upper left", fontsize=9)
        speedups = ", ".join(f"b{b}: {f / c:.2f}x" for b, f, c in zip(batches, lat_fp, lat_cp)
                             if math.isfinite(f) and math.isfinite(c) and c > 0)
        threads = report.get("threads")
        tag = f"{threads} threads" if threads else "ORT"
        ax.set_title(f"ORT latency, median, {tag}" + (f"\nspeedup {speedups}" if speedups else ""), fontsize=12)
        ax.set_ylabel("ms (log scale)")
    else:
        ax.text(0.5, 0.5, "latency not measured", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("ORT latency", fontsize=12)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
