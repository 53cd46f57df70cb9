"""CompressionController: what ``create_compressed_model`` returns; a composition of algorithm parts."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netsculpt.algorithms.base import AlgorithmPart, CompressionStage
from netsculpt.algorithms.schedule_base import StepCounter
from netsculpt.config.nncf_config import NNCFConfig
from netsculpt.errors import ConfigError, ExportError, InternalError, NetsculptError
from netsculpt.graph.hooks import get_runtime
from netsculpt.graph.trace import ModelGraph
from netsculpt.metrics.coverage import Uncompressed, uncompressed_weights, warn_uncompressed
from netsculpt.rollback import ModelSnapshot
from netsculpt.state_schema import config_fingerprint

__all__ = ["CompositeScheduler", "CompressionController", "Statistics"]

logger = logging.getLogger(__name__)
STATE_VERSION = 1


class Statistics:
    """Per-algorithm statistics: ``as_dict()`` for code, ``to_str()`` / ``str()`` for a printable table."""

    def __init__(self, per_algorithm: dict[str, dict[str, Any]]) -> None:
        self._data = per_algorithm

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict ``{algorithm: {name: value}}``."""
        return copy.deepcopy(self._data)

    def items(self) -> Iterator[tuple[str, Any]]:
        """Flat ``("algorithm/name", value)`` pairs of scalar values (for TensorBoard)."""
        for algo, stats in self._data.items():
            for k, v in stats.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    yield f"{algo}/{k}", v

    def to_str(self) -> str:
        """A printable table per algorithm."""
        blocks = []
        for algo, stats in self._data.items():
            rows = [(k, _fmt(v)) for k, v in stats.items() if not isinstance(v, (list, dict))]
            width = max([len(k) for k, _ in rows] + [10])
            vwidth = max([len(v) for _, v in rows] + [5])
            line = "+" + "-" * (width + 2) + "+" + "-" * (vwidth + 2) + "+"
            body = [f"| {k:<{width}} | {v:>{vwidth}} |" for k, v in rows]
            blocks.append("\n".join([f"Statistics of {algo}", line, *body, line]))
        return "\n\n".join(blocks)

    def __str__(self) -> str:
        return self.to_str()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class CompositeScheduler(StepCounter):
    """Drives every part's scheduler; ``step`` once per optimizer step, ``epoch_step`` once per epoch."""

    def __init__(self, schedulers: Sequence[Any]) -> None:
        super().__init__()
        self.schedulers = list(schedulers)
        self.stripped = False  # set when the model was stripped in place: nothing is left to schedule
        self.distributed = False  # set by ctrl.distributed()
        self._warned_distributed = False

    def _check_live(self, what: str) -> None:
        if not self.distributed and not self._warned_distributed:
            from netsculpt.distributed import process_group_active

            self._warned_distributed = True
            if process_group_active():
                logger.warning(
                    "netsculpt: a torch.distributed process group is initialised but ctrl.distributed() was not "
                    "called; call it on every rank after create_compressed_model, as with NNCF"
                )
        if self.stripped:
            raise NetsculptError(
                f"ctrl.scheduler.{what}: the model was stripped in place (ctrl.strip(do_copy=False)), so no "
                "compression is left to schedule. Train before stripping, or strip a copy (do_copy=True)"
            )

    def step(self, next_step: int | None = None) -> None:
        """Advance one training step."""
        self._check_live("step")
        self.advance_step(next_step)
        for s in self.schedulers:
            s.step(next_step)

    def epoch_step(self, next_epoch: int | None = None) -> None:
        """Advance to the next epoch (call at the start of each epoch, as NNCF does)."""
        self._check_live("epoch_step")
        self.advance_epoch(next_epoch)
        for s in self.schedulers:
            s.epoch_step(next_epoch)

    def get_state(self) -> list[dict[str, Any]]:
        """States of every scheduler, in order."""
        return [s.get_state() for s in self.schedulers]

    def load_state(self, state: list[dict[str, Any]]) -> None:
        """Restore states saved by ``get_state``."""
        for s, st in zip(self.schedulers, state, strict=True):
            s.load_state(st)


