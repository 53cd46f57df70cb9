"""Shared pieces of the repeated-seed README tables: the per-seed result files, the notes, small formatters."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
NOTES = Path(__file__).resolve().parent / "notes"

__all__ = ["NOTES", "RESULTS", "diff_cell", "note", "seed_runs", "seeds_cell"]


def seed_runs(bench: str) -> list[dict[str, Any]]:
    """The per-seed results of ``bench`` (``bench/results/<bench>_seed<N>.json``), ordered by seed."""
    paths = [p for p in RESULTS.glob(f"{bench}_seed*.json") if re.fullmatch(rf"{bench}_seed\d+\.json", p.name)]
    runs = [json.loads(p.read_text()) for p in paths]
    return sorted(runs, key=lambda r: int(r.get("seed", r.get("args", {}).get("seed", 0))))


def note(bench: str) -> list[str]:
    """The prose kept in ``bench/notes/<bench>.md`` (cause and fix of each gap), with a blank line before it."""
    path = NOTES / f"{bench}.md"
    return ["", *path.read_text().strip().splitlines()] if path.exists() else []


def seeds_cell(runs: list[dict[str, Any]]) -> str:
    """The runs' seeds, comma-separated."""
    return ", ".join(str(r.get("seed", "?")) for r in runs)


def diff_cell(d: tuple[float, float]) -> str:
    """A paired difference as ``+mean ± std``."""
    return f"{d[0]:+.2f} ± {d[1]:.2f}"
