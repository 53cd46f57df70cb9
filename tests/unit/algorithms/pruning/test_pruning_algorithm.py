"""filter_pruning end to end: schedule-driven masks, compression_rate, state round trip, int8 export via ORT."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.unit.algorithms.pruning._helpers import X, rel
from tests.unit.algorithms.pruning._zoo import ResidualNet, seeded

from netsculpt import create_compressed_model
from netsculpt.algorithms.pruning.schedule import level_at
from netsculpt.errors import ConfigError, NotSupportedYetError
from netsculpt.graph import get_runtime


def _cfg(**params: Any) -> dict[str, Any]:
    return {
        "input_info": {"sample_size": list(X.shape)},
        "compression": {"algorithm": "filter_pruning", "params": {"prune_first_conv": True, **params}},
    }


def _kept(ctrl: Any) -> dict[str, int]:
    return dict(ctrl.statistics().as_dict()["filter_pruning"]["remaining_channels"])


def test_epoch_steps_follow_the_schedule() -> None:
    ctrl, model = create_compressed_model(
        seeded(ResidualNet()), _cfg(pruning_target=0.5, pruning_steps=3, num_init_steps=1), example_inputs=(X,)
    )
    assert _kept(ctrl)["c1.0"] == 8
    for epoch in range(5):
        ctrl.scheduler.epoch_step()
        expected = level_at(epoch, "exponential", 0.0, 0.5, 3, 1)
        assert ctrl.compression_rate == pytest.approx(expected)
        assert _kept(ctrl)["c1.0"] == 8 - int(8 * expected + 1e-9)
    assert ctrl.compression_stage().name == "FULLY_COMPRESSED"


def test_compression_rate_setter_reselects_masks() -> None:
    ctrl, model = create_compressed_model(seeded(ResidualNet()), _cfg(), example_inputs=(X,))
    ctrl.compression_rate = 0.25
    assert ctrl.compression_rate == 0.25 and _kept(ctrl)["c1.0"] == 6
    ctrl.compression_rate = 0.75
    assert _kept(ctrl)["c1.0"] == 2
    masked = model(X)
    assert rel(ctrl.strip()(X), masked) <= 1e-5


def test_state_round_trip() -> None:
    ctrl, model = create_compressed_model(seeded(ResidualNet()), _cfg(), example_inputs=(X,))
    ctrl.compression_rate = 0.5
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))  # "training": the resumed ranking would differ from the initial one
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "state": ctrl.get_compression_state()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    ctrl2, model2 = create_compressed_model(
        seeded(ResidualNet(), seed=3), _cfg(), compression_state=ckpt["state"], example_inputs=(X,)
    )
    model2.load_state_dict(ckpt["model"])
    assert ctrl2.compression_rate == 0.5
    assert torch.equal(model2(X), model(X))
    assert _kept(ctrl2) == _kept(ctrl)


def test_learned_ranking_without_data_and_both_targets_are_rejected() -> None:
    with pytest.raises(ConfigError, match="learned_ranking.*register_default_init_args") as err:
        create_compressed_model(
            seeded(ResidualNet()), _cfg(interlayer_ranking_type="learned_ranking"), example_inputs=(X,)
        )
    assert not isinstance(err.value, NotSupportedYetError)  # LeGR is supported; it needs data
    with pytest.raises(ConfigError, match="either pruning_target or pruning_flops_target"):
        create_compressed_model(
            seeded(ResidualNet()), _cfg(pruning_target=0.3, pruning_flops_target=0.3), example_inputs=(X,)
        )


def test_unmatched_scope_is_an_error_and_leaves_the_model() -> None:
    from netsculpt.errors import UnsupportedModelError

    model = seeded(ResidualNet())
    cfg = _cfg()
    cfg["compression"]["ignored_scopes"] = ["c9"]
    with pytest.raises(UnsupportedModelError, match="ignored_scopes: 'c9' matched no module"):
        create_compressed_model(model, cfg, example_inputs=(X,))
    assert get_runtime(model) is None


def test_defaults_skip_first_and_downsample_convs() -> None:
    cfg = {
        "input_info": {"sample_size": list(X.shape)},
        "compression": {"algorithm": "filter_pruning", "pruning_init": 0.5},
    }
    ctrl, _ = create_compressed_model(seeded(ResidualNet()), cfg, example_inputs=(X,))
    kept = _kept(ctrl)
    assert kept["stem.0"] == 8 and kept["c2.0"] == 8  # first conv's residual group stays
    assert kept["c3.0"] == 12 and kept["c4.0"] == 12  # stride-2 projection's group stays
    assert kept["c1.0"] == 4


@pytest.mark.onnx
def test_pruning_plus_int8_export_runs_in_ort(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort

    cfg = {
        "input_info": {"sample_size": list(X.shape)},
        "compression": [
            {"algorithm": "quantization", "weights": {"per_channel": True}},
            {
                "algorithm": "filter_pruning",
                "pruning_init": 0.5,
                "params": {"prune_first_conv": True, "prune_downsample_convs": True},
            },
        ],
    }
    ctrl, model = create_compressed_model(seeded(ResidualNet()), cfg, example_inputs=(X,))
    rt = get_runtime(model)
    assert rt is not None and rt.ops["w:c1:0:weight"].scale.shape == (8,)
    model.eval()
    masked = model(X).detach()
    path = ctrl.export_model(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    weights = {i.name: tuple(i.dims) for i in proto.graph.initializer}
    assert weights["c1.0.weight_quantized"] == (4, 4, 3, 3)
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and "BatchNormalization" not in ops
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: X.numpy()})[0]
    assert np.abs(out - masked.numpy()).max() <= 1e-3 * max(1.0, float(np.abs(masked.numpy()).max()))


@pytest.mark.parametrize("importance", ["L1", "geometric_median"])
def test_global_ranking_prunes_the_overall_share(importance: str) -> None:
    cfg = _cfg(all_weights=True, prune_downsample_convs=True, filter_importance=importance)
    cfg["compression"]["pruning_init"] = 0.5
    ctrl, model = create_compressed_model(seeded(ResidualNet()), cfg, example_inputs=(X,))
    part = ctrl.child_ctrls[0]
    total = sum(len(g.units) for g in part.pg.groups)
    pruned = sum(len(p) for p in part._pruned)
    assert pruned == total // 2
    assert len({len(p) / len(g.units) for p, g in zip(part._pruned, part.pg.groups)}) > 1  # not uniform
    masked = model(X)
    assert rel(ctrl.strip()(X), masked) <= 1e-5


def test_target_scopes_that_cannot_be_pruned_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 10 finding 8: targeting only unprunable layers is an error; some of them, a warning naming each."""
    from tests.zoo import TinyResNet

    def cfg(targets: list[str]) -> dict[str, Any]:
        return {"input_info": {"sample_size": [1, 3, 8, 8]},
                "compression": {"algorithm": "filter_pruning", "pruning_init": 0.3, "target_scopes": targets}}

    with pytest.raises(ConfigError, match=r"compression\.target_scopes: none of the 1 targeted layers.*fc \(model out"):
        create_compressed_model(TinyResNet(), cfg(["fc"]))
    with caplog.at_level("WARNING"):
        create_compressed_model(TinyResNet(), cfg(["conv1", "fc"]))
    assert "1 of 2 targeted layers will not be pruned: fc (model output)" in caplog.text
