"""Quantization end to end on tiny models: init, schedule, state round trip, strip, failure safety."""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, seeded
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import CompressionStage, create_compressed_model, load_state, register_default_init_args
from netsculpt.graph import get_runtime

SIZE = [1, 3, 8, 8]


def _loader(n: int = 64, seed: int = 0) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=16)


def _config(**quant: Any) -> dict[str, Any]:
    return {"input_info": {"sample_size": SIZE}, "compression": {"algorithm": "quantization", **quant}}


def _train(model: torch.nn.Module, ctrl: Any, steps: int = 4) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    for i, (x, y) in enumerate(_loader()):
        if i >= steps:
            break
        ctrl.scheduler.step()
        loss = torch.nn.functional.cross_entropy(model(x), y) + ctrl.loss()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_range_init_uses_data_and_sets_signedness() -> None:
    loader = _loader()
    cfg = register_default_init_args(
        _config(
            initializer={
                "range": {"type": "min_max", "num_init_samples": 32},
                "batchnorm_adaptation": {"num_bn_adaptation_samples": 0},
            }
        ),
        loader,
    )
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    rt = get_runtime(model)
    assert rt is not None
    seen = torch.cat([x for i, (x, _) in enumerate(loader) if i < 2])
    q_in = rt.ops["a:input0"]
    assert q_in.signed
    assert torch.allclose(q_in.scale.abs(), seen.abs().max(), rtol=1e-6)
    assert not rt.ops["a:<root>/relu_0"].signed


def test_bn_adaptation_changes_running_statistics_and_weights_are_untouched() -> None:
    model = seeded(TinyResNet())
    weights_before = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k}
    mean_before = model.bn1.running_mean.clone()
    cfg = register_default_init_args(_config(), _loader())
    create_compressed_model(model, cfg)
    assert not torch.allclose(model.bn1.running_mean, mean_before)
    for k, v in weights_before.items():
        if "num_batches" not in k:
            assert torch.equal(model.state_dict()[k], v), k


def test_staged_schedule_enables_activations_then_weights() -> None:
    ctrl, model = create_compressed_model(
        seeded(TinyResNet()), _config(params={"activations_quant_start_epoch": 1, "weights_quant_start_epoch": 2})
    )
    rt = get_runtime(model)
    assert rt is not None

    def enabled(prefix: str) -> set[bool]:
        return {bool(m.enabled) for k, m in rt.ops.items() if k.startswith(prefix)}

    seen = []
    for _ in range(3):
        ctrl.scheduler.epoch_step()
        seen.append((enabled("a:"), enabled("w:"), ctrl.compression_stage()))
    assert seen == [
        ({False}, {False}, CompressionStage.UNCOMPRESSED),
        ({True}, {False}, CompressionStage.PARTIALLY_COMPRESSED),
        ({True}, {True}, CompressionStage.FULLY_COMPRESSED),
    ]


def test_staged_schedule_drives_lr_and_weight_decay() -> None:
    ctrl, model = create_compressed_model(
        seeded(TinyResNet()),
        _config(
            params={
                "lr_poly_drop_start_epoch": 1,
                "lr_poly_drop_duration_epochs": 2,
                "disable_wd_start_epoch": 1,
                "base_lr": 0.1,
                "base_wd": 1e-4,
            }
        ),
    )
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = ctrl.child_ctrls[0].scheduler
    sched.attach_optimizer(opt)  # type: ignore[attr-defined]
    ctrl.scheduler.epoch_step()  # epoch 0
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1) and opt.param_groups[0]["weight_decay"] == pytest.approx(
        1e-4
    )
    ctrl.scheduler.epoch_step()  # epoch 1: drop starts, t = 1 -> ((1 + 2 - 1) / 2)^2.1 = 1
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1) and opt.param_groups[0]["weight_decay"] == 0.0
    ctrl.scheduler.epoch_step()  # epoch 2: ((3 - 2) / 2)^2.1
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**2.1)


def test_state_round_trip_gives_identical_outputs() -> None:
    cfg = register_default_init_args(_config(weights={"per_channel": True}), _loader())
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    ctrl.scheduler.epoch_step()
    _train(model, ctrl)
    buf = io.BytesIO()
    torch.save({"model_state": model.state_dict(), "compression_state": ctrl.get_compression_state()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    ctrl2, model2 = create_compressed_model(
        seeded(TinyResNet(), seed=5),
        _config(weights={"per_channel": True}),
        compression_state=ckpt["compression_state"],
    )
    assert load_state(model2, ckpt["model_state"], is_resume=True) == len(ckpt["model_state"])
    x = torch.randn(4, 3, 8, 8)
    model.eval()
    model2.eval()
    assert torch.equal(model(x), model2(x))
    assert (
        ctrl2.scheduler.current_epoch == ctrl.scheduler.current_epoch
        or ctrl2.child_ctrls[0].scheduler.current_epoch == 0
    )


def test_fp32_checkpoint_loads_into_compressed_model() -> None:
    fp32 = seeded(TinyResNet())
    sd = copy.deepcopy(fp32.state_dict())
    _, model = create_compressed_model(seeded(TinyResNet(), seed=3), _config())
    assert load_state(model, sd, is_resume=False) == len(sd)
    with pytest.raises(ValueError, match="resuming needs an exact match"):
        load_state(model, sd, is_resume=True)


def test_strip_returns_same_class_with_identical_outputs() -> None:
    cfg = register_default_init_args(_config(weights={"per_channel": True}), _loader())
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    model.eval()
    x = torch.randn(8, 3, 8, 8)
    stripped = ctrl.strip(do_copy=True)
    assert type(stripped) is TinyResNet
    assert torch.equal(model(x), stripped(x))
    assert not any(p.requires_grad is False for p in model.parameters())  # the original is untouched
    n_native = sum(type(m).__name__ == "NativeFakeQuantize" for m in stripped.modules())
    assert n_native == len(ctrl.child_ctrls[0].infos)  # type: ignore[attr-defined]


def test_failure_during_apply_leaves_model_untouched() -> None:
    class Broken(DataLoader[Any]):
        def __iter__(self) -> Any:
            raise RuntimeError("data source failed")

    model = seeded(TinyResNet())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = register_default_init_args(_config(), Broken(TensorDataset(torch.zeros(1))))
    with pytest.raises(RuntimeError, match="data source failed"):
        create_compressed_model(model, cfg)
    assert get_runtime(model) is None
    assert set(model.state_dict()) == set(before)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_statistics_table_and_dict() -> None:
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), _config())
    stats = ctrl.statistics()
    d = stats.as_dict()["quantization"]
    assert d["num_weights_quantizers"] == 4 and d["weights_8bit"] == 4
    assert d["quantized_weights_int_MB"] == pytest.approx(d["quantized_weights_fp32_MB"] / 4)
    assert "Statistics of quantization" in str(stats)
    assert ctrl.loss().item() == 0.0
