"""Stacks of algorithms: training together, state round trip, statistics, and pairs that cannot share a layer."""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from tests.zoo import TinyResNet, seeded
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import CompressionStage, ConfigError, create_compressed_model, register_default_init_args
from netsculpt.algorithms.stacking import check_stack
from netsculpt.config.binarization import BinarizationConfig
from netsculpt.graph import get_runtime

SIZE = [1, 3, 8, 8]
NOW = {"activations_quant_start_epoch": 0, "weights_quant_start_epoch": 0}
BIN = {"algorithm": "binarization", "ignored_scopes": ["stem"], "params": NOW}
KD = {"algorithm": "knowledge_distillation", "type": "softmax", "temperature": 2.0}
QUANT = {
    "algorithm": "quantization",
    "ignored_scopes": ["conv1", "conv2"],
    "initializer": {"range": {"num_init_samples": 16}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
}


def _loader(n: int = 48) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)), 16)


def _config(*algos: dict[str, Any]) -> Any:
    return register_default_init_args({"input_info": {"sample_size": SIZE}, "compression": list(algos)}, _loader())


def _train(model: torch.nn.Module, ctrl: Any) -> list[float]:
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    kd = []
    for x, y in _loader():
        ctrl.scheduler.step()
        loss = F.cross_entropy(model(x), y)
        comp = ctrl.loss()  # after the forward: the distillation term of this batch
        kd.append(float(comp.detach()))
        opt.zero_grad()
        (loss + comp).backward()
        opt.step()
    return kd


@pytest.mark.parametrize(
    "stack", [(BIN, KD), (QUANT, KD), (KD, QUANT, BIN)], ids=["bin+kd", "quant+kd", "kd+quant+bin"]
)
def test_stack_trains_together(stack: tuple[dict[str, Any], ...]) -> None:
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _config(*stack))
    ctrl.scheduler.epoch_step()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    kd = _train(model, ctrl)
    assert all(v > 0 and v == v for v in kd)
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert "conv1.weight" in changed and "fc.weight" in changed
    if BIN in stack:
        assert {"_netsculpt.ops.ba:conv1.log_scale", "_netsculpt.ops.ba:conv1.threshold"} <= changed
    if QUANT in stack:
        assert any(".ops.w:" in n for n in changed)  # quantizer scales train too


def test_stack_state_round_trip_gives_identical_outputs_and_distillation_loss() -> None:
    stack = (QUANT, BIN, KD)
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _config(*stack))
    ctrl.scheduler.epoch_step()
    _train(model, ctrl)
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "compression_state": ctrl.get_compression_state()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    # As with NNCF, the teacher is copied from the model passed in: pass the same uncompressed weights.
    plain = {"input_info": {"sample_size": SIZE}, "compression": list(stack)}
    ctrl2, model2 = create_compressed_model(seeded(TinyResNet()), plain, compression_state=ckpt["compression_state"])
    model2.load_state_dict(ckpt["state_dict"])
    x = torch.randn(8, 3, 8, 8)
    model.eval()
    model2.eval()
    assert torch.equal(model(x), model2(x))
    assert ctrl2.scheduler.get_state() == ctrl.scheduler.get_state()
    model.train()
    model2.train()
    model(x)
    model2(x)
    assert torch.equal(ctrl.loss(), ctrl2.loss())


def test_statistics_and_compression_stage_cover_every_part() -> None:
    bin_default = {**BIN, "params": {}}  # NNCF default: binarization starts at epoch 1
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), _config(QUANT, bin_default, KD))
    stats = ctrl.statistics().as_dict()
    assert list(stats) == ["quantization", "binarization", "knowledge_distillation"]
    assert stats["binarization"]["num_binarized_layers"] == 2
    assert "Statistics of knowledge_distillation" in str(ctrl.statistics())
    stages = []
    for _ in range(2):
        ctrl.scheduler.epoch_step()
        stages.append([p.compression_stage() for p in ctrl.child_ctrls] + [ctrl.compression_stage()])
    full, partial, none = (
        CompressionStage.FULLY_COMPRESSED,
        CompressionStage.PARTIALLY_COMPRESSED,
        CompressionStage.UNCOMPRESSED,
    )
    assert stages == [[full, none, full, partial], [full, full, full, full]]


@pytest.mark.parametrize(
    ("quant", "shared"),
    [
        ({"algorithm": "quantization"}, "conv1 (weights and inputs / weights)"),
        (
            {"algorithm": "quantization", "weights": {"ignored_scopes": ["conv1", "conv2"]}},
            "conv1 (weights and inputs / inputs)",
        ),
    ],
    ids=["weights", "inputs-only"],
)
def test_binarization_and_quantization_on_the_same_conv_are_rejected_untouched(
    quant: dict[str, Any], shared: str
) -> None:
    model = seeded(TinyResNet())
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ConfigError) as info:
        create_compressed_model(model, _config(BIN, quant, KD))
    msg = str(info.value)
    assert "'binarization' and 'quantization' cannot share a layer" in msg and shared in msg
    assert "conv2" in msg and "ignored_scopes" in msg
    assert get_runtime(model) is None
    assert set(model.state_dict()) == set(before)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())


@dataclass
class _Algo:
    name: str


@dataclass
class _Plan:
    layers: dict[str, str] = field(default_factory=dict)

    def touched_layers(self) -> dict[str, str]:
        return self.layers


@pytest.mark.parametrize(
    ("other", "mode", "rejected"),
    [
        ("magnitude_sparsity", "xnor", True),
        ("rb_sparsity", "dorefa", True),
        ("filter_pruning", "dorefa", True),
        ("filter_pruning", "xnor", True),  # channels sliced at strip would change thresholds and scales
        ("knowledge_distillation", "xnor", False),
    ],
    ids=str,
)
def test_conflict_rules(other: str, mode: str, rejected: bool) -> None:
    graph: Any = None  # plans expose touched_layers(), so the graph is not read
    plans = [
        (_Algo("binarization"), BinarizationConfig(mode=mode), _Plan({"conv1": "weights and inputs"})),  # type: ignore[arg-type]
        (_Algo(other), None, _Plan({"conv1": "weights"})),
    ]
    if rejected:
        with pytest.raises(ConfigError, match=f"'binarization' and '{other}' cannot share a layer"):
            check_stack(plans, graph)
    else:
        check_stack(plans, graph)
    check_stack([plans[0], (_Algo(other), None, _Plan({"fc": "weights"}))], graph)  # disjoint layers: allowed
