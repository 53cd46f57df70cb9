"""The accuracy / compression-rate plot of an accuracy-aware run (matplotlib, Agg canvas, no pyplot state)."""

from __future__ import annotations

import logging
from pathlib import Path

from netsculpt.accuracy_aware.runner import EpochRecord

__all__ = ["plot_history"]

logger = logging.getLogger(__name__)


def plot_history(history: list[EpochRecord], minimal_tolerable_accuracy: float, path: Path, title: str) -> Path | None:
    """Write metric (left axis) and compression rate (right axis) per epoch to ``path``; None if nothing to plot."""
    if not history:
        return None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        logger.warning("accuracy-aware: matplotlib is not installed; no plot written")
        return None
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    epochs = [r.epoch for r in history]
    ax.plot(epochs, [r.accuracy for r in history], "o-", color="tab:blue", label="metric")
    ax.axhline(minimal_tolerable_accuracy, color="tab:blue", linestyle=":", label="minimal tolerable")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation metric", color="tab:blue")
    rates = [r.compression_rate for r in history]
    if any(v is not None for v in rates):
        ax2 = ax.twinx()
        ax2.step(epochs, [float("nan") if v is None else v for v in rates], where="post", color="tab:red")
        ax2.set_ylabel("compression rate", color="tab:red")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    fig.savefig(str(path))
    return path
