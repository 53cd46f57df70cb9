"""ElasticSupernet: an elastic supernet made from any model the model graph can trace (ALGORITHMS.md §1.1, §2).

The controller verbs follow NNCF BootstrapNAS's elasticity controller (``get_minimum_config``,
``get_maximum_config``, ``get_random_config``, ``activate_subnet_for_config``, ``get_active_config``), plus
``extract``, ``recalibrate_bn`` and ``reorganize_channels``. Elasticity lives in the hook runtime
(``model._netsculpt``): masks on weights and norm outputs, block bypasses; the model keeps its class and its
own parameters.

Example:
    >>> import torch
    >>> from netsculpt.models import create_model
    >>> from netsculpt.nas import ElasticityParams, ElasticSupernet, WidthParams
    >>> net = ElasticSupernet(create_model("resnet20"), (torch.randn(2, 3, 32, 32),),
    ...                       ElasticityParams(width=WidthParams(min_width=8, width_step=8)))
    >>> cfg = net.get_minimum_config()
    >>> net.activate_subnet_for_config(cfg)
    >>> sub = net.extract()  # a plain nn.Module, same outputs as net.model now
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from netsculpt.errors import UnsupportedModelError
from netsculpt.graph.channels import build_groups
from netsculpt.graph.hooks import attach_runtime, detach_runtime, get_runtime
from netsculpt.graph.scope import Scope, normalize_patterns
from netsculpt.graph.trace import ModelGraph
from netsculpt.nas.bn import recalibrate_bn
from netsculpt.nas.config import SearchSpace, SubnetConfig
from netsculpt.nas.elastic.depth import ElasticDepth
from netsculpt.nas.elastic.kernel import ElasticKernel
from netsculpt.nas.elastic.width import ElasticWidth
from netsculpt.nas.extract import extract_active
from netsculpt.nas.masks import active_param_mask
from netsculpt.nas.params import ElasticityParams
from netsculpt.nas.reorg import optimizer_state, reorganize_group

__all__ = ["ElasticSupernet"]

logger = logging.getLogger(__name__)


class ElasticSupernet:
    """Elastic width, depth and kernel over ``model`` (changed in place: it gets a hook runtime).

    Args:
        model: a plain (not yet compressed) model.
        example_inputs: positional inputs to trace it with.
        params: elastic dimensions and their options (NNCF's keys; ``ElasticityParams.from_dict``).
        example_kwargs: keyword inputs to trace it with.
        where: config path that located errors start with.

    Raises:
        ConfigError: bad params (located under ``where``). UnsupportedModelError: already compressed, or a layer
            with no channel surgery. TracingError: the model fails on its example inputs.
    """

    def __init__(
        self,
        model: nn.Module,
        example_inputs: tuple[Any, ...],
        params: ElasticityParams | None = None,
        example_kwargs: dict[str, Any] | None = None,
        where: str = "elasticity",
    ) -> None:
        self.params = params or ElasticityParams()
        self.params.check(where)
        if get_runtime(model) is not None:
            raise UnsupportedModelError(
                f"{type(model).__name__}: already carries a netsculpt runtime; build the supernet from the plain model"
            )
        self.model = model
        self.example = (tuple(example_inputs), dict(example_kwargs or {}))
        self.graph = ModelGraph.build(model, self.example[0], self.example[1])
        p = self.params
        scope = Scope(normalize_patterns(list(p.ignored_scopes)), normalize_patterns(list(p.target_scopes)),
                      where=where, graph=self.graph)
        rt = attach_runtime(model)
        try:
            self.width = ElasticWidth(model, self.graph, rt, p.width, scope) if "width" in p.dims else None
            layers = self.width.pg.layers if self.width is not None else build_groups(self.graph).layers
            self.kernel = ElasticKernel(model, layers, rt, p.kernel, scope) if "kernel" in p.dims else None
            self.depth = (
                ElasticDepth(model, self.graph, rt, p.depth, scope, f"{where}.depth") if "depth" in p.dims else None
            )
        except BaseException:
            detach_runtime(model)  # leave the user's model as it was
            raise
        rt.expect_from(self.graph)
        device = next((t.device for t in model.parameters()), None)
        if device is not None:
            rt.to(device)  # masks live where the weights they multiply live

    # ---- search space --------------------------------------------------------------------------------
    @property
    def search_space(self) -> SearchSpace:
        """Choices per elastic dimension (largest first)."""
        return SearchSpace(
            {g: list(c) for g, c in self.width.choices.items()} if self.width else {},
            list(self.depth.blocks) if self.depth else [],
            {n: list(c) for n, c in self.kernel.choices.items()} if self.kernel else {},
        )

    def get_maximum_config(self) -> SubnetConfig:
        """Full width, no block skipped, largest kernels (the original model)."""
        return self.search_space.validate({})

    def get_minimum_config(self) -> SubnetConfig:
        """Smallest width of every group, every skippable block skipped, smallest kernels."""
        s = self.search_space
        return s.validate({
            "width": {g: c[-1] for g, c in s.width.items()},
            "depth": list(s.depth),
            "kernel": {n: c[-1] for n, c in s.kernel.items()},
        })

    def get_random_config(self, rng: random.Random | int | None = None) -> SubnetConfig:
        """A width, kernel and skip decision drawn uniformly per group, conv and block (``rng``: a
        ``random.Random`` or a seed; the same seed gives the same config)."""
        r = rng if isinstance(rng, random.Random) else random.Random(rng)
        s = self.search_space
        return s.validate({
            "width": {g: r.choice(c) for g, c in s.width.items()},
            "depth": [b for b in s.depth if r.random() < 0.5],
            "kernel": {n: r.choice(c) for n, c in s.kernel.items()},
        })

    # ---- activation ----------------------------------------------------------------------------------
    def activate_subnet_for_config(self, cfg: Mapping[str, Any], where: str = "subnet_config") -> None:
        """Make the model compute the subnet ``cfg`` (entries left out: their maximum).

        Raises:
            ConfigError: an unknown group, conv or block, or a value outside its choices (located at ``where``).
        """
        full = self.search_space.validate(cfg, where)
        if self.width is not None:
            self.width.set_widths(full["width"])
        if self.kernel is not None:
            self.kernel.set_kernels(full["kernel"])
        if self.depth is not None:
            self.depth.set_skipped(full["depth"])

    def get_active_config(self) -> SubnetConfig:
        """The config active now (every entry present; plain data)."""
        return {
            "width": dict(self.width.active) if self.width else {},
            "depth": list(self.depth.skipped) if self.depth else [],
            "kernel": dict(self.kernel.active) if self.kernel else {},
        }

    # ---- subnets -------------------------------------------------------------------------------------
    def extract(self, cfg: Mapping[str, Any] | None = None) -> nn.Module:
        """A standalone plain ``nn.Module`` with sliced weights computing subnet ``cfg`` (default: the active one).
        The supernet's active config is left as it was."""
        if cfg is None:
            return extract_active(self)
        before = self.get_active_config()
        self.activate_subnet_for_config(cfg)
        try:
            return extract_active(self)
        finally:
            self.activate_subnet_for_config(before)

    def active_param_mask(self) -> dict[str, torch.Tensor]:
        """Per parameter of the model, a boolean tensor: True where the active subnet uses the entry (skipped
        blocks, masked channels and cropped kernel taps are False)."""
        return active_param_mask(self)

    def recalibrate_bn(self, loader: Iterable[Any], num_batches: int) -> int:
        """Re-estimate BatchNorm statistics of the active subnet (norms it does not run and channels it masks keep
        theirs); returns the number of batches run."""
        width = self.width

        def kept(name: str) -> torch.Tensor | None:
            return width.kept(name) if width is not None else None

        return recalibrate_bn(self.model, loader, num_batches, kept)

    def reorganize_channels(self, criterion: str | None = None, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Sort every elastic group's channels by importance (``criterion`` default: ``width.filter_importance``)
        so each width keeps the most important ones; the full network's outputs do not change. With ``optimizer``,
        its per-parameter state (momentum, Adam's moments) moves with the parameters. Returns the number of groups
        whose order changed."""
        if self.width is None:
            return 0
        crit = criterion or self.params.width.filter_importance
        state = optimizer_state(optimizer)
        moved = sum(
            reorganize_group(self.model, g, self.width.pg.layers, crit, state) for g in self.width.groups.values()
        )
        logger.info("reorganize_channels: %d of %d groups reordered (%s)", moved, len(self.width.groups), crit)
        return moved
