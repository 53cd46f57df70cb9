"""report.json / report.md / report.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from netsculpt.report import markdown_table, write_report


def _report() -> dict[str, Any]:
    lat = {"1": {"median_s": 0.002, "p90_s": 0.003}, "64": {"median_s": 0.08, "p90_s": 0.09}}
    lat_q = {"1": {"median_s": 0.001, "p90_s": 0.0015}, "64": {"median_s": 0.02, "p90_s": 0.03}}
    return {
        "model": "resnet8",
        "dataset": "fashion_mnist",
        "algorithms": "quantization",
        "threads": 2,
        "fp32": {"accuracy": 0.9, "params": 78000, "onnx_bytes": 320_000, "macs": 12_000_000,
                 "flops": 24_000_000, "bops": 12_000_000 * 1024, "latency": lat},
        "compressed": {"accuracy": 0.895, "params": 78000, "onnx_bytes": 100_000, "macs": 12_000_000,
                       "flops": 24_000_000, "bops": 12_000_000 * 64, "latency": lat_q, "extra": float("nan"),
                       "path": Path("/tmp/x"), "shape": (1, 2)},
        "statistics": {"quantization": {"num_weights_quantizers": 9, "ratio": 0.25, "hist": [1, 2]}},
    }


def test_markdown_table_rows_and_ratios() -> None:
    table = markdown_table(_report())
    assert table.startswith("| Metric | FP32 | Compressed | Ratio |")
    assert "| Top-1 accuracy | 90.00 % | 89.50 % | -0.50 pp |" in table
    assert "16.00x fewer" in table  # BOPs 32x32 vs 8x8
    assert "3.20x smaller" in table
    assert "ORT latency, batch 1 (median, 2 threads) | 2.000 ms | 1.000 ms | 2.00x speedup" in table
    assert "batch 64" in table


def test_missing_values_render_as_dash() -> None:
    table = markdown_table({"fp32": {"accuracy": 0.5}, "compressed": {}})
    assert "| Top-1 accuracy | 50.00 % | - | - |" in table


def test_write_report_files(tmp_path: Path) -> None:
    paths = write_report(tmp_path / "out", _report())
    data = json.loads(paths.json.read_text())
    assert data["compressed"]["extra"] is None  # NaN -> null
    assert data["compressed"]["path"] == "/tmp/x" and data["compressed"]["shape"] == [1, 2]
    md = paths.markdown.read_text()
    assert "## FP32 vs compressed" in md and "num_weights_quantizers | 9" in md and "hist" not in md
    assert paths.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths.png.stat().st_size > 10_000


def test_gzip_row_and_sparsity_note(tmp_path: Path) -> None:
    report = _report()
    report["fp32"]["onnx_gzip_bytes"] = 300_000
    report["compressed"]["onnx_gzip_bytes"] = 150_000
    assert "| Model file (ONNX, gzip -9) | 293.0 KiB | 146.5 KiB | 2.00x smaller |" in markdown_table(report)
    plain = write_report(tmp_path / "q", report).markdown.read_text()
    assert "Unstructured sparsity" not in plain
    report["statistics"] = {"magnitude_sparsity": {"sparsity_level": 0.5}}
    sparse = write_report(tmp_path / "s", report).markdown.read_text()
    assert "does not" not in plain and "ONNX Runtime's dense kernels multiply the zeros" in sparse


def test_sub8bit_layers_say_how_they_are_stored() -> None:
    from netsculpt.report.markdown import render_markdown, sub8bit_note

    assert sub8bit_note({"conv1": 8}, {"conv1": 8}) == ""
    note = sub8bit_note({"conv1": 4, "fc": 8}, {"conv1": 8, "fc": 4})
    assert "2 at 4 bits" in note and "int8/uint8" in note and "no int4" in note
    report = {"model": "m", "dataset": "d", "compressed": {"weight_bits": {"a": 2}, "activation_bits": {}}}
    assert "1 at 2 bits" in render_markdown(report)


def test_latency_cells_show_spread_and_the_report_states_conditions() -> None:
    from netsculpt.report.markdown import latency_conditions, render_markdown

    report = _report()
    report["fp32"]["latency"]["1"].update({"p10_s": 0.0015})
    report["compressed"]["latency"]["1"].update({"p10_s": 0.0009})
    report["latency_conditions"] = {"threads": 2, "repeats": 20, "warmup": 3, "cpus": 2,
                                    "load_avg_before": 1.5, "load_avg_after": 1.9}
    table = markdown_table(report)
    assert "| 2.000 ms (1.500-3.000) | 1.000 ms (0.900-1.500) | 2.00x speedup |" in table
    line = latency_conditions(report)
    assert "2 intra-op threads" in line and "median of 20 timed runs" in line and "p10-p90" in line
    assert "1.50 before / 1.90 after on 2 CPUs" in line and "busy" in line
    assert line in render_markdown(report)
    report["latency_conditions"].update({"load_avg_before": 0.1, "load_avg_after": 0.2})
    assert "busy" not in latency_conditions(report)
    assert latency_conditions(_report()) == ""


def test_params_and_macs_ratios_show_when_values_changed() -> None:
    report = _report()
    table = markdown_table(report)
    assert "| Parameters | 78.00 k | 78.00 k | - |" in table
    report["compressed"].update({"params": 39000, "macs": 6_000_000, "flops": 12_000_000})
    table = markdown_table(report)
    assert "| 2.00x fewer |" in table.split("| Parameters |")[1].splitlines()[0]
    assert "2.00x fewer" in table.split("| MACs / sample |")[1].splitlines()[0]
    assert "2.00x fewer" in table.split("| FLOPs / sample |")[1].splitlines()[0]
