"""The markdown form of a compression report: FP32 vs compressed table and controller statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["fmt_bytes", "fmt_count", "latency_batches", "latency_conditions", "markdown_table", "render_markdown"]


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        return None
    return float(v)


def fmt_count(v: Any, unit: str = "") -> str:
    """``1234567`` -> ``1.23 M`` (k, M, G, T); ``-`` when missing."""
    x = _num(v)
    if x is None:
        return "-"
    for div, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.2f} {prefix}{unit}"
    return f"{x:.0f} {unit}".rstrip()


def fmt_bytes(v: Any) -> str:
    """Bytes as ``KiB``/``MiB``; ``-`` when missing."""
    x = _num(v)
    if x is None:
        return "-"
    if x >= 2**20:
        return f"{x / 2**20:.2f} MiB"
    if x >= 2**10:
        return f"{x / 2**10:.1f} KiB"
    return f"{x:.0f} B"


def _pct(v: Any) -> str:
    x = _num(v)
    return "-" if x is None else f"{100 * x:.2f} %"


def _ms(v: Any) -> str:
    x = _num(v)
    return "-" if x is None else f"{1e3 * x:.3f} ms"


def _ratio(fp32: Any, comp: Any, word: str) -> str:
    a, b = _num(fp32), _num(comp)
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x {word}"


def _changed_ratio(fp32: Any, comp: Any, word: str) -> str:
    """The ratio when the values differ (pruning removed channels), ``-`` when they are equal or missing."""
    a, b = _num(fp32), _num(comp)
    if a is None or b is None or a == b:
        return "-"
    return _ratio(a, b, word)


def latency_batches(report: Mapping[str, Any]) -> list[int]:
    """Batch sizes measured in either column, sorted."""
    keys: set[int] = set()
    for side in ("fp32", "compressed"):
        for k in (report.get(side) or {}).get("latency", {}) or {}:
            if str(k).isdigit():
                keys.add(int(k))
    return sorted(keys)


def _latency(side: Mapping[str, Any], batch: int) -> Any:
    return ((side.get("latency") or {}).get(str(batch)) or {}).get("median_s")


def _latency_cell(side: Mapping[str, Any], batch: int) -> str:
    """``median`` or ``median (p10-p90)`` when the spread was recorded."""
    m = (side.get("latency") or {}).get(str(batch)) or {}
    lo, hi = _num(m.get("p10_s")), _num(m.get("p90_s"))
    if lo is None or hi is None or _num(m.get("median_s")) is None:
        return _ms(m.get("median_s"))
    return f"{_ms(m.get('median_s'))} ({1e3 * lo:.3f}-{1e3 * hi:.3f})"


def latency_conditions(report: Mapping[str, Any]) -> str:
    """One sentence on how the latencies were measured (threads, runs, spread, machine load); empty if unknown."""
    cond = report.get("latency_conditions") or {}
    if not cond:
        return ""
    parts = [f"ONNX Runtime on CPU, {cond.get('threads', '?')} intra-op threads, median of "
             f"{cond.get('repeats', '?')} timed runs after {cond.get('warmup', '?')} warm-up runs per cell "
             "(p10-p90 in brackets)"]
    before, after = _num(cond.get("load_avg_before")), _num(cond.get("load_avg_after"))
    cpus = cond.get("cpus")
    if before is not None and after is not None:
        parts.append(f"1-min load average {before:.2f} before / {after:.2f} after on {cpus} CPUs")
        if cpus and max(before, after) > 0.5 * float(cpus):
            parts.append("the machine was busy: speed-ups can vary by 2x between runs, re-run on an idle machine "
                         "(or raise --latency-repeats) before relying on them")
    return "Latency: " + "; ".join(parts) + "."


def markdown_table(report: Mapping[str, Any]) -> str:
    """The FP32 vs compressed table (accuracy, params, ONNX size, MACs/FLOPs, BOPs, ORT latency)."""
    fp = report.get("fp32") or {}
    cp = report.get("compressed") or {}
    acc_delta = "-"
    if _num(fp.get("accuracy")) is not None and _num(cp.get("accuracy")) is not None:
        acc_delta = f"{100 * (float(cp['accuracy']) - float(fp['accuracy'])):+.2f} pp"
    rows = [
        (str(report.get("metric") or "Top-1 accuracy"), _pct(fp.get("accuracy")), _pct(cp.get("accuracy")), acc_delta),
        ("Parameters", fmt_count(fp.get("params")), fmt_count(cp.get("params")),
         _changed_ratio(fp.get("params"), cp.get("params"), "fewer")),
        ("Model file (ONNX)", fmt_bytes(fp.get("onnx_bytes")), fmt_bytes(cp.get("onnx_bytes")),
         _ratio(fp.get("onnx_bytes"), cp.get("onnx_bytes"), "smaller")),
        ("Model file (ONNX, gzip -9)", fmt_bytes(fp.get("onnx_gzip_bytes")), fmt_bytes(cp.get("onnx_gzip_bytes")),
         _ratio(fp.get("onnx_gzip_bytes"), cp.get("onnx_gzip_bytes"), "smaller")),
        ("MACs / sample", fmt_count(fp.get("macs")), fmt_count(cp.get("macs")),
         _changed_ratio(fp.get("macs"), cp.get("macs"), "fewer")),
        ("FLOPs / sample", fmt_count(fp.get("flops")), fmt_count(cp.get("flops")),
         _changed_ratio(fp.get("flops"), cp.get("flops"), "fewer")),
        ("BOPs / sample", fmt_count(fp.get("bops")), fmt_count(cp.get("bops")),
         _ratio(fp.get("bops"), cp.get("bops"), "fewer")),
    ]
    threads = report.get("threads")
    suffix = f", {threads} threads" if threads else ""
    for b in latency_batches(report):
        rows.append((f"ORT latency, batch {b} (median{suffix})", _latency_cell(fp, b), _latency_cell(cp, b),
                     _ratio(_latency(fp, b), _latency(cp, b), "speedup")))
    head = "| Metric | FP32 | Compressed | Ratio |\n|---|---:|---:|---:|"
    return "\n".join([head, *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)])


def _stat_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _statistics(stats: Mapping[str, Any]) -> str:
    blocks = []
    for algo, values in stats.items():
        if not isinstance(values, Mapping):
            continue
        rows = [f"| {k} | {_stat_value(v)} |" for k, v in values.items() if not isinstance(v, (list, dict))]
        blocks.append("\n".join([f"### {algo}", "", "| Statistic | Value |", "|---|---:|", *rows]))
    return "\n\n".join(blocks)


def _accuracy_aware(aat: Mapping[str, Any]) -> str:
    stats = aat.get("statistics") or {}
    lines = [
        f"Mode `{stats.get('mode', '?')}`: {stats.get('epochs', '?')} epochs, stopped because "
        f"{stats.get('stop_reason') or '?'}; best epoch {stats.get('best_epoch', '?')} with top-1 "
        f"{_pct(stats.get('best_accuracy'))} (tolerable >= {_pct(stats.get('minimal_tolerable_accuracy'))}), "
        f"compression rate {_stat_value(stats.get('best_compression_rate'))}.",
        "",
        "| Epoch | Phase | Top-1 | Budget | Compression rate | Stage |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for h in aat.get("history") or []:
        if not isinstance(h, Mapping):
            continue
        rate = _num(h.get("compression_rate"))
        budget = _num(h.get("accuracy_budget"))
        lines.append(
            f"| {h.get('epoch')} | {h.get('phase', '')} | {_pct(h.get('accuracy'))} | "
            f"{'-' if budget is None else f'{100 * budget:+.2f} pp'} | {'-' if rate is None else f'{rate:.3f}'} | "
            f"{h.get('stage', '')} |"
        )
    if aat.get("plot"):
        lines += ["", "![accuracy and compression rate per epoch](accuracy_aware/accuracy_aware_training.png)"]
    return "\n".join(lines)


def render_markdown(report: Mapping[str, Any]) -> str:
    """The whole ``report.md``: title, run facts, the comparison table and the controller statistics."""
    title = f"# netsculpt report: {report.get('model', '?')} on {report.get('dataset', '?')}"
    facts = []
    for key, label in (("algorithms", "Compression"), ("config_path", "Config"), ("fp32_epochs", "FP32 epochs"),
                       ("finetune_epochs", "Fine-tuning epochs"), ("train_samples", "Training samples"),
                       ("test_samples", "Test samples"), ("data_source", "Data read from"),
                       ("seconds", "Total time (s)")):
        if report.get(key) is not None:
            value = report[key]
            facts.append(f"- {label}: {value:.1f}" if isinstance(value, float) else f"- {label}: {value}")
    check = report.get("onnx_check") or {}
    for side, res in check.items():
        if isinstance(res, Mapping):
            facts.append(f"- ORT vs PyTorch ({side}): max |diff| {float(res.get('max_abs_diff', float('nan'))):.3g}, "
                         f"top-1 agreement {100 * float(res.get('top1_agreement', float('nan'))):.2f} %")
    parts = [title]
    status = report.get("status")
    if status not in (None, "ok"):
        parts.append(f"> **WARNING: {str(status).upper().replace('_', ' ')}**: {report.get('status_detail', '')}. "
                     "The compressed numbers below are not those of a fully compressed model.")
    parts += ["\n".join(facts), "## FP32 vs compressed", markdown_table(report)]
    if latency_conditions(report):
        parts.append(latency_conditions(report))
    stats = report.get("statistics") or {}
    if stats:
        parts += ["## Compression statistics", _statistics(stats)]
    if any("sparsity" in str(algo) for algo in stats):
        parts.append(
            "Unstructured sparsity: the zeros shrink the gzip-compressed file (row above), not the ONNX file or "
            "its latency - ONNX Runtime's dense kernels multiply the zeros too. Filter pruning or quantization "
            "is what makes inference faster."
        )
    note = sub8bit_note((report.get("compressed") or {}).get("weight_bits"), (report.get("compressed") or {}).get(
        "activation_bits"))
    if note:
        parts.append(note)
    files = report.get("files") or {}
    if files.get("layers_png"):
        parts += ["## Per layer", "![per-layer sparsity / remaining channels](layers.png)"]
    aat = report.get("accuracy_aware")
    if isinstance(aat, Mapping):
        parts += ["## Accuracy-aware training", _accuracy_aware(aat)]
    return "\n\n".join(p for p in parts if p) + "\n"


def sub8bit_note(weight_bits: Any, act_bits: Any) -> str:
    """How layers below 8 bits are stored in the ONNX file (empty when every layer is 8-bit or wider)."""
    bits = [int(b) for d in (weight_bits, act_bits) if isinstance(d, Mapping) for b in d.values()]
    low = sorted({b for b in bits if b < 8})
    if not low:
        return ""
    counts = {b: sum(1 for d in (weight_bits, act_bits) if isinstance(d, Mapping) for v in d.values() if v == b)
              for b in low}
    return (
        f"Sub-8-bit layers ({', '.join(f'{n} at {b} bits' for b, n in counts.items())}) are exported as int8/uint8 "
        "QuantizeLinear/DequantizeLinear containers with a clip to their own grid: ONNX Runtime's CPU kernels have "
        "no int4 convolution, so they run as 8-bit integer kernels (same speed as INT8; the stored values use only "
        "the low-bit range)."
    )
