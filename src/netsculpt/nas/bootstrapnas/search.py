"""``SearchAlgorithm``: NNCF 2.x BootstrapNAS's search entry point, running ``netsculpt.nas.search.search_subnets``.

``SearchAlgorithm.from_config(model, elasticity_ctrl, nncf_config).run(validate_fn, val_loader,
checkpoint_save_dir)`` returns ``(elasticity_ctrl, best_config, performance_metrics)`` as NNCF's did, with the best
subnet active (BN-recalibrated) and ``performance_metrics = [cost, accuracy]`` (NNCF: MACs in millions and top-1;
here the search's ``cost_metric``, MACs per sample by default). The search result (every point, the Pareto front)
is written to ``checkpoint_save_dir/search_result.json`` and, with matplotlib, ``search_progression.png``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from netsculpt.distributed import is_main_process
from netsculpt.errors import NotSupportedYetError
from netsculpt.init_args import BNAdaptationInitArgs
from netsculpt.nas.bootstrapnas.controller import ElasticityController
from netsculpt.nas.bootstrapnas.params import parse_bootstrapnas
from netsculpt.nas.bootstrapnas.training import to_nncf_config
from netsculpt.nas.config import SubnetConfig

if TYPE_CHECKING:
    from netsculpt.config.nncf_config import NNCFConfig
    from netsculpt.nas.search import SearchResult

__all__ = ["BaseSearchAlgorithm", "SearchAlgorithm"]

logger = logging.getLogger(__name__)
_WHERE = "bootstrapNAS.search"


class SearchAlgorithm:
    """NSGA-II over the subnets of a trained supernet (NNCF's ``SearchAlgorithm`` / ``BaseSearchAlgorithm``).

    Args:
        model: the supernet's model (as returned by ``EpochBasedTrainingAlgorithm.run``).
        elasticity_ctrl: its elasticity controller.
        search: the ``bootstrapNAS.search`` section.
        bn_loader: batches for BN recalibration of every candidate (NNCF: the registered ``BNAdaptationInitArgs``).
        log_dir: where ``search_progression.png`` goes by default (NNCF's ``log_dir``).
    """

    def __init__(
        self,
        model: nn.Module,
        elasticity_ctrl: ElasticityController,
        search: dict[str, Any],
        bn_loader: Iterable[Any] | None = None,
        log_dir: str | Path = ".",
    ) -> None:
        from netsculpt.nas.search import SearchParams  # noqa: PLC0415 (search pulls in the executors)

        if elasticity_ctrl.supernet.model is not model:
            logger.warning("bootstrapNAS search: model is not elasticity_ctrl's supernet model; searching the latter")
        self._model = model
        self._elasticity_ctrl = elasticity_ctrl
        self.search_params = SearchParams.from_dict(search, where=_WHERE)
        self.bn_loader = bn_loader
        self._log_dir = Path(log_dir)
        self.result: SearchResult | None = None
        self.best_config: SubnetConfig | None = None

    @classmethod
    def from_config(
        cls, model: nn.Module, elasticity_ctrl: ElasticityController, nncf_config: NNCFConfig | dict[str, Any]
    ) -> SearchAlgorithm:
        """Read ``bootstrapNAS.search``; BN recalibration uses the registered ``BNAdaptationInitArgs`` loader."""
        config = to_nncf_config(nncf_config)
        params = parse_bootstrapnas(config.get("bootstrapNAS", {}))
        bn = (
            config.get_extra_struct(BNAdaptationInitArgs).data_loader
            if config.has_extra_struct(BNAdaptationInitArgs)
            else None
        )
        return cls(model, elasticity_ctrl, dict(params.search), bn, config.log_dir or ".")

    @classmethod
    def from_checkpoint(
        cls,
        model: nn.Module,
        elasticity_ctrl: ElasticityController,
        bn_adapt_args: Any,
        resuming_checkpoint_path: str | Path,
    ) -> SearchAlgorithm:
        """The search of the config stored in a training checkpoint (``supernet_last.pth``)."""
        ckpt = torch.load(Path(resuming_checkpoint_path), map_location="cpu", weights_only=True)
        config = json.loads(ckpt["training_algo_state"]["config"])
        search = dict(parse_bootstrapnas(config.get("bootstrapNAS", {})).search)
        loader = getattr(bn_adapt_args, "data_loader", None)
        return cls(model, elasticity_ctrl, search, loader, config.get("log_dir") or ".")

    def run(
        self,
        validate_fn: Callable[..., Any],
        val_loader: Any,
        checkpoint_save_dir: str | Path,
        efficiency_evaluator: Any = None,
        ref_acc: float | None = 100,
        tensorboard_writer: Any = None,
    ) -> tuple[ElasticityController, SubnetConfig, list[float]]:
        """Search; returns ``(elasticity_ctrl, best_config, [cost, accuracy])`` with the best subnet active.

        ``validate_fn(model, val_loader) -> top1`` (NNCF's form). ``ref_acc`` other than 100 replaces the config's
        (as NNCF). ``efficiency_evaluator`` is not supported (choose ``cost_metric``: macs, bops or latency).
        """
        from netsculpt.nas.search import search_subnets  # noqa: PLC0415

        if efficiency_evaluator is not None:
            raise NotSupportedYetError(
                f"{_WHERE}: an external efficiency_evaluator is not supported yet; set "
                f"{_WHERE}.cost_metric (macs, bops or latency)"
            )
        params = self.search_params
        if ref_acc is not None and ref_acc != 100:
            params = dataclasses.replace(params, ref_acc=float(ref_acc))
        ctrl = self._elasticity_ctrl
        ctrl.activate_maximum_subnet()
        result = search_subnets(
            ctrl.supernet, validate_fn, params=params, val_loader=val_loader, bn_loader=self.bn_loader
        )
        self.result = result
        self.best_config = result.best_config
        ctrl.activate_subnet_for_config(result.best_config)
        if self.bn_loader is not None and params.num_bn_adaptation_samples > 0:
            batch = getattr(self.bn_loader, "batch_size", None) or 1
            ctrl.supernet.recalibrate_bn(self.bn_loader, max(1, -(-params.num_bn_adaptation_samples // batch)))
        if tensorboard_writer is not None and is_main_process():
            for i, point in enumerate(result.points):
                tensorboard_writer.add_scalar("search/accuracy", point.accuracy, i)
                tensorboard_writer.add_scalar(f"search/{result.cost_metric}", point.cost, i)
        if is_main_process():
            out = Path(checkpoint_save_dir)
            out.mkdir(parents=True, exist_ok=True)
            result.save(out / "search_result.json")
        return ctrl, result.best_config, [abs(result.best_cost), abs(result.best_accuracy)]

    def visualize_search_progression(self, filename: str = "search_progression") -> Path | None:
        """Plot the evaluated subnets and the Pareto front to ``log_dir/filename.png`` (None without matplotlib or
        before ``run``)."""
        if self.result is None:
            return None
        return self.result.plot(self._log_dir / f"{filename}.png")

    def search_progression_to_csv(self, filename: str = "search_progression.csv") -> Path | None:
        """Every evaluated subnet as CSV rows ``index, cost, accuracy`` in ``log_dir`` (None before ``run``)."""
        if self.result is None:
            return None
        path = self._log_dir / filename
        rows = [f"{i},{p.cost},{p.accuracy}" for i, p in enumerate(self.result.points)]
        path.write_text("\n".join(rows) + "\n")
        return path


BaseSearchAlgorithm = SearchAlgorithm  # NNCF 2.19's name
