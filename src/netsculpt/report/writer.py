"""``write_report``: report.json, report.md and report.png in one directory."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netsculpt.report.layers import plot_layers
from netsculpt.report.markdown import render_markdown
from netsculpt.report.plot import plot_report

__all__ = ["ReportPaths", "to_jsonable", "write_report"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportPaths:
    """Files written by :func:`write_report`."""

    json: Path
    markdown: Path
    png: Path
    layers_png: Path | None = None


def to_jsonable(value: Any) -> Any:
    """Plain JSON data: tuples become lists, paths and unknown objects strings, NaN/inf ``None``."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)
    if callable(item):  # numpy / torch scalars
        try:
            return to_jsonable(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return to_jsonable(as_dict())
    return str(value)


def write_report(out_dir: Path, report: Mapping[str, Any], *, plot: bool = True) -> ReportPaths:
    """Write ``report.json``, ``report.md``, ``report.png`` (and ``layers.png`` when per-layer data exist).

    The report dict has ``fp32`` and ``compressed`` sections, each with ``accuracy`` (0..1), ``params``,
    ``onnx_bytes``, ``macs``, ``flops``, ``bops`` and ``latency`` (``{"<batch>": {"median_s", "p90_s"}}``),
    plus optional ``model``, ``dataset``, ``algorithms``, ``threads``, ``statistics`` (the controller's
    ``statistics().as_dict()``), ``onnx_check`` and run facts. Missing values show as ``-``.

    Args:
        out_dir: directory (created if needed).
        report: the report data.
        plot: draw report.png (needs matplotlib).

    Returns:
        The paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = to_jsonable(report)
    paths = ReportPaths(out / "report.json", out / "report.md", out / "report.png")
    layers_png = plot_layers(data, out / "layers.png") if plot else None
    if layers_png is not None:
        data["files"] = {**(data.get("files") or {}), "layers_png": str(layers_png)}
        paths = ReportPaths(paths.json, paths.markdown, paths.png, layers_png)
    paths.json.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    paths.markdown.write_text(render_markdown(data))
    if plot:
        plot_report(data, paths.png)
    logger.info("report written to %s", out)
    return paths
