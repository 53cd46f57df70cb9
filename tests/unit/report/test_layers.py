"""layers.png: per-layer sparsity and remaining-channel panels from the controller statistics."""

from __future__ import annotations

from pathlib import Path

from netsculpt.report import write_report
from netsculpt.report.layers import layer_panels, plot_layers

STATS = {
    "magnitude_sparsity": {"sparsity_level": 0.5, "layers": {"conv1.weight": 0.25, "fc.weight": 0.75}},
    "filter_pruning": {
        "remaining_channels": {"conv1": 4, "conv2": 6},
        "total_channels": {"conv1": 8, "conv2": 8},
    },
    "quantization": {"num_weights_quantizers": 3},
}


def test_panels_come_from_the_statistics() -> None:
    panels = layer_panels({"statistics": STATS})
    assert [(p[0], p[2], p[3], p[4]) for p in panels] == [
        ("sparsity", ["conv1.weight", "fc.weight"], [0.25, 0.75], None),
        ("channels", ["conv1", "conv2"], [4.0, 6.0], [8.0, 8.0]),
    ]
    assert layer_panels({"statistics": {"quantization": STATS["quantization"]}}) == []


def test_plot_written_only_with_per_layer_data(tmp_path: Path) -> None:
    png = plot_layers({"statistics": STATS}, tmp_path / "layers.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_layers({"statistics": {}}, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_report_links_the_layer_plot(tmp_path: Path) -> None:
    report = {"fp32": {"accuracy": 0.9}, "compressed": {"accuracy": 0.89}, "statistics": STATS}
    paths = write_report(tmp_path, report)
    assert paths.layers_png == tmp_path / "layers.png" and paths.layers_png.is_file()
    assert "![per-layer sparsity / remaining channels](layers.png)" in paths.markdown.read_text()
    plain = write_report(tmp_path / "plain", {"fp32": {}, "compressed": {}, "statistics": {}})
    assert plain.layers_png is None and "layers.png" not in plain.markdown.read_text()


def test_legend_covers_no_bar_label() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Annotation

    from netsculpt.report.layers import layers_figure

    stats = {"filter_pruning": {"remaining_channels": {f"layer{i}": 8 + i for i in range(6)},
                                "total_channels": {f"layer{i}": 16 for i in range(6)}}}
    fig = layers_figure({"statistics": stats})
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        labels = [c for c in ax.get_children() if isinstance(c, Annotation)]
        assert labels
        for label in labels:
            assert not box.overlaps(label.get_window_extent(renderer)), label.get_text()
            assert label.get_window_extent(renderer).x1 <= fig.bbox.x1  # inside the figure
