"""``target_device`` presets: what each device quantizes, which modes/bits it allows, located errors otherwise."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, seeded

from netsculpt import create_compressed_model
from netsculpt.algorithms.quantization.hw_presets import PRESETS, op_kind, preset_for
from netsculpt.errors import ConfigError


def _infos(device: str, comp: dict[str, Any]) -> dict[str, Any]:
    cfg = {"input_info": {"sample_size": [1, 3, 8, 8]}, "target_device": device, "compression": comp}
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), cfg)
    return {i.key: i for i in ctrl.child_ctrls[0].infos}  # type: ignore[attr-defined]


def test_every_schema_device_has_a_preset_and_op_kinds_follow_the_op_vocabulary() -> None:
    assert set(PRESETS) == {"ANY", "TRIAL", "CPU", "CPU_SPR", "GPU", "NPU"}
    assert [op_kind(o) for o in ("conv2d", "linear", "matmul", "__add__", "relu")] == [
        "conv", "linear", "matmul", "add", None,
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="target_device: must be one of"):
        preset_for("TPU")


@pytest.mark.parametrize("device", ["ANY", "TRIAL", "CPU", "CPU_SPR", "GPU"])
def test_cpu_like_presets_quantize_both_residual_operands_separately(device: str) -> None:
    infos = _infos(device, {"algorithm": "quantization"})
    acts = sorted(k for k, i in infos.items() if i.group == "activations")
    # relu_0 feeds conv1 and the residual add; bn2 is the add's other operand: two quantizers
    assert "a:<root>/relu_0" in acts and "a:bn2/batch_norm_0" in acts
    assert all(len(i.points) == 1 for i in infos.values() if i.group == "activations")
    weight_bits = {i.bits for i in infos.values() if i.group == "weights"}
    # the overflow fix (8-bit weights trained on 7 bits) is for x86 devices only
    assert weight_bits == ({8} if device == "GPU" else {7})


def test_npu_shares_one_scale_across_a_residual_add_and_has_no_overflow_fix() -> None:
    infos = _infos("NPU", {"algorithm": "quantization"})
    shared = [i for i in infos.values() if i.group == "activations" and len(i.points) > 1]
    assert len(shared) == 1
    ops = sorted(p[1][1] for p in shared[0].points)
    assert ops == ["batch_norm", "relu"]  # bn2 (the branch) and the stem relu (the shortcut)
    assert {i.bits for i in infos.values() if i.group == "weights"} == {8}
    # negative control: on CPU the same model keeps the two operands apart
    cpu = _infos("CPU", {"algorithm": "quantization"})
    assert (
        len([i for i in cpu.values() if i.group == "activations"])
        == len([i for i in infos.values() if i.group == "activations"]) + 1
    )


def test_npu_allows_4_bit_symmetric_weights_cpu_does_not() -> None:
    comp = {"algorithm": "quantization", "weights": {"bits": 4}, "activations": {"bits": 4}}
    infos = _infos("NPU", comp)
    assert {i.bits for i in infos.values()} == {4}
    assert {i.mode for i in infos.values() if i.group == "weights"} == {"symmetric"}
    with pytest.raises(ConfigError, match=r"^compression\.weights\.bits: target_device CPU allows 8; got 4$"):
        _infos("CPU", comp)
    assert {i.bits for i in _infos("ANY", comp).values()} == {4}  # ANY keeps netsculpt's 2-8 bits


@pytest.mark.parametrize(
    ("device", "comp", "message"),
    [
        ("NPU", {"weights": {"mode": "asymmetric"}},
         r"compression\.weights\.mode: target_device NPU allows symmetric; got asymmetric"),
        ("NPU", {"activations": {"bits": 2}},
         r"compression\.activations\.bits: target_device NPU allows 4, 8; got 2"),
        ("GPU", {"scope_overrides": {"weights": {"fc": {"bits": 4}}}},
         r"compression\.scope_overrides\.weights\.fc\.bits: target_device GPU allows 8; got 4"),
        ("NPU", {"scope_overrides": {"activations": {"conv1": {"mode": "asymmetric", "bits": 6}}}},
         r"compression\.scope_overrides\.activations\.conv1\.bits: target_device NPU allows 4, 8; got 6"),
        ("CPU", {"initializer": {"precision": {"type": "hawq", "bits": [4, 8]}}},
         r"compression\.initializer\.precision\.bits: target_device CPU allows 8; got 4"),
    ],
)  # fmt: skip
def test_a_config_asking_for_what_the_preset_forbids_is_a_located_error(
    device: str, comp: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _infos(device, {"algorithm": "quantization", **comp})


def test_user_config_may_narrow_within_the_preset() -> None:
    comp = {"algorithm": "quantization", "weights": {"mode": "asymmetric", "per_channel": True},
            "activations": {"mode": "asymmetric"}}  # fmt: skip
    infos = _infos("CPU", comp)
    assert {i.mode for i in infos.values()} == {"asymmetric"}
    assert all(i.per_channel for i in infos.values() if i.group == "weights")
    # NPU: asymmetric activations are allowed (only weights must be symmetric)
    npu = _infos("NPU", {"algorithm": "quantization", "activations": {"mode": "asymmetric"}})
    assert {i.mode for i in npu.values() if i.group == "activations"} == {"asymmetric"}


def test_presets_agree_with_the_models_output_after_quantization() -> None:
    """NPU's shared add scale still computes the model (a smoke check that the shared quantizer is wired)."""
    torch.manual_seed(0)
    cfg = {
        "input_info": {"sample_size": [2, 3, 8, 8]},
        "target_device": "NPU",
        "compression": {"algorithm": "quantization"},
    }
    model = seeded(TinyResNet()).eval()
    x = torch.randn(2, 3, 8, 8)
    ref = model(x)
    _, qmodel = create_compressed_model(model, cfg)
    out = qmodel.eval()(x)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    assert not torch.equal(out, ref)  # quantizers are active
