"""SeerNet plots (matplotlib, optional): predicted vs measured, accuracy-vs-cost front, the chosen policies."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netsculpt.search.evaluate import EvalResult
from netsculpt.search.seernet.labels import dataset

if TYPE_CHECKING:
    from netsculpt.search.seernet.api import SeerNetRun

__all__ = ["save_plots"]

logger = logging.getLogger(__name__)


def save_plots(out: Path, run: SeerNetRun, heldout: Sequence[EvalResult], reference: float,
               metric: str = "bops") -> list[Path]:
    """Write ``predicted_vs_measured.png`` (held-out policies), ``front.png`` (labels and chosen policies, metric vs
    cost fraction) and ``policy.png`` (per-layer pruning ratio and bits of each chosen policy).

    Returns:
        The files written (none, with a warning, when matplotlib is missing).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("seernet: matplotlib is not installed; no plots (pip install matplotlib)")
        return []
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if heldout:
        _, x, y = dataset(run.encoding, heldout)
        pred = run.predictor.predict(x)
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.scatter(y, pred, s=14)
        lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set(xlabel="measured", ylabel="predicted", title=f"held-out policies (n={len(y)})")
        written.append(_save(fig, out / "predicted_vs_measured.png", plt))
    fig, ax = plt.subplots(figsize=(6, 4.5))
    labelled = [*run.labels, *heldout]
    ax.scatter([getattr(r.cost, metric) / reference for r in labelled], [r.metric for r in labelled], s=10,
               alpha=0.6, label="labelled policies")
    for s in run.searches:
        ax.scatter([getattr(s.cost, metric) / reference], [s.predicted], marker="*", s=160,
                   label=f"SeerNet @ {s.budget / reference:.0%} (predicted)")
        ax.axvline(s.budget / reference, color="grey", lw=0.6, ls=":")
    ax.set(xlabel=f"{metric} / 8-8-bit model", ylabel="metric", title="accuracy vs cost")
    ax.legend(fontsize=7)
    written.append(_save(fig, out / "front.png", plt))
    written.append(_policy_plot(out / "policy.png", run, plt, reference, metric))
    return written


def _policy_plot(path: Path, run: SeerNetRun, plt: Any, reference: float, metric: str) -> Path:
    space = run.encoding.space
    weights = [q for q in space.quantizers if q.group == "weights"]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(6.0, 0.35 * len(weights)), 6), sharex=True)
    pos = np.arange(len(weights))
    width = 0.8 / max(len(run.searches), 1)
    for k, s in enumerate(run.searches):
        bits = [s.policy.bits.get(q.name, q.base_bits) for q in weights]
        prune = [1.0 - s.policy.keep.get(q.name.rsplit(".", 1)[0], 1.0) for q in weights]
        tag = f"{s.budget / reference:.0%} of 8/8-bit {metric}"
        a1.bar(pos + k * width, prune, width, label=f"budget {tag}")
        a2.bar(pos + k * width, bits, width, label=f"budget {tag}")
    a1.set(ylabel="pruning ratio", title="chosen policies per layer")
    a2.set(ylabel="weight bits")
    a2.set_xticks(pos, [q.name.removesuffix(".weight") for q in weights], rotation=90, fontsize=7)
    a1.legend(fontsize=7)
    return _save(fig, path, plt)


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
