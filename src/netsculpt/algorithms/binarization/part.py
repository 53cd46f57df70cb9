"""The binarization algorithm's part of the controller: staged schedule, statistics, state and strip."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from netsculpt.algorithms.base import CompressionStage
from netsculpt.algorithms.binarization.modules import ActivationBinarizer, FrozenActivationBinarizer, WeightBinarizer
from netsculpt.algorithms.quantization.schedule import StagedQuantizationScheduler
from netsculpt.config.binarization import BinarizationConfig
from netsculpt.graph.hooks import HookRuntime, get_runtime

if TYPE_CHECKING:
    from netsculpt.algorithms.binarization.algorithm import BinarizationPlan

__all__ = ["BinarizationPart"]

logger = logging.getLogger(__name__)


class BinarizationPart:
    """Controller part of the binarization algorithm.

    The schedule is NNCF's staged one (the quantization scheduler, reused): ``"activations"`` switches the
    input binarizers, ``"weights"`` the weight binarizers. Attach an optimizer with
    ``part.scheduler.attach_optimizer(opt)`` to let it drive the LR (polynomial drop) and weight decay.
    """

    name = BinarizationConfig.NAME
    kind: ClassVar[str] = "quant"

    def __init__(self, cfg: BinarizationConfig, plan: BinarizationPlan, rt: HookRuntime) -> None:
        self.cfg = cfg
        self.plan = plan
        self._rt = rt
        self.scheduler = StagedQuantizationScheduler(cfg.params, self._set_enabled)

    def _binarizers(self, group: str) -> list[Any]:
        attr = "input_key" if group == "activations" else "weight_key"
        return [self._rt.ops[getattr(layer, attr)] for layer in self.plan.layers]

    def _set_enabled(self, group: str, on: bool) -> None:
        for b in self._binarizers(group):
            b.enabled = on

    def loss(self) -> torch.Tensor | None:
        """Binarization adds no loss term."""
        return None

    def compression_stage(self) -> CompressionStage:
        """FULLY once weights and inputs are binarized, PARTIALLY when only one group is."""
        flags = [bool(self._binarizers(g)[0].enabled) for g in ("activations", "weights")]
        if all(flags):
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED if any(flags) else CompressionStage.UNCOMPRESSED

    def statistics(self) -> dict[str, Any]:
        """Mode, layer count, enabled groups, binarized share of conv/linear MACs and weight memory."""
        layers = self.plan.layers
        macs = sum(layer.macs for layer in layers)
        numel = sum(layer.weight_numel for layer in layers)
        acts = self._binarizers("activations")
        return {
            "mode": self.cfg.mode,
            "num_binarized_layers": len(layers),
            "activations_binarized": bool(acts[0].enabled),
            "weights_binarized": bool(self._binarizers("weights")[0].enabled),
            "activation_scales_initialized": sum(bool(a.initialized) for a in acts),
            "binarized_macs_share": macs / self.plan.total_macs if self.plan.total_macs else 0.0,
            "binarized_weights_fp32_MB": numel * 4 / 2**20,
            "binarized_weights_1bit_MB": numel / 8 / 2**20,
        }

    def get_state(self) -> dict[str, Any]:
        """Binarized layer names (plain data) so that resume rebuilds and checks the same layout."""
        return {"mode": self.cfg.mode, "layers": [layer.scope for layer in self.plan.layers]}

    def strip(self, model: nn.Module) -> None:
        """Bake binary weights (``+-scale``) into the convs; freeze input binarizers into compare-and-multiply ops.

        The weight hooks are removed afterwards (the weights already hold the binary values), so BatchNorm
        folding at export sees a plain conv. Binarizers not enabled yet stay floating point (with a warning).
        """
        rt = get_runtime(model)
        if rt is None:
            return
        pending: list[str] = []
        for layer in self.plan.layers:
            wb = rt.ops[layer.weight_key]
            if isinstance(wb, WeightBinarizer):
                if wb.enabled:
                    p = model.get_parameter(layer.weight)
                    with torch.no_grad():
                        p.copy_(wb(p))
                else:
                    pending.append(layer.weight_key)
                _unhook(rt, layer.weight_key)
                rt.replace_op(layer.weight_key, nn.Identity())
            ab = rt.ops[layer.input_key]
            if isinstance(ab, ActivationBinarizer):
                if ab.enabled:
                    rt.replace_op(layer.input_key, FrozenActivationBinarizer.from_binarizer(ab))
                else:
                    pending.append(layer.input_key)
                    rt.replace_op(layer.input_key, nn.Identity())
        if pending:
            logger.warning(
                "strip: %d binarizers were not enabled yet and stay floating point: %s", len(pending), pending[:5]
            )


def _unhook(rt: HookRuntime, key: str) -> None:
    """Remove ``key`` from every pre-hook chain (dropping chains that become empty)."""
    for address in list(rt.pre_hooks):
        args = rt.pre_hooks[address]
        for arg in list(args):
            args[arg] = [(prio, k) for prio, k in args[arg] if k != key]
            if not args[arg]:
                del args[arg]
        if not args:
            del rt.pre_hooks[address]
