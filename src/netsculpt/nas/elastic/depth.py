"""Elastic depth: skippable blocks, run through the hook runtime's block bypass (graph/bypass.py).

A block found automatically is a submodule that (1) adds its own input back in a residual add called by its
own forward (``x + f(x)``), (2) receives one tensor from outside and gives back tensors of that tensor's shape,
(3) runs between ``min_block_size`` and ``max_block_size`` ops, and (4) is not inside another such block.
Skipping it makes its forward return its input (NNCF BootstrapNAS skips the same span of ops).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from torch import nn

from netsculpt.errors import ConfigError, UnsupportedModelError
from netsculpt.graph.hooks import HookRuntime
from netsculpt.graph.ops import ADD_OPS
from netsculpt.graph.scope import Scope
from netsculpt.graph.trace import ModelGraph
from netsculpt.nas.params import DepthParams

__all__ = ["ElasticDepth", "SkippedBlock", "find_blocks"]

logger = logging.getLogger(__name__)


def _inside(scope: str, block: str) -> bool:
    return scope == block or scope.startswith(block + ".")


def _is_residual_block(graph: ModelGraph, name: str, lo: int, hi: int) -> bool:
    inside = {n.id for n in graph.nodes if _inside(n.scope, name)}
    if not lo <= len(inside) <= hi:
        return False
    external: set[tuple[str, str, int]] = set()
    for i in inside:
        for r in graph.node(i).inputs:
            if r.kind == "input" or (r.kind == "node" and int(r.ref) not in inside):
                external.add((r.kind, str(r.ref), r.out_index))
    if len(external) != 1:
        return False
    (kind, ref, idx), = external
    for i in inside:
        node = graph.node(i)
        if node.scope == name and node.op in ADD_OPS:
            operands = {(r.kind, str(r.ref), r.out_index) for r in node.inputs}
            if (kind, ref, idx) in operands and len(node.inputs) == 2:
                return True
    return False


def find_blocks(graph: ModelGraph, params: DepthParams, scope: Scope | None = None) -> list[str]:
    """Module names of the residual blocks that can be skipped (outermost first, in module order)."""
    found: list[str] = []
    for name in graph.module_names():
        if any(_inside(name, b) for b in found) or (scope is not None and scope.is_ignored(name)):
            continue
        if _is_residual_block(graph, name, params.min_block_size, params.max_block_size):
            found.append(name)
    return found


class SkippedBlock(nn.Module):
    """Stands for a skipped block in an extracted subnet: returns its first argument."""

    def forward(self, x: object, *args: object, **kwargs: object) -> object:
        return x


class ElasticDepth:
    """Skippable blocks of a supernet and which of them are skipped."""

    def __init__(
        self,
        model: nn.Module,
        graph: ModelGraph,
        rt: HookRuntime,
        params: DepthParams,
        scope: Scope | None = None,
        where: str = "elasticity.depth",
    ) -> None:
        self._rt = rt
        self.blocks: list[str] = []
        if params.skipped_blocks is not None:
            for i, name in enumerate(params.skipped_blocks):
                try:
                    rt.add_bypass(model, graph, name)
                except (UnsupportedModelError, KeyError) as err:
                    raise ConfigError(f"{where}.skipped_blocks[{i}]: {err}") from err
                self.blocks.append(name)
        else:
            for name in find_blocks(graph, params, scope):
                try:
                    rt.add_bypass(model, graph, name)
                except UnsupportedModelError as err:
                    logger.info("elastic depth: %s is not skippable: %s", name, err)
                    continue
                self.blocks.append(name)
        self.skipped: list[str] = []
        logger.info("elastic depth: %d skippable blocks", len(self.blocks))

    def set_skipped(self, names: Iterable[str]) -> None:
        """Skip exactly ``names`` (must be blocks); every other block runs."""
        skip = set(names)
        for b in self.blocks:
            self._rt.set_bypass(b, b in skip)
        self.skipped = [b for b in self.blocks if b in skip]

    def slice(self, model: nn.Module, names: Sequence[str] | None = None) -> None:
        """Replace the skipped blocks of ``model`` (a plain copy) by ``nn.Identity``-like modules."""
        for name in self.skipped if names is None else names:
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            setattr(parent, attr, SkippedBlock())
