"""Plots of an EKG search: FLOPs ratio vs reward along the trajectory, and the keep ratio of every gate."""

from __future__ import annotations

import logging
from pathlib import Path

from netsculpt.search.ekg.result import EKGResult

__all__ = ["plot_search"]

logger = logging.getLogger(__name__)


def plot_search(result: EKGResult, path: str | Path) -> Path | None:
    """Write a two-panel PNG (reward -J vs FLOPs ratio per step; final keep ratio per gate); ``None`` without
    matplotlib (``pip install matplotlib``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("ekg: matplotlib is not installed; no search plot written")
        return None
    hist = result.history
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot([h.flops_ratio for h in hist], [-h.score for h in hist], "o-", ms=3)
    a.set_xlabel("kept FLOPs / unpruned")
    a.set_ylabel("reward -(CE + ensemble CE) on D_val")
    a.invert_xaxis()
    a.set_title("EKG search trajectory")
    names = list(result.policy.keep)
    b.bar(range(len(names)), [result.policy.keep[n] for n in names])
    b.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    b.set_ylabel("keep ratio")
    b.set_ylim(0, 1.05)
    b.set_title("per-gate keep ratio")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
