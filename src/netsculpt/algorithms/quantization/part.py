"""The quantization algorithm's part of the controller: schedule, statistics, state and strip."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from netsculpt.algorithms.base import CompressionStage
from netsculpt.algorithms.quantization.schedule import StagedQuantizationScheduler
from netsculpt.config.quantization import QuantizationConfig
from netsculpt.graph.hooks import HookRuntime, get_runtime
from netsculpt.graph.trace import Address
from netsculpt.nn.quantizer import QDQParams, native_fake_quantize

__all__ = ["NativeFakeQuantize", "QuantizationPart", "QuantizerInfo"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantizerInfo:
    """Everything decided about one quantizer at placement time (plain data, saved in compression state)."""

    key: str
    group: Literal["weights", "activations"]
    mode: Literal["symmetric", "asymmetric"]
    bits: int  # bits trained with (7 for 8-bit weights under overflow_fix)
    export_bits: int  # bits of the deployed integer type
    signed: bool
    signed_forced: bool
    per_channel: bool
    axis: int
    num_channels: int
    narrow_range: bool
    scope: str
    target: str  # parameter FQN (weights) or first producer (activations)
    uses: tuple[tuple[Address, int], ...]
    points: tuple[Any, ...]
    range_type: str


class NativeFakeQuantize(nn.Module):
    """Frozen quantizer made of torch's own fake-quantize ops (exports to QuantizeLinear/DequantizeLinear)."""

    def __init__(self, params: QDQParams) -> None:
        super().__init__()
        self.params = params

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return native_fake_quantize(x, self.params)

    def extra_repr(self) -> str:
        p = self.params
        return f"dtype={p.dtype}, range=[{p.quant_min}, {p.quant_max}], axis={p.axis}"


class QuantizationPart:
    """Controller part of the quantization algorithm."""

    name = QuantizationConfig.NAME
    kind: ClassVar[str] = "quant"

    def __init__(
        self,
        cfg: QuantizationConfig,
        infos: list[QuantizerInfo],
        rt: HookRuntime,
        weight_numel: dict[str, int],
        halved: frozenset[str] = frozenset(),
    ) -> None:
        self.cfg = cfg
        self.weight_numel = weight_numel
        self.infos = infos
        self.halved = halved  # weight quantizers that train 8 bits on 7 (overflow fix)
        self._rt = rt
        self.scheduler = StagedQuantizationScheduler(cfg.params, self._set_enabled)

    def quantizer(self, key: str) -> Any:
        """The live quantizer module of ``key``."""
        return self._rt.ops[key]

    def set_bits(self, bits: dict[str, int]) -> None:
        """Change deployed bits of the given quantizers in place (ranges kept; 8-bit weights under the overflow
        fix train on 7). Keys are ``QuantizerInfo.key``; unknown keys raise ``KeyError``."""
        by_key = {i.key: n for n, i in enumerate(self.infos)}
        for key, b in bits.items():
            n = by_key[key]
            info = self.infos[n]
            if info.export_bits == b:
                continue
            train = 7 if (b == 8 and key in self.halved) else int(b)
            q: Any = self._rt.ops[key]
            q.set_bits(train)
            self.infos[n] = dataclasses.replace(info, bits=train, export_bits=int(b))

    def _quantizers(self, group: str | None = None) -> list[tuple[QuantizerInfo, Any]]:
        return [(i, self._rt.ops[i.key]) for i in self.infos if group is None or i.group == group]

    def _set_enabled(self, group: str, on: bool) -> None:
        for _, q in self._quantizers(group):
            q.enabled = on

    def loss(self) -> torch.Tensor | None:
        """Quantization adds no loss term."""
        return None

    def compression_stage(self) -> CompressionStage:
        """FULLY when every quantizer is enabled."""
        flags = [bool(q.enabled) for _, q in self._quantizers()]
        if flags and all(flags):
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED if any(flags) else CompressionStage.UNCOMPRESSED

    def statistics(self) -> dict[str, Any]:
        """Counts of quantizers by group and bits, enabled share, and weight memory FP32 vs quantized."""
        stats: dict[str, Any] = {}
        for group in ("weights", "activations"):
            qs = self._quantizers(group)
            stats[f"num_{group}_quantizers"] = len(qs)
            stats[f"{group}_enabled"] = sum(bool(q.enabled) for _, q in qs)
            for bits in sorted({i.export_bits for i, _ in qs}):
                stats[f"{group}_{bits}bit"] = sum(i.export_bits == bits for i, _ in qs)
            stats[f"{group}_symmetric"] = sum(i.mode == "symmetric" for i, _ in qs)
            stats[f"{group}_per_channel"] = sum(i.per_channel for i, _ in qs)
        fp32 = q_bits = 0
        for i, _ in self._quantizers("weights"):
            numel = self.weight_numel.get(i.target, 0)
            fp32 += numel * 32
            q_bits += numel * i.export_bits
        stats["quantized_weights_fp32_MB"] = fp32 / 8 / 2**20
        stats["quantized_weights_int_MB"] = q_bits / 8 / 2**20
        return stats

    def get_state(self) -> dict[str, Any]:
        """Layout of the quantizers (keys, signedness) so that resume rebuilds the same model."""
        return {
            "quantizers": [
                {"key": i.key, "signed": bool(getattr(self._rt.ops[i.key], "signed", i.signed))} for i in self.infos
            ],
            "infos": [{k: v for k, v in asdict(i).items() if k not in ("uses", "points")} for i in self.infos],
        }

    def strip(self, model: nn.Module) -> None:
        """Bake quantized weights into the parameters and freeze every quantizer into native fake-quantize ops."""
        rt = get_runtime(model)
        if rt is None:
            return
        params = dict(model.named_parameters())
        disabled = []
        for info in self.infos:
            q: Any = rt.ops[info.key]
            if not q.enabled:
                disabled.append(info.key)
                rt.replace_op(info.key, nn.Identity())
                continue
            q.eval()
            if info.group == "weights":
                p = params[info.target]
                with torch.no_grad():
                    p.copy_(q(p))
            dtype = "int8" if info.group == "weights" else "uint8"
            qdq = q.export_params(dtype)
            if info.group == "weights":
                # The baked weight already lies on the quantizer's levels, so the narrow-range clip is a no-op;
                # dropping it lets the ONNX export store the weight itself as int8 (a Clip would hide it).
                qdq = dataclasses.replace(qdq, clip_low=None, clip_high=None)
            rt.replace_op(info.key, NativeFakeQuantize(qdq))
        if disabled:
            logger.warning(
                "strip: %d quantizers were not enabled yet and stay floating point: %s", len(disabled), disabled[:5]
            )
