"""``layers.png``: per-layer views of a compression report (sparsity per layer, remaining channels per layer).

Both come from the controller statistics saved in the report: sparsity parts report ``layers``
(``{parameter: fraction of zeros}``), filter pruning reports ``remaining_channels`` and ``total_channels``
(``{layer: count}``). A report without either gets no figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["layer_panels", "plot_layers"]

Panel = tuple[str, str, list[str], list[float], list[float] | None]
"""(kind, title, layer names, values, totals or None)."""


def layer_panels(report: Mapping[str, Any]) -> list[Panel]:
    """The per-layer series found in ``report["statistics"]``, one panel per algorithm that has one."""
    panels: list[Panel] = []
    for algo, stats in (report.get("statistics") or {}).items():
        if not isinstance(stats, Mapping):
            continue
        layers = stats.get("layers")
        if isinstance(layers, Mapping) and layers:
            names = [str(k) for k in layers]
            panels.append(("sparsity", f"{algo}: sparsity per layer", names, [float(v) for v in layers.values()], None))
        kept = stats.get("remaining_channels")
        total = stats.get("total_channels")
        if isinstance(kept, Mapping) and kept:
            names = [str(k) for k in kept]
            totals = [float(total[k]) for k in kept] if isinstance(total, Mapping) else None
            panels.append(("channels", f"{algo}: remaining channels per layer", names,
                           [float(v) for v in kept.values()], totals))
    return panels


def _short(name: str, limit: int = 28) -> str:
    name = name.removesuffix(".weight")
    return name if len(name) <= limit else "..." + name[-(limit - 3):]


def plot_layers(report: Mapping[str, Any], path: Path) -> Path | None:
    """Draw one horizontal bar chart per per-layer series to ``path``; ``None`` when there is none.

    Args:
        report: the report dict (its ``statistics`` section).
        path: the PNG file to write.
    """
    fig = layers_figure(report)
    if fig is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def layers_figure(report: Mapping[str, Any]) -> Any:
    """The figure of :func:`plot_layers` (a matplotlib ``Figure``), or ``None`` when there is no per-layer series."""
    panels = layer_panels(report)
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    heights = [max(2.5, 0.22 * len(p[2]) + 1.2) for p in panels]
    fig = Figure(figsize=(9, sum(heights)), dpi=100)
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, (kind, title, names, values, totals) in zip((row[0] for row in axes), panels):
        ys = list(range(len(names)))[::-1]
        if kind == "sparsity":
            ax.barh(ys, [100 * v for v in values], color="#1f77b4")
            ax.set_xlim(0, 100)
            ax.set_xlabel("zeros in the weight, %")
            for y, v in zip(ys, values):
                ax.annotate(f"{100 * v:.0f}%", (100 * v, y), xytext=(3, 0), textcoords="offset points",
                            va="center", fontsize=7)
        else:
            if totals is not None:
                ax.barh(ys, totals, color="#d9d9d9", label="before")
            ax.barh(ys, values, color="#1f77b4", label="kept")
            ax.set_xlabel("output channels")
            for y, v, t in zip(ys, values, totals or values):
                ax.annotate(f"{v:.0f}/{t:.0f}", (t, y), xytext=(3, 0), textcoords="offset points", va="center",
                            fontsize=7)
            ax.set_xlim(0, 1.15 * max([*(totals or values), 1.0]))  # room for the "kept/before" labels
            # Outside the axes: inside, it covered the label of the last bar.
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.set_yticks(ys)
        ax.set_yticklabels([_short(n) for n in names], fontsize=7)
        ax.set_title(title, fontsize=11)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    fig.tight_layout()
    return fig
