"""Hardware presets: what ``target_device`` allows the ``quantization`` algorithm to place and configure.

NNCF 2.x reads a hardware config (``cpu.json``, ``gpu.json``, ``npu.json``) chosen by ``target_device``: which op
types get quantizers on their inputs, and which modes, bits and granularities each quantizer may use; the user's
config then narrows within that, and a config asking for something the hardware config forbids is an error
(NNCF: "Quantization parameter constraints specified in NNCF config are incompatible with HW capabilities").
netsculpt keeps the same contract in its own op vocabulary, in the table below.

| target_device | inputs quantized (op kinds) | weights: modes / bits / granularity | activations | overflow |
|---|---|---|---|---|
| ANY (default) | conv, linear, matmul, add | sym, asym / 2-8 / channel, tensor | sym, asym / 2-8 | fix |
| TRIAL | conv, linear, matmul, add | sym, asym / 2-8 / channel, tensor | sym, asym / 2-8 | fix |
| CPU, CPU_SPR | conv, linear, matmul, add | sym, asym / 8 / channel, tensor | sym, asym / 8 | fix |
| GPU | conv, linear, matmul, add | sym, asym / 8 / channel, tensor | sym, asym / 8 | no |
| NPU | conv, linear, matmul, add* | sym / 2, 4, 8 / channel, tensor | sym, asym / 4, 8 | no |

``add``: both operands of a residual add (two activation tensors). ``add*``: both operands share one quantizer
(one scale, NNCF's ``"scales": "unified"`` for NPU eltwise ops). Activations are per-tensor on every device.
``overflow``: the overflow fix (8-bit weights trained on 7 bits) applies, for x86 int8 kernels.

Differences from NNCF, on purpose: NNCF maps ``ANY`` to its CPU config (8 bits only); netsculpt's ``ANY`` (the
default) keeps the union of the devices' precisions widened to 2-8 bits, so configs written without a
``target_device`` (4-bit weights, mixed precision) keep working. ``TRIAL`` (NNCF: no hardware config, the user's
config decides) is the same as ``ANY`` here. Op kinds netsculpt does not quantize on any device (pooling,
multiply, normalisation inputs) are not listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from netsculpt.config.quantization import QuantizationConfig, QuantizerOverride
from netsculpt.errors import ConfigError
from netsculpt.graph.ops import ADD_OPS, CONV_OPS, CONV_TRANSPOSE_OPS, LINEAR_OPS, MATMUL_OPS

__all__ = ["PRESETS", "HardwarePreset", "OpKind", "QuantizerCaps", "check_against_preset", "op_kind", "preset_for"]

OpKind = Literal["conv", "linear", "matmul", "add"]
Mode = Literal["symmetric", "asymmetric"]


@dataclass(frozen=True)
class QuantizerCaps:
    """What one quantizer group (weights or activations) may use on a device."""

    modes: tuple[Mode, ...]
    bits: tuple[int, ...]
    per_channel: tuple[bool, ...]  # allowed granularities: True = per-channel, False = per-tensor


@dataclass(frozen=True)
class HardwarePreset:
    """One row of the table in the module docstring."""

    device: str
    op_kinds: frozenset[OpKind]  # ops whose activation inputs get quantizers
    unified_add: bool  # both operands of an add share one quantizer
    weights: QuantizerCaps
    activations: QuantizerCaps
    overflow_fix: bool  # the 8-bit overflow fix applies (x86 int8 kernels)


_ALL_KINDS: frozenset[OpKind] = frozenset({"conv", "linear", "matmul", "add"})
_ANY_BITS = tuple(range(2, 9))
_BOTH: tuple[Mode, ...] = ("symmetric", "asymmetric")
_FREE = HardwarePreset("ANY", _ALL_KINDS, False, QuantizerCaps(_BOTH, _ANY_BITS, (True, False)),
                       QuantizerCaps(_BOTH, _ANY_BITS, (False,)), True)  # fmt: skip
_CPU = HardwarePreset("CPU", _ALL_KINDS, False, QuantizerCaps(_BOTH, (8,), (True, False)),
                      QuantizerCaps(_BOTH, (8,), (False,)), True)  # fmt: skip

#: ``target_device`` -> preset (the table of the module docstring).
PRESETS: dict[str, HardwarePreset] = {
    "ANY": _FREE,
    "TRIAL": HardwarePreset("TRIAL", _FREE.op_kinds, False, _FREE.weights, _FREE.activations, True),
    "CPU": _CPU,
    "CPU_SPR": HardwarePreset("CPU_SPR", _CPU.op_kinds, False, _CPU.weights, _CPU.activations, True),
    "GPU": HardwarePreset("GPU", _CPU.op_kinds, False, _CPU.weights, _CPU.activations, False),
    "NPU": HardwarePreset(
        "NPU",
        _ALL_KINDS,
        True,
        QuantizerCaps(("symmetric",), (2, 4, 8), (True, False)),
        QuantizerCaps(_BOTH, (4, 8), (False,)),
        False,
    ),  # fmt: skip
}


def preset_for(target_device: str) -> HardwarePreset:
    """The preset of a ``target_device`` value (the config schema admits only the table's devices)."""
    try:
        return PRESETS[target_device]
    except KeyError:
        raise ConfigError(f"target_device: must be one of {sorted(PRESETS)}; got {target_device!r}") from None


def op_kind(op: str) -> OpKind | None:
    """The preset op kind of a traced op name (``None``: an op no preset quantizes)."""
    if op in CONV_OPS or op in CONV_TRANSPOSE_OPS:
        return "conv"
    if op in LINEAR_OPS:
        return "linear"
    if op in MATMUL_OPS:
        return "matmul"
    if op in ADD_OPS:
        return "add"
    return None


def _fmt(values: tuple[object, ...]) -> str:
    return ", ".join(str(v) for v in values)


def _check(where: str, key: str, value: object, allowed: tuple[object, ...], device: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}.{key}: target_device {device} allows {_fmt(allowed)}; got {value}")


def _check_override(where: str, ov: QuantizerOverride, caps: QuantizerCaps, device: str) -> None:
    if ov.mode is not None:
        _check(where, "mode", ov.mode, caps.modes, device)
    if ov.bits is not None:
        _check(where, "bits", ov.bits, caps.bits, device)
    if ov.per_channel is not None:
        _check(where, "per_channel", ov.per_channel, caps.per_channel, device)


def check_against_preset(cfg: QuantizationConfig, preset: HardwarePreset, where: str) -> None:
    """The section may narrow what the preset allows, never widen it (as NNCF's hardware config).

    Checks the effective modes (after ``preset``), bits and weight granularity of both groups, every
    ``scope_overrides`` entry and the mixed-precision candidates (``initializer.precision.bits`` and
    ``bitwidth_per_scope``).

    Raises:
        ConfigError: located at the key, e.g. ``compression[0].weights.mode: target_device NPU allows
            symmetric; got asymmetric``.
    """
    dev = preset.device
    for kind, caps in (("weights", preset.weights), ("activations", preset.activations)):
        group = cfg.group(kind)  # type: ignore[arg-type]
        _check(where, f"{kind}.mode", cfg.mode_of(kind), caps.modes, dev)  # type: ignore[arg-type]
        _check(where, f"{kind}.bits", group.bits, caps.bits, dev)
        _check(where, f"{kind}.per_channel", group.per_channel, caps.per_channel, dev)
    for kind, table, caps in (
        ("weights", cfg.scope_overrides.weights, preset.weights),
        ("activations", cfg.scope_overrides.activations, preset.activations),
    ):
        for pattern, ov in table.items():
            _check_override(f"{where}.scope_overrides.{kind}.{pattern}", ov, caps, dev)
    precision = cfg.initializer.precision
    if precision is None:
        return
    allowed = tuple(sorted(set(preset.weights.bits) | set(preset.activations.bits)))
    if precision.type == "hawq" or precision.type == "random":
        for b in precision.bits:
            _check(where, "initializer.precision.bits", b, allowed, dev)
    for i, pair in enumerate(precision.bitwidth_per_scope or ()):
        _check(where, f"initializer.precision.bitwidth_per_scope[{i}]", pair[0], allowed, dev)
