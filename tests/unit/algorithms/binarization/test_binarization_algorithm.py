"""Binarization end to end on tiny models: placement, forward against a reference, schedule, state, strip, ONNX."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.zoo import TinyConcatNet, TinyResNet, seeded
from torch import nn

from netsculpt import CompressionStage, create_compressed_model
from netsculpt.algorithms.binarization.functions import xnor_binarize
from netsculpt.algorithms.binarization.modules import mse_scale
from netsculpt.errors import UnsupportedModelError
from netsculpt.graph import get_runtime

SIZE = [1, 3, 8, 8]


def _config(**params: Any) -> dict[str, Any]:
    comp = {"algorithm": "binarization", "ignored_scopes": ["stem"], **params}
    return {"input_info": {"sample_size": SIZE}, "compression": comp}


def _now(**kw: Any) -> dict[str, Any]:
    """Binarize from epoch 0."""
    return _config(params={"activations_quant_start_epoch": 0, "weights_quant_start_epoch": 0}, **kw)


def test_only_conv2d_layers_in_scope_are_binarized() -> None:
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _config())
    rt = get_runtime(model)
    assert rt is not None
    assert sorted(rt.ops) == ["ba:conv1", "ba:conv2", "bw:conv1", "bw:conv2"]  # stem ignored, fc is Linear
    assert rt.pre_hooks[("conv1", "conv2d", 0)] == {0: [(50, "ba:conv1")], 1: [(50, "bw:conv1")]}
    stats = ctrl.statistics().as_dict()["binarization"]
    assert stats["num_binarized_layers"] == 2 and stats["mode"] == "xnor"
    assert 0.0 < stats["binarized_macs_share"] < 1.0


def test_nncf_scope_strings_and_the_recommended_resnet_ignored_scopes() -> None:
    cfg = _config(ignored_scopes=["TinyResNet/NNCFConv2d[stem]", "TinyResNet/NNCFConv2d[conv2]", "fc"])
    _, model = create_compressed_model(seeded(TinyResNet()), cfg)
    rt = get_runtime(model)
    assert rt is not None and sorted(rt.ops) == ["ba:conv1", "bw:conv1"]


def test_scope_that_matches_nothing_and_model_without_conv2d_are_errors() -> None:
    with pytest.raises(UnsupportedModelError, match=r"compression.ignored_scopes: 'stemm' matched no module"):
        create_compressed_model(seeded(TinyResNet()), _config(ignored_scopes=["stemm"]))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    with pytest.raises(UnsupportedModelError, match="no Conv2d layer to binarize"):
        create_compressed_model(
            mlp, {"input_info": {"sample_size": [1, 3, 2, 2]}, "compression": {"algorithm": "binarization"}}
        )


@pytest.mark.parametrize("mode", ["xnor", "dorefa"])
def test_binarized_forward_matches_hand_written_reference(mode: str) -> None:
    class OneConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    model = seeded(OneConv())
    cfg = {
        "input_info": {"sample_size": SIZE},
        "compression": {
            "algorithm": "binarization",
            "mode": mode,
            "params": {"activations_quant_start_epoch": 0, "weights_quant_start_epoch": 0},
        },
    }
    w, b = model.conv.weight.detach().clone(), model.conv.bias.detach().clone()  # type: ignore[union-attr]
    ctrl, model = create_compressed_model(model, cfg)
    ctrl.scheduler.epoch_step()
    x = torch.randn(2, 3, 8, 8).abs()
    model.train()
    model(x)  # first training batch sets the activation scale
    rt = get_runtime(model)
    assert rt is not None
    ab = rt.ops["ba:conv"]
    with torch.no_grad():
        ab.threshold.copy_(torch.tensor([-1.0, 0.0, 0.5]))
    model.eval()
    s = float(ab.log_scale.detach().exp())
    top = x.reshape(-1).topk(max(1, round(x.numel() * 0.001))).values.min()
    assert s == pytest.approx(mse_scale(x, float(top)), rel=1e-6)  # default init: least-squares {0, s} fit
    t = torch.sigmoid(torch.tensor([-1.0, 0.0, 0.5])).reshape(1, 3, 1, 1)
    x_ref = (x > t * s).float() * s
    if mode == "xnor":
        w_ref = torch.where(w > 0, 1.0, -1.0) * w.abs().mean(dim=(1, 2, 3), keepdim=True)
    else:
        w_ref = torch.where(w > 0, 1.0, -1.0) * w.abs().mean()
    torch.testing.assert_close(model(x), F.conv2d(x_ref, w_ref, b, padding=1), rtol=1e-5, atol=1e-5)


def test_staged_schedule_per_epoch_with_lr_drop_and_weight_decay() -> None:
    params = {
        "activations_quant_start_epoch": 1,
        "weights_quant_start_epoch": 2,
        "lr_poly_drop_start_epoch": 3,
        "lr_poly_drop_duration_epochs": 2,
        "disable_wd_start_epoch": 4,
        "base_lr": 0.1,
        "base_wd": 1e-3,
    }
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _config(params=params))
    part = ctrl.child_ctrls[0]
    opt = torch.optim.Adam(model.parameters(), lr=1.0)
    part.scheduler.attach_optimizer(opt)  # type: ignore[attr-defined]
    rt = get_runtime(model)
    assert rt is not None
    steps = 4

    def poly(t: float) -> float:  # closed form of ALGORITHMS.md §8.6 stage 4
        start, dur = 3, 2
        return 0.1 if t < start else (0.0 if t >= start + dur else 0.1 * ((start + dur - t) / dur) ** 2.1)

    seen = []
    for epoch in range(6):
        ctrl.scheduler.epoch_step()
        flags = (
            {bool(m.enabled) for k, m in rt.ops.items() if k.startswith("ba:")},
            {bool(m.enabled) for k, m in rt.ops.items() if k.startswith("bw:")},
        )
        seen.append((*flags, ctrl.compression_stage()))
        assert opt.param_groups[0]["weight_decay"] == (0.0 if epoch >= 4 else pytest.approx(1e-3))
        for k in range(steps):
            ctrl.scheduler.step()
            if epoch >= 1:  # steps per epoch are known once epoch 0 is over
                assert opt.param_groups[0]["lr"] == pytest.approx(poly(epoch + (k + 1) / steps)), (epoch, k)
    assert seen == [
        ({False}, {False}, CompressionStage.UNCOMPRESSED),
        ({True}, {False}, CompressionStage.PARTIALLY_COMPRESSED),
        ({True}, {True}, CompressionStage.FULLY_COMPRESSED),
        ({True}, {True}, CompressionStage.FULLY_COMPRESSED),
        ({True}, {True}, CompressionStage.FULLY_COMPRESSED),
        ({True}, {True}, CompressionStage.FULLY_COMPRESSED),
    ]
    assert math.isclose(poly(4.5), 0.1 * 0.25**2.1)


def test_default_schedule_is_nncf_one_fp_epoch() -> None:
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), _config())
    ctrl.scheduler.epoch_step()
    assert ctrl.compression_stage() == CompressionStage.UNCOMPRESSED
    ctrl.scheduler.epoch_step()
    assert ctrl.compression_stage() == CompressionStage.FULLY_COMPRESSED


def test_shared_conv_gets_one_binarizer_hooked_at_every_call() -> None:
    class Reuse(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(F.relu(self.conv(x)))

    _, model = create_compressed_model(
        seeded(Reuse()), {"input_info": {"sample_size": [1, 4, 6, 6]}, "compression": {"algorithm": "binarization"}}
    )
    rt = get_runtime(model)
    assert rt is not None and sorted(rt.ops) == ["ba:conv", "bw:conv"]
    assert set(rt.pre_hooks) == {("conv", "conv2d", 0), ("conv", "conv2d", 1)}


@pytest.mark.onnx
def test_strip_bakes_binary_weights_and_onnx_runtime_matches(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    ctrl, model = create_compressed_model(
        seeded(TinyConcatNet()),
        {
            "input_info": {"sample_size": SIZE},
            "compression": {
                "algorithm": "binarization",
                "ignored_scopes": ["a", "b"],
                "params": {"activations_quant_start_epoch": 0, "weights_quant_start_epoch": 0},
            },
        },
    )
    ctrl.scheduler.epoch_step()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(2):
        loss = model(torch.randn(8, 3, 8, 8)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x = torch.randn(16, 3, 8, 8)
    stripped = ctrl.strip()
    assert torch.equal(stripped(x), model(x))
    for name in ("dw", "pw"):
        w = stripped.get_submodule(name).weight.detach()
        torch.testing.assert_close(w.abs(), w.abs().amax(dim=(1, 2, 3), keepdim=True).expand_as(w))  # +-scale
        torch.testing.assert_close(w, xnor_binarize(model.get_submodule(name).weight.detach()))
    assert not any(p.requires_grad and "_netsculpt" in n for n, p in stripped.named_parameters())
    path = ctrl.export_model(tmp_path / "binary.onnx", model_args=(x,))
    proto = onnx.load(str(path))
    assert {"Greater", "Mul"} <= {n.op_type for n in proto.graph.node}
    assert all(n.domain in ("", "ai.onnx") for n in proto.graph.node)  # standard ops only
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    assert float(np.abs(got - ref).max()) < 1e-4
    assert (got.argmax(1) == ref.argmax(1)).all()


def test_strip_before_binarization_starts_keeps_floating_point(caplog: pytest.LogCaptureFixture) -> None:
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _config())
    model.eval()
    x = torch.randn(2, 3, 8, 8)
    stripped = ctrl.strip()
    assert torch.equal(stripped(x), model(x))
    assert "not enabled yet" in caplog.text


def test_state_round_trip_restores_schedule_and_scales() -> None:
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _now(mode="dorefa"))
    ctrl.scheduler.epoch_step()
    model.train()
    model(torch.randn(4, 3, 8, 8))
    state, sd = ctrl.get_compression_state(), model.state_dict()
    ctrl2, model2 = create_compressed_model(seeded(TinyResNet(), seed=3), _now(mode="dorefa"), compression_state=state)
    model2.load_state_dict(sd)
    rt2 = get_runtime(model2)
    assert rt2 is not None and bool(rt2.ops["ba:conv1"].initialized)
    model.eval()
    model2.eval()
    x = torch.randn(4, 3, 8, 8)
    assert torch.equal(model(x), model2(x))
    assert ctrl2.compression_stage() == CompressionStage.FULLY_COMPRESSED
    with pytest.raises(ValueError, match="binarized layers differ"):  # the layout is checked even when allowed
        create_compressed_model(seeded(TinyResNet()), _now(ignored_scopes=["stem", "conv1"]), compression_state=state,
                                allow_config_change=True)


@pytest.mark.parametrize("rule", ["mse", "top_fraction"])
def test_activation_scale_init_comes_from_the_config(rule: str) -> None:
    from netsculpt.algorithms.binarization.modules import ActivationBinarizer, top_fraction_scale

    cfg = _now() if rule == "mse" else _now(activation_scale_init=rule)
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    bins = [m for m in model.modules() if isinstance(m, ActivationBinarizer)]
    assert bins and {b.scale_init for b in bins} == {rule}  # "mse" is the default
    ctrl.scheduler.epoch_step()
    x = torch.relu(torch.randn(64, bins[0].num_channels, 4, 4, generator=torch.Generator().manual_seed(0)))
    bins[0].train()
    bins[0](x)
    start = top_fraction_scale(x)
    expected = mse_scale(x, start) if rule == "mse" else start
    assert float(bins[0].scale.detach()) == pytest.approx(expected, rel=1e-5)


def test_unknown_activation_scale_init_is_a_located_error() -> None:
    from netsculpt.errors import ConfigError

    with pytest.raises(ConfigError, match="activation_scale_init"):
        create_compressed_model(seeded(TinyResNet()), _now(activation_scale_init="median"))
