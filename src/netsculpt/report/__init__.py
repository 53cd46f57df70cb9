"""Compression reports: report.json, report.md (FP32 vs compressed table) and report.png."""

from __future__ import annotations

from netsculpt.report.markdown import markdown_table, render_markdown
from netsculpt.report.plot import plot_report
from netsculpt.report.writer import ReportPaths, to_jsonable, write_report

__all__ = ["ReportPaths", "markdown_table", "plot_report", "render_markdown", "to_jsonable", "write_report"]
