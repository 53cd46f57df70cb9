"""Quantizer placement on residual, concat, depthwise and reuse patterns; scopes and overrides."""

from __future__ import annotations

import pytest
import torch
from tests.zoo import TinyConcatNet, TinyResNet, TinyReuseNet, seeded

from netsculpt import UnsupportedModelError, create_compressed_model
from netsculpt.graph import get_runtime


def _infos(model: torch.nn.Module, comp: dict, size: list[int]) -> dict[str, object]:
    ctrl, _ = create_compressed_model(model, {"input_info": {"sample_size": size}, "compression": comp})
    part = ctrl.child_ctrls[0]
    return {i.key: i for i in part.infos}  # type: ignore[attr-defined]


def test_residual_block_gets_quantizers_where_an_integer_runtime_needs_them() -> None:
    infos = _infos(seeded(TinyResNet()), {"algorithm": "quantization"}, [1, 3, 8, 8])
    weights = sorted(k for k, i in infos.items() if i.group == "weights")  # type: ignore[attr-defined]
    acts = sorted(k for k, i in infos.items() if i.group == "activations")  # type: ignore[attr-defined]
    assert weights == ["w:conv1:weight", "w:conv2:weight", "w:fc:weight", "w:stem:weight"]
    # model input, stem relu (read by conv1 AND the residual add: one quantizer), conv1's relu,
    # the residual branch before the add (bn2), and the pooled features before fc (flatten is skipped)
    assert acts == [
        "a:<root>/adaptive_avg_pool2d_0",
        "a:<root>/relu_0",
        "a:<root>/relu_1",
        "a:bn2/batch_norm_0",
        "a:input0",
    ]
    assert infos["a:<root>/relu_0"].signed is False  # type: ignore[attr-defined]
    assert infos["a:bn2/batch_norm_0"].signed is True  # type: ignore[attr-defined]


def test_concat_inputs_share_one_quantizer_and_maxpool_is_skipped() -> None:
    infos = _infos(TinyConcatNet(), {"algorithm": "quantization"}, [1, 3, 8, 8])
    shared = [i for i in infos.values() if len(i.points) > 1]  # type: ignore[attr-defined]
    assert len(shared) == 1
    ops = sorted(p[1][1] for p in shared[0].points)  # type: ignore[attr-defined]
    assert ops == ["relu", "sigmoid"]
    # fc's input comes from mean(); the pooled path: pw conv -> max_pool -> mean: quantizer at mean
    assert "a:<root>/mean_0" in infos
    assert "w:dw:weight" in infos


def test_shared_weights_get_one_quantizer_used_twice_and_bare_param_matmul() -> None:
    infos = _infos(TinyReuseNet(), {"algorithm": "quantization"}, [1, 4, 6, 6])
    conv = infos["w:conv:weight"]
    assert len(conv.uses) == 2  # type: ignore[attr-defined]
    assert "w:proj" in infos


def test_ignored_scopes_and_scope_overrides() -> None:
    comp = {
        "algorithm": "quantization",
        "ignored_scopes": ["conv1"],
        "scope_overrides": {"weights": {"{re}fc": {"bits": 4, "per_channel": True}}},
    }
    infos = _infos(seeded(TinyResNet()), comp, [1, 3, 8, 8])
    assert "w:conv1:weight" not in infos
    fc = infos["w:fc:weight"]
    assert (fc.bits, fc.per_channel, fc.num_channels) == (4, True, 10)  # type: ignore[attr-defined]
    assert infos["w:stem:weight"].bits == 7  # overflow fix: 8-bit weights trained on 7 bits  # type: ignore[attr-defined]


def test_unmatched_scope_is_an_error_and_the_model_is_untouched() -> None:
    model = seeded(TinyResNet())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UnsupportedModelError, match="'conv3' matched no module. Did you mean 'conv[12]'"):
        create_compressed_model(
            model,
            {
                "input_info": {"sample_size": [1, 3, 8, 8]},
                "compression": {"algorithm": "quantization", "ignored_scopes": ["conv3"]},
            },
        )
    assert get_runtime(model) is None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_unified_scale_ops_share_one_quantizer_and_gpu_has_no_overflow_fix() -> None:
    comp = {"algorithm": "quantization", "activations": {"unified_scale_ops": [["{re}.*relu_0", "bn2"]]}}
    infos = _infos(seeded(TinyResNet()), comp, [1, 3, 8, 8])
    shared = [i for i in infos.values() if len(i.points) > 1]  # type: ignore[attr-defined]
    assert len(shared) == 1 and len(shared[0].points) == 2  # type: ignore[attr-defined]
    ctrl, _ = create_compressed_model(
        seeded(TinyResNet()),
        {"input_info": {"sample_size": [1, 3, 8, 8]}, "target_device": "GPU", "compression": {"algorithm": "quantization"}},
    )
    assert {i.bits for i in ctrl.child_ctrls[0].infos} == {8}  # type: ignore[attr-defined]
