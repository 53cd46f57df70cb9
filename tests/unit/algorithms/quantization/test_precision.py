"""Mixed precision (initializer.precision): Hutchinson traces, the HAWQ search, manual and random bits."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tests.zoo import TinyResNet, seeded
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import ConfigError, NNCFConfig, StateError, create_compressed_model, register_default_init_args
from netsculpt.algorithms.quantization.precision.hessian import Batch, hutchinson_traces
from netsculpt.algorithms.quantization.precision.search import (
    compression_ratio,
    count_monotone,
    hawq_search,
    monotone_configs,
    random_search,
)
from netsculpt.metrics.macs import count_macs

SIZE = [1, 3, 8, 8]


def _loader(n: int = 32) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)), batch_size=16)


def _config(precision: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "input_info": {"sample_size": SIZE},
        "compression": {
            "algorithm": "quantization",
            "initializer": {"precision": precision, "batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
        },
        **extra,
    }


def _weight_bits(ctrl: Any) -> dict[str, int]:
    return {i.target: i.export_bits for i in ctrl.child_ctrls[0].infos if i.group == "weights"}


def _ratio(model: nn.Module, ctrl: Any) -> float:
    per_module = count_macs(model, ctrl.example_inputs).per_module
    bits = _weight_bits(ctrl)
    flops = [per_module[name.rsplit(".", 1)[0]] for name in bits]
    return float(compression_ratio(flops, list(bits.values()))[0])


# ----------------------------------------------------------------------------- Hutchinson
def test_hutchinson_matches_the_exact_hessian_trace() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x, y = torch.randn(16, 3), torch.randn(16, 2)
    loss_fn = nn.MSELoss()
    names = ["0.weight", "2.weight"]
    params = dict(model.named_parameters())
    exact = {}
    for name in names:

        def loss_of(w: torch.Tensor, name: str = name) -> torch.Tensor:
            return loss_fn(functional_call(model, {**params, name: w}, (x,)), y)

        h = torch.autograd.functional.hessian(loss_of, params[name].detach())
        n = params[name].numel()
        exact[name] = float(h.reshape(n, n).diagonal().sum()) / n
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = hutchinson_traces(
        model, {n: params[n] for n in names}, [Batch((x,), {}, y, 16)], loss_fn, iter_number=400, tolerance=0.0
    )
    assert result.iterations == 400
    for name in names:
        assert result.traces[name] == pytest.approx(exact[name], rel=0.08), name
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert model.training


def test_hutchinson_stops_at_the_tolerance() -> None:
    model = nn.Linear(3, 1)  # MSE on a linear layer: v^T H v is the same for every v only in 1-D; use tolerance
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    result = hutchinson_traces(
        model, {"weight": model.weight}, [Batch((x,), {}, y, 8)], nn.MSELoss(), iter_number=500, tolerance=0.05
    )
    assert 1 < result.iterations < 500 and result.converged


# ----------------------------------------------------------------------------- search
@pytest.mark.parametrize(("layers", "bits", "expected"), [(19, 3, 210), (50, 3, 1326), (4, 2, 5)])
def test_monotone_configuration_count(layers: int, bits: int, expected: int) -> None:
    assert count_monotone(layers, bits) == expected
    if layers < 30:
        configs = monotone_configs(layers, [2, 4, 8][:bits])
        assert len(configs) == expected
        assert (np.diff(configs, axis=1) >= 0).all()


def test_hawq_search_respects_the_ratio_and_gives_low_bits_to_low_traces() -> None:
    traces = [5.0, 0.1, 1.0, 0.01]
    flops = [100.0, 100.0, 100.0, 100.0]
    pert = np.array([[16.0, 1.0], [16.0, 1.0], [16.0, 1.0], [16.0, 1.0]])  # (L, [4, 8])
    choice = hawq_search(traces, pert, flops, [4, 8], target=1.3)
    assert choice.ratio >= 1.3
    assert choice.bits == (8, 4, 8, 4)  # the two lowest-trace layers go to 4 bits (ratio 1.333)
    all4 = hawq_search(traces, pert, flops, [4, 8], target=2.0)
    assert all4.bits == (4, 4, 4, 4)
    assert hawq_search(traces, pert, flops, [4, 8], target=1.0).bits == (8, 8, 8, 8)
    with pytest.raises(ConfigError, match="cannot be reached"):
        hawq_search(traces, pert, flops, [4, 8], target=2.5)


def test_strict_mode_keeps_groups_equal() -> None:
    traces, flops = [0.01, 5.0, 1.0], [100.0, 100.0, 100.0]
    pert = np.array([[16.0, 1.0]] * 3)
    free = hawq_search(traces, pert, flops, [4, 8], target=1.2)
    assert free.bits == (4, 8, 8)
    strict = hawq_search(traces, pert, flops, [4, 8], target=1.2, groups=[[0, 1]], strict=True)
    # layers 0 and 1 share an input quantizer: among the monotone sequences along the trace order only
    # all-4 and all-8 give them equal bits
    assert strict.bits == (4, 4, 4)
    assert strict.ratio >= 1.2


def test_random_search_is_seeded_and_meets_the_ratio() -> None:
    flops = [float(f) for f in range(1, 11)]
    a = random_search(flops, [2, 4, 8], 1.5, seed=3)
    b = random_search(flops, [2, 4, 8], 1.5, seed=3)
    assert a == b and a.ratio >= 1.5
    assert random_search(flops, [2, 4, 8], 1.5, seed=4).bits != a.bits


# ----------------------------------------------------------------------------- end to end
def test_hawq_on_a_model_meets_the_ratio_and_leaves_weights_untouched() -> None:
    model = seeded(TinyResNet())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = register_default_init_args(
        _config({"type": "hawq", "bits": [4, 8], "compression_ratio": 1.3, "iter_number": 5, "num_data_points": 16}),
        _loader(),
        criterion=nn.CrossEntropyLoss(),
    )
    ctrl, model = create_compressed_model(model, cfg)
    bits = _weight_bits(ctrl)
    assert set(bits.values()) == {4, 8}
    assert _ratio(model, ctrl) >= 1.3
    for k, v in before.items():
        assert torch.equal(model.state_dict()[k], v), k
    infos = {i.key: i for i in ctrl.child_ctrls[0].infos}
    for i in infos.values():
        if i.group == "weights" and i.export_bits == 4:
            assert i.bits == 4
        if i.group == "weights" and i.export_bits == 8:
            assert i.bits == 7  # the overflow fix still applies to 8-bit weights
    assert ctrl.statistics().as_dict()["quantization"]["weights_4bit"] >= 1
    # the activation quantizer feeding a layer never has more bits than the lowest weight it feeds
    assert infos["a:input0"].export_bits == bits["stem.weight"]


def test_manual_bits_per_scope() -> None:
    cfg = _config({"type": "manual", "bitwidth_per_scope": [[4, "conv1"], [2, "{re}^fc$"], [4, "a:input0"]]})
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), cfg)
    bits = _weight_bits(ctrl)
    assert bits == {"stem.weight": 8, "conv1.weight": 4, "conv2.weight": 8, "fc.weight": 2}
    assert {i.key: i.export_bits for i in ctrl.child_ctrls[0].infos}["a:input0"] == 4


def test_manual_scope_matching_nothing_is_an_error() -> None:
    with pytest.raises(ConfigError, match="matched no quantizer"):
        create_compressed_model(seeded(TinyResNet()), _config({"type": "manual", "bitwidth_per_scope": [[4, "conv9"]]}))


def test_random_meets_the_ratio() -> None:
    ctrl, model = create_compressed_model(
        seeded(TinyResNet()), _config({"type": "random", "bits": [2, 4, 8], "compression_ratio": 1.5, "seed": 1})
    )
    assert _ratio(model, ctrl) >= 1.5


def test_hawq_without_a_criterion_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="criterion"):
        create_compressed_model(seeded(TinyResNet()), _config({"type": "hawq"}))


def test_traces_dump_and_reuse(tmp_path: Path) -> None:
    precision = {"type": "hawq", "bits": [4, 8], "compression_ratio": 1.3, "iter_number": 3, "num_data_points": 16, "dump_init_precision_data": True}
    cfg = register_default_init_args(_config(precision, log_dir=str(tmp_path)), _loader(), criterion=nn.CrossEntropyLoss())
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), cfg)
    dump = tmp_path / "hawq_dumps" / "precision_init.json"
    data = json.loads(dump.read_text())
    assert set(data["traces"]) == set(_weight_bits(ctrl))
    reuse = {**precision, "dump_init_precision_data": False, "traces_per_layer_path": str(dump)}
    ctrl2, _ = create_compressed_model(seeded(TinyResNet()), _config(reuse))  # no criterion needed
    assert _weight_bits(ctrl2) == _weight_bits(ctrl)


def test_resume_keeps_the_chosen_bits_without_recomputing() -> None:
    cfg = _config({"type": "random", "bits": [2, 4, 8], "compression_ratio": 1.6, "seed": 2})
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    state = ctrl.get_compression_state()
    changed = _config({"type": "random", "bits": [2, 4, 8], "compression_ratio": 1.6, "seed": 5})
    with pytest.raises(StateError, match=r"initializer\.precision\.seed \(saved 2, now 5\)"):
        create_compressed_model(seeded(TinyResNet()), changed, compression_state=state)
    ctrl2, model2 = create_compressed_model(seeded(TinyResNet()), changed, compression_state=state,
                                            allow_config_change=True)
    assert _weight_bits(ctrl2) == _weight_bits(ctrl)
    model2.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(model.eval()(x), model2.eval()(x))


@pytest.mark.parametrize(
    ("precision", "match"),
    [
        ({"type": "manual"}, "bitwidth_per_scope"),
        ({"type": "hawq", "bits": [1, 8]}, r"bits: must be"),
        ({"type": "manual", "bitwidth_per_scope": [["conv1", 4]]}, r"bitwidth_per_scope\[0\]"),
        ({"type": "autoq"}, "autoq"),
        ({"type": "hawq", "bitwidth_assignment_mode": "loose"}, "must be one of"),
        ({"bits": [4, 8]}, "type .manual. needs a list"),  # type defaults to manual, as in NNCF
    ],
)
def test_config_errors(precision: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        NNCFConfig.from_dict(_config(precision))


@pytest.mark.slow
@pytest.mark.onnx
def test_mixed_precision_exports_and_runs_in_onnx_runtime(tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    cfg = register_default_init_args(
        _config({"type": "manual", "bitwidth_per_scope": [[4, "conv1"], [4, "conv2"]]}), _loader()
    )
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), cfg)
    path = ctrl.export_model(tmp_path / "mp.onnx")  # checks ONNX Runtime against torch
    proto = onnx.load(str(path))
    ints = [numpy_helper.to_array(t) for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    small = [a for a in ints if a.size > 8 and np.abs(a).max() <= 7]
    assert len(small) >= 2  # the two 4-bit convs: int8 containers holding a 4-bit grid
    assert math.isfinite(float(np.abs(ints[0]).max()))
