"""Model graph (tracing), op-address hooks and scopes; the op vocabulary (``ops``), ``UnionFind``, channel groups."""

from __future__ import annotations

from netsculpt.graph.hooks import HookRuntime, attach_runtime, detach_runtime, get_runtime
from netsculpt.graph.scope import Scope
from netsculpt.graph.trace import InputRef, ModelGraph, Node

__all__ = ["HookRuntime", "InputRef", "ModelGraph", "Node", "Scope", "attach_runtime", "detach_runtime", "get_runtime"]
