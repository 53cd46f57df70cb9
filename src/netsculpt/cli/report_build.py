"""The report of ``netsculpt compress``: the dict written as report.json / report.md / report.png, and the summary
printed at the end of a run. Split out of :mod:`netsculpt.cli.pipeline`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

__all__ = ["RunFacts", "build_report", "finish_report", "load_average"]


def load_average() -> float | None:
    """The 1-minute load average, or ``None`` where the OS has none."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


@dataclass
class RunFacts:
    """What the pipeline measured, handed to :func:`build_report`."""

    fp32_model: nn.Module
    stripped: nn.Module
    ctrl: Any
    config: dict[str, Any]
    fp32_eval: Any
    init_eval: Any
    comp_eval: Any
    macs: Any
    comp_macs: Any
    fp32_onnx: Path
    comp_onnx: Path
    fp32_check: Any
    comp_check: Any
    latency: dict[str, dict[str, Any]]
    latency_conditions: dict[str, Any]
    history: list[dict[str, Any]]
    aat: Any
    status: str
    status_detail: str
    source: str
    n_train: int
    n_test: int
    agreement: dict[str, float] | None = None


def build_report(opts: Any, facts: RunFacts, task: Any, out: Path, algorithms: str) -> dict[str, Any]:
    """The report dict (``fp32`` and ``compressed`` sections; ``accuracy`` holds the task's metric)."""
    from netsculpt.metrics import bops, count_params, file_size_bytes, gzip_size_bytes, quantization_bits

    w_bits, a_bits = quantization_bits(facts.ctrl)
    aat = facts.aat
    return {
        "status": facts.status,
        "status_detail": facts.status_detail,
        "task": task.name,
        "metric": task.metric_name,
        "model": opts.model,
        "dataset": opts.dataset if task.name == "classification" else f"{opts.dataset} canvases ({task.name})",
        "data_source": facts.source,
        "algorithms": algorithms,
        "config_path": opts.config_path,
        "config": facts.config,
        "fp32_epochs": 0 if opts.checkpoint is not None else opts.epochs,
        "baseline_checkpoint": str(opts.checkpoint) if opts.checkpoint is not None else str(out / "baseline.pt"),
        "finetune_epochs": opts.finetune_epochs if aat is None else aat.statistics.get("epochs"),
        "train_samples": facts.n_train,
        "test_samples": facts.n_test,
        "threads": opts.threads,
        "latency_conditions": facts.latency_conditions,
        "fp32": {
            "accuracy": facts.fp32_eval.accuracy, "loss": facts.fp32_eval.loss,
            "params": count_params(facts.fp32_model), "onnx_bytes": file_size_bytes(facts.fp32_onnx),
            "onnx_gzip_bytes": gzip_size_bytes(facts.fp32_onnx), "macs": facts.macs.total,
            "flops": facts.macs.flops, "bops": bops(facts.macs.per_module, 32, 32), "latency": facts.latency["fp32"],
        },
        "compressed": {
            "accuracy": facts.comp_eval.accuracy, "loss": facts.comp_eval.loss,
            "accuracy_after_init": facts.init_eval.accuracy, "params": count_params(facts.stripped),
            "onnx_bytes": file_size_bytes(facts.comp_onnx), "onnx_gzip_bytes": gzip_size_bytes(facts.comp_onnx),
            "macs": facts.comp_macs.total, "flops": facts.comp_macs.flops,
            "bops": bops(facts.comp_macs.per_module, w_bits, a_bits), "latency": facts.latency["compressed"],
            "weight_bits": w_bits, "activation_bits": a_bits,
        },
        "statistics": facts.ctrl.statistics().as_dict(),
        "onnx_check": {"fp32": asdict(facts.fp32_check), "compressed": asdict(facts.comp_check)},
        "onnx_task_agreement": facts.agreement,
        "finetune_history": facts.history,
        "macs_per_module": facts.macs.per_module,
        "compressed_macs_per_module": facts.comp_macs.per_module,
        "accuracy_aware": None if aat is None else {
            "statistics": aat.statistics, "history": aat.history, "plot": None if aat.plot is None else str(aat.plot),
        },
        "files": {"fp32_onnx": str(facts.fp32_onnx), "compressed_onnx": str(facts.comp_onnx),
                  "checkpoint": str(out / "compressed.pt")},
    }


def finish_report(report: dict[str, Any], opts: Any, out: Path, phase: Any, start: float,
                  echo: Callable[[str], None]) -> dict[str, Any]:
    """Add timing, write the report files, print the summary table and the paths; return the report."""
    from netsculpt.report import markdown_table, write_report
    from netsculpt.report.markdown import latency_conditions as latency_conditions_line

    report["timing"] = phase.seconds
    report["seconds"] = time.perf_counter() - start
    with phase("report"):
        paths = write_report(out, report)
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in phase.seconds.items())
    echo(f"total {time.perf_counter() - start:.1f} s ({timing})")
    echo("")
    echo(markdown_table(report))
    if latency_conditions_line(report):
        echo(latency_conditions_line(report))
    echo(f"\nreport: {paths.markdown}, {paths.png}, {paths.json}")
    baseline = f", FP32 baseline {out / 'baseline.pt'}" if opts.checkpoint is None else ""
    files = report["files"]
    echo(f"models: ONNX {files['fp32_onnx']} and {files['compressed_onnx']}, checkpoint {out / 'compressed.pt'}"
         f"{baseline}")
    if report["status"] != "ok":
        echo(f"WARNING: {report['status'].upper().replace('_', ' ')}: {report['status_detail']}")
    return report
