"""What a subnet search returns: every evaluated point, the Pareto front, NNCF's chosen subnet; JSON and a plot."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from netsculpt.nas.config import SubnetConfig
from netsculpt.nas.search.nsga2 import non_dominated_sort

__all__ = ["SearchPoint", "SearchResult", "choose_best", "pareto_front"]

logger = logging.getLogger(__name__)


class SearchPoint(NamedTuple):
    """One evaluated subnet: its full config, BN-recalibrated accuracy and cost (in the search's cost metric)."""

    config: SubnetConfig
    accuracy: float
    cost: float


def pareto_front(points: Sequence[SearchPoint]) -> list[SearchPoint]:
    """The non-dominated points (maximum accuracy, minimum cost), by increasing cost; equal points once."""
    if not points:
        return []
    F = np.asarray([[p.cost, -p.accuracy] for p in points], dtype=np.float64)
    first = non_dominated_sort(F)[0]
    seen: set[tuple[float, float]] = set()
    out = []
    for i in sorted(first.tolist(), key=lambda i: (points[i].cost, -points[i].accuracy, i)):
        key = (points[i].cost, points[i].accuracy)
        if key not in seen:
            seen.add(key)
            out.append(points[i])
    return out


def choose_best(points: Sequence[SearchPoint], ref_acc: float, acc_delta: float) -> int | None:
    """NNCF's rule: the index of the cheapest point with ``accuracy > ref_acc - acc_delta`` (the first one
    evaluated among equally cheap ones); ``None`` if no point qualifies (NNCF then returns the maximum subnet)."""
    best: int | None = None
    for i, p in enumerate(points):
        if p.accuracy > ref_acc - acc_delta and (best is None or p.cost < points[best].cost):
            best = i
    return best


@dataclass
class SearchResult:
    """Outcome of ``search_subnets``.

    Attributes:
        points: every evaluated subnet in evaluation order (the full model first).
        pareto: the non-dominated points, by increasing cost.
        best_config: NNCF's choice (``choose_best``), or the maximum config when nothing qualifies.
        best_accuracy / best_cost: its accuracy and cost.
        ref_acc: the reference accuracy used (the full model's when ``ref_acc`` was -1).
        acc_delta: the tolerated accuracy drop.
        cost_metric: ``macs``, ``bops`` or ``latency`` (ms).
        details: per point, all costs (``macs``, ``params``, ``bops``, ...) and the evaluation's extras.
        generations: per point, the NSGA-II generation it was first evaluated in (-1: the reference model).
        params: the search parameters (plain data).
        info: mode-specific statistics (``PREDICTOR``: the predictor's sample count, training RMSE, and its
            predicted vs measured accuracy on the verified front subnets).
    """

    points: list[SearchPoint]
    best_config: SubnetConfig
    best_accuracy: float
    best_cost: float
    ref_acc: float
    acc_delta: float
    cost_metric: str
    details: list[dict[str, Any]] = field(default_factory=list)
    generations: list[int] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    pareto: list[SearchPoint] = field(init=False)

    def __post_init__(self) -> None:
        self.pareto = pareto_front(self.points)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``from_dict`` reads it back)."""
        return {
            "best_config": self.best_config,
            "best_accuracy": self.best_accuracy,
            "best_cost": self.best_cost,
            "ref_acc": self.ref_acc,
            "acc_delta": self.acc_delta,
            "cost_metric": self.cost_metric,
            "pareto": [p._asdict() for p in self.pareto],
            "points": [p._asdict() for p in self.points],
            "details": self.details,
            "generations": self.generations,
            "params": self.params,
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchResult:
        """Inverse of ``to_dict`` (the front is recomputed from the points)."""
        return cls(
            points=[SearchPoint(p["config"], float(p["accuracy"]), float(p["cost"])) for p in d["points"]],
            best_config=d["best_config"],
            best_accuracy=float(d["best_accuracy"]),
            best_cost=float(d["best_cost"]),
            ref_acc=float(d["ref_acc"]),
            acc_delta=float(d["acc_delta"]),
            cost_metric=str(d["cost_metric"]),
            details=list(d.get("details", [])),
            generations=[int(g) for g in d.get("generations", [])],
            params=dict(d.get("params", {})),
            info=dict(d.get("info", {})),
        )

    def save(self, path: str | Path) -> Path:
        """Write ``to_dict()`` as JSON."""
        out = Path(path)
        out.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))
        return out

    @classmethod
    def load(cls, path: str | Path) -> SearchResult:
        """Read a file written by ``save``."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def plot(self, path: str | Path) -> Path | None:
        """PNG of every evaluated point (coloured by generation), the Pareto front, the reference and the chosen
        subnet; ``None`` without matplotlib (``pip install matplotlib``)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            logger.warning("search: matplotlib is not installed; no Pareto plot written")
            return None
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        gens = self.generations if len(self.generations) == len(self.points) else [0] * len(self.points)
        sc = ax.scatter(
            [p.cost for p in self.points],
            [p.accuracy for p in self.points],
            c=gens,
            s=10,
            cmap="viridis",
            alpha=0.6,
            label="evaluated",
        )
        fig.colorbar(sc, ax=ax, label="generation")
        ax.plot([p.cost for p in self.pareto], [p.accuracy for p in self.pareto], "r.-", label="Pareto front")
        ax.axhline(self.ref_acc - self.acc_delta, color="gray", ls="--", lw=1, label="ref_acc - acc_delta")
        ax.scatter(
            [self.best_cost],
            [self.best_accuracy],
            marker="*",
            s=200,
            c="gold",
            edgecolors="black",
            zorder=5,
            label="chosen",
        )
        ax.set_xlabel(
            {"macs": "MACs", "bops": "BOPs", "latency": "ONNX Runtime latency (ms)"}.get(
                self.cost_metric, self.cost_metric
            )
        )
        ax.set_ylabel("accuracy (BN recalibrated)")
        ax.set_title(f"Subnet search: {len(self.points)} evaluated, {len(self.pareto)} on the front")
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, dpi=120)
        plt.close(fig)
        return out
