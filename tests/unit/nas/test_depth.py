"""Skippable blocks are found automatically around residual adds, within the block-size limits."""

from __future__ import annotations

from tests.unit.nas._models import X, mobilenetv2, resnet20, usernet

from netsculpt.graph.trace import ModelGraph
from netsculpt.nas import DepthParams
from netsculpt.nas.elastic import find_blocks


def test_resnet_identity_blocks_only() -> None:
    g = ModelGraph.build(resnet20(), (X[:2],))
    blocks = find_blocks(g, DepthParams())
    # the first block of stages 2 and 3 downsamples (projection shortcut): its shapes differ, not skippable
    assert blocks == ["layers.0.0", "layers.0.1", "layers.0.2", "layers.1.1", "layers.1.2", "layers.2.1", "layers.2.2"]


def test_mobilenet_residual_blocks() -> None:
    model = mobilenetv2()
    g = ModelGraph.build(model, (X[:2],))
    blocks = find_blocks(g, DepthParams())
    residual = [f"features.{i}" for i, m in enumerate(model.features) if getattr(m, "use_residual", False)]
    assert blocks == residual and blocks


def test_block_size_limits() -> None:
    g = ModelGraph.build(usernet(), (X[:2],))
    sizes = {b: sum(1 for n in g.nodes if n.scope == b or n.scope.startswith(b + ".")) for b in ("block1", "block2")}
    assert find_blocks(g, DepthParams()) == ["block1", "block2"]
    assert find_blocks(g, DepthParams(max_block_size=min(sizes.values()) - 1)) == []
    assert find_blocks(g, DepthParams(min_block_size=max(sizes.values()) + 1)) == []
