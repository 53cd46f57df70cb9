"""Cross-algorithm checks run after every algorithm's ``check`` and before any ``apply``.

A stack is rejected here, with the model untouched, when two algorithms cannot share a layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from netsculpt.graph.trace import ModelGraph

__all__ = ["check_stack"]


def check_stack(plans: Sequence[tuple[Any, Any, Any]], graph: ModelGraph) -> None:
    """Validate a stack of ``(algorithm, config, plan)``; raise ConfigError/UnsupportedModelError on conflicts.

    With only quantization implemented there is nothing to reject yet; algorithms that cannot share a layer
    (e.g. binarization and quantization) add their rule here.
    """
    del plans, graph