class CompressionController:
    """Controls the compression of one model: schedule, loss, statistics, state, strip and export."""

    def __init__(
        self,
        model: nn.Module,
        parts: Sequence[AlgorithmPart],
        config: NNCFConfig,
        example_inputs: tuple[Any, ...],
        example_kwargs: dict[str, Any] | None = None,
        graph: ModelGraph | None = None,
    ) -> None:
        self.model = model
        self.graph = graph
        self.child_ctrls = list(parts)
        self.config = config
        self.example_inputs = example_inputs
        self.example_kwargs = example_kwargs or {}
        self.scheduler = CompositeScheduler([p.scheduler for p in parts])
        rt = get_runtime(model)
        if rt is not None and graph is not None:
            rt.expect_from(graph)  # every hook checks at run time that it gets the tensor traced there
        #: Per algorithm, the weights in its scopes it could not compress (listed in a warning, counted in stats).
        self.uncompressed: dict[str, tuple[Uncompressed, ...]] = {}
        #: Loss terms added from outside the stack (``add_loss_term``), summed into ``loss()`` after the parts'.
        self.loss_terms: dict[str, Callable[[], torch.Tensor]] = {}
        if graph is not None:
            for p in parts:
                skipped = uncompressed_weights(p, graph)
                if skipped:
                    self.uncompressed[p.name] = skipped
                    warn_uncompressed(p.name, skipped)

    @property
    def name(self) -> str:
        """Algorithm names joined by '+'."""
        return "+".join(p.name for p in self.child_ctrls)

    @property
    def compression_rate(self) -> float:
        """Compression rate of the first part that has one (pruning level, sparsity level...).

        Setting it forwards the value to every part that supports it (the adaptive accuracy-aware loop
        drives it). Raises AttributeError when no algorithm of the stack has a settable rate.
        """
        for p in self.child_ctrls:
            if hasattr(p, "compression_rate"):
                return float(p.compression_rate)
        raise AttributeError(f"{self.name}: no algorithm in the stack has a compression rate")

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        parts = [p for p in self.child_ctrls if hasattr(p, "compression_rate")]
        if not parts:
            raise AttributeError(f"{self.name}: no algorithm in the stack has a settable compression rate")
        for p in parts:
            p.compression_rate = value

    def add_loss_term(self, name: str, term: Callable[[], torch.Tensor]) -> None:
        """Sum ``term()`` into every later ``loss()`` (e.g. EKG's memory-bank distillation); ``name`` must be new.

        Raises:
            ConfigError: a term of that name is already registered (remove it with ``remove_loss_term``).
        """
        if name in self.loss_terms:
            raise ConfigError(f"{self.name}: a loss term named {name!r} is already added; remove it first")
        self.loss_terms[name] = term

    def remove_loss_term(self, name: str) -> None:
        """Stop adding the term registered as ``name`` (no-op when there is none)."""
        self.loss_terms.pop(name, None)

    def loss(self) -> torch.Tensor:
        """Sum of the algorithms' loss terms and the added ones (a zero tensor when there are none)."""
        total: torch.Tensor | None = None
        for p in self.child_ctrls:
            term = p.loss()
            if term is not None:
                total = term if total is None else total + term
        for extra in self.loss_terms.values():
            value = extra()
            total = value if total is None else total + value
        if total is None:
            device = next((t.device for t in self.model.parameters()), torch.device("cpu"))
            return torch.zeros((), device=device)
        return total

    def statistics(self, quickly_collected_only: bool = False) -> Statistics:
        """Statistics of every algorithm (``print(ctrl.statistics())`` shows a table)."""
        stats = {p.name: p.statistics() for p in self.child_ctrls}
        for name, skipped in self.uncompressed.items():
            stats[name] = {**stats[name], "weights_left_uncompressed": len(skipped)}
        return Statistics(stats)

    def compression_stage(self) -> CompressionStage:
        """FULLY only when every part is fully compressed, UNCOMPRESSED when none has started."""
        stages = [p.compression_stage() for p in self.child_ctrls]
        if not stages:
            return CompressionStage.UNCOMPRESSED
        if all(s == CompressionStage.FULLY_COMPRESSED for s in stages):
            return CompressionStage.FULLY_COMPRESSED
        if all(s == CompressionStage.UNCOMPRESSED for s in stages):
            return CompressionStage.UNCOMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED

    def get_compression_state(self) -> dict[str, Any]:
        """Plain-data state (JSON/``weights_only`` safe) to rebuild the compressed model on resume.

        Save it next to ``model.state_dict()``; pass it to ``create_compressed_model(...,
        compression_state=...)`` and then load the state dict.
        """
        return {
            "version": STATE_VERSION,
            "config": dict(self.config),
            "fingerprint": config_fingerprint(self.config),
            "builder_state": {p.name: p.get_state() for p in self.child_ctrls},
            "ctrl_state": {p.name: p.scheduler.get_state() for p in self.child_ctrls},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the schedulers from ``get_compression_state()['ctrl_state']`` (or the whole state)."""
        ctrl_state = state.get("ctrl_state", state)
        loaded = []
        for p in self.child_ctrls:
            if p.name in ctrl_state:
                p.scheduler.load_state(ctrl_state[p.name])
                loaded.append(p.scheduler)
        if loaded:  # every part is stepped together: the composite counters are the furthest saved ones
            self.scheduler.current_epoch = max(int(s.current_epoch) for s in loaded)
            self.scheduler.current_step = max(int(getattr(s, "current_step", -1)) for s in loaded)

    def strip(self, do_copy: bool = True) -> nn.Module:
        """Model without training-only machinery; quantizers become native torch fake-quantize ops.

        Structural parts are stripped first, then masks, then quantization, whatever the list order. If a part
        fails, an in-place strip puts the compressed model back as it was (the controller keeps working); an
        unexpected exception becomes an ``InternalError`` naming the part, the original chained.
        """
        if self.scheduler.stripped:
            raise NetsculptError(
                "ctrl.strip: the model was already stripped in place (strip(do_copy=False)); it is a plain model "
                "now. Use it as it is, or strip copies (do_copy=True) when you need more than one"
            )
        model = copy.deepcopy(self.model) if do_copy else self.model
        snapshot = None if do_copy else ModelSnapshot.take(model)
        order = {"structural": 0, "mask": 1, "quant": 2}
        part = None
        try:
            for part in sorted(self.child_ctrls, key=lambda p: order.get(getattr(p, "kind", "quant"), 3)):
                part.strip(model)
        except BaseException as err:
            if snapshot is not None:
                snapshot.restore()
            if isinstance(err, NetsculptError) or not isinstance(err, Exception):
                raise
            raise InternalError(
                f"ctrl.strip: unexpected {type(err).__name__} while stripping {getattr(part, 'name', '?')}: {err}. "
                f"{'The compressed model was put back as it was' if snapshot else 'The compressed model is unchanged'}"
                "; please report it with the traceback"
            ) from err
        if not do_copy:
            self.scheduler.stripped = True
        return model.eval()

    def strip_model(self, model: nn.Module, do_copy: bool = False) -> nn.Module:
        """NNCF 2.x alias of ``strip`` for a given model object."""
        if model is not self.model:
            raise ValueError("strip_model: only the model returned by create_compressed_model can be stripped")
        return self.strip(do_copy=do_copy)

    # ---- automated compression (netsculpt.search) -------------------------------------------------
    def apply_policy(self, policy: Any) -> Any:
        """Set a ``netsculpt.search.Policy`` (keep ratio per channel group, bits per quantizer) on the live model,
        without rebuilding or re-tracing; returns the complete policy applied. See ``netsculpt.search``."""
        from netsculpt.search.apply import apply_policy

        return apply_policy(self, policy)

    def current_policy(self) -> Any:
        """The ``netsculpt.search.Policy`` the model runs now."""
        from netsculpt.search.apply import current_policy

        return current_policy(self)

    def set_pruning_level(self, level: float | dict[str, float]) -> None:
        """NNCF's form: one pruning level for every group, or ``{group name: level}`` per group."""
        from netsculpt.search.apply import set_pruning_level

        set_pruning_level(self, level)

    def prepare_for_export(self) -> None:
        """Kept for NNCF compatibility; export does all preparation itself."""

    def distributed(self) -> None:
        """Mark the run as distributed (NNCF's call, on every rank after ``create_compressed_model``).

        Under an initialised process group this synchronises the compression from rank 0 again (a collective:
        call it on every rank); afterwards DDP keeps the replicas in step. See ``netsculpt.distributed``.
        """
        from netsculpt.distributed import sync_compression

        self.scheduler.distributed = True
        if not sync_compression(self.model, self):
            logger.info("netsculpt: distributed mode on; no process group is initialised, nothing to synchronise")

    def export_model(
        self,
        save_path: str | Path,
        save_format: str = "onnx",
        input_names: list[str] | None = None,
        output_names: list[str] | None = None,
        model_args: tuple[Any, ...] | None = None,
        *,
        check: bool = True,
        check_tolerance: float = 0.05,
        dynamic_batch: bool = True,
    ) -> Path:
        """Export the compressed model to ONNX (QDQ int8, BN folded, dynamic batch) and check it in ORT.

        ``dynamic_batch=False`` exports with the example inputs' fixed shapes (needed by models that compute sizes
        from the batch dimension).

        The inputs are the example inputs of ``create_compressed_model`` (positional and keyword, e.g.
        ``input_info`` entries with ``keyword``), or ``model_args`` in NNCF's form: positional arguments, then
        optionally a dict of keyword arguments last (``(x, {"attention_mask": m})``). Every output tensor of any
        structure becomes a graph output. With ``check``, ONNX Runtime must agree with the model on every output
        within ``check_tolerance`` (relative to the output's largest value), else ``ExportError``.

        Returns:
            The path written.
        """
        from netsculpt.export.onnx import export_onnx

        if save_format not in ("onnx", "onnx_13", "onnx_17"):
            raise ValueError(f"export_model: save_format must be 'onnx'; got {save_format!r}")
        path = Path(save_path)
        blocked = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocked is not None or path.is_dir():
            raise ExportError(
                f"export_model: cannot write {str(path)!r}: {str(blocked or path)!r} "
                f"{'is a file, not a folder' if blocked is not None else 'is a folder'}. Choose another save_path"
            )
        dtypes = sorted({str(p.dtype) for p in self.model.parameters() if p.is_floating_point()} - {"torch.float32"})
        if dtypes and any(getattr(p, "kind", "") == "quant" for p in self.child_ctrls):
            raise ExportError(
                f"export_model: the model has {', '.join(dtypes)} parameters; the QDQ ONNX export (QuantizeLinear) "
                "needs float32. Compress a float32 model (model.float()) and run it in lower precision after export"
            )
        stripped = self.strip(do_copy=True)
        args, kwargs = tuple(self.example_inputs), dict(self.example_kwargs)
        if model_args is not None:
            args, kwargs = tuple(model_args), {}
            if args and isinstance(args[-1], dict):
                args, kwargs = args[:-1], dict(args[-1])
        try:
            return export_onnx(
                stripped,
                args,
                path,
                example_kwargs=kwargs,
                graph=self.graph,
                input_names=input_names,
                output_names=output_names,
                check=check,
                tolerance=check_tolerance,
                dynamic_batch=dynamic_batch,
            )
        except NetsculptError:
            raise
        except Exception as err:  # torch.onnx / ONNX Runtime / file system: a located netsculpt error
            raise ExportError(f"export_model: exporting to {str(path)!r} failed ({type(err).__name__}: {err})") from err
