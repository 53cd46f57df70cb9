"""Sparsity + INT8 quantization: masks before quantizers, training, state round trip, strip, ONNX export."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch
from onnx import numpy_helper
from tests.zoo import TinyResNet, seeded
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_compressed_model, load_state, register_default_init_args
from netsculpt.errors import ConfigError
from netsculpt.export import check_onnx
from netsculpt.graph import get_runtime

SIZE = [1, 3, 8, 8]
QUANT = {"algorithm": "quantization", "weights": {"per_channel": True},
         "initializer": {"range": {"num_init_samples": 32}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 0}}}
SPARSE = {
    "magnitude_sparsity": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5,
                           "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}}},
    "rb_sparsity": {"algorithm": "rb_sparsity", "sparsity_init": 0.5, "params": {"sparsity_freeze_epoch": 1}},
}


def _loader(n: int = 48) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)),
                      batch_size=16)


def _compress(sparse: str, quant_first: bool = False) -> tuple[Any, torch.nn.Module, dict[str, Any]]:
    algos = [QUANT, SPARSE[sparse]] if quant_first else [SPARSE[sparse], QUANT]
    cfg = register_default_init_args({"input_info": {"sample_size": SIZE}, "compression": algos}, _loader())
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    return ctrl, model, cfg


def _train(ctrl: Any, model: torch.nn.Module, epochs: int = 2) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    for _ in range(epochs):
        ctrl.scheduler.epoch_step()
        for x, y in _loader():
            ctrl.scheduler.step()
            loss = torch.nn.functional.cross_entropy(model(x), y) + ctrl.loss()
            assert torch.isfinite(loss)
            opt.zero_grad()
            loss.backward()
            opt.step()


@pytest.mark.parametrize("quant_first", [False, True], ids=["sparsity-first", "quantization-first"])
def test_masks_run_before_weight_quantizers_whatever_the_list_order(quant_first: bool) -> None:
    _, model, _ = _compress("magnitude_sparsity", quant_first)
    rt = get_runtime(model)
    assert rt is not None
    chains = [chain for args in rt.pre_hooks.values() for chain in args.values()]
    assert len(chains) == 4
    for chain in chains:
        assert [key.split(":")[0] for _, key in chain] == ["s", "w"], chain


@pytest.mark.parametrize("sparse", ["magnitude_sparsity", "rb_sparsity"])
def test_train_state_round_trip_and_strip(sparse: str) -> None:
    ctrl, model, cfg = _compress(sparse)
    _train(ctrl, model)
    stats = ctrl.statistics().as_dict()
    assert set(stats) == {sparse, "quantization"}
    state, sd = ctrl.get_compression_state(), copy.deepcopy(model.state_dict())
    ctrl2, model2 = create_compressed_model(seeded(TinyResNet()), cfg, compression_state=state)
    load_state(model2, sd, is_resume=True)
    x = torch.randn(8, 3, 8, 8)
    model.eval()
    model2.eval()
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(model2(x), expected)
        stripped = ctrl2.strip()
        assert torch.allclose(stripped(x), expected, atol=1e-5)
    rt = get_runtime(stripped)
    assert rt is not None and not any(k.startswith("s:") for k in rt.ops)
    weights = [p for p in stripped.parameters() if p.dim() > 1]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros >= stats[sparse]["sparsity_level_for_layers"] - 1e-6


@pytest.mark.onnx
def test_onnx_export_of_sparse_int8_model_agrees_with_pytorch(tmp_path: Path) -> None:
    ctrl, model, _ = _compress("magnitude_sparsity")
    _train(ctrl, model, epochs=1)
    model.eval()
    path = ctrl.export_model(tmp_path / "m.onnx")
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    res = check_onnx(path, model, (x,))
    assert res.top1_agreement >= 0.96, res
    assert res.max_abs_diff <= 0.05 * res.output_max, res
    proto = onnx.load(str(path))
    int8 = [numpy_helper.to_array(i) for i in proto.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert int8, "weights must be stored as int8"
    zero_fraction = sum(int((w == 0).sum()) for w in int8) / sum(w.size for w in int8)
    assert zero_fraction >= 0.5 - 1e-3  # the masked weights are exact integer zeros
    assert "BatchNormalization" not in [n.op_type for n in proto.graph.node]


def test_two_sparsity_algorithms_in_one_stack_are_rejected() -> None:
    model = seeded(TinyResNet())
    before = copy.deepcopy(model.state_dict())
    cfg = {"input_info": {"sample_size": SIZE},
           "compression": [{"algorithm": "magnitude_sparsity"}, {"algorithm": "const_sparsity"}]}
    with pytest.raises(ConfigError, match="'magnitude_sparsity' and 'const_sparsity' both mask the same weights"):
        create_compressed_model(model, cfg)
    assert get_runtime(model) is None
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@pytest.mark.onnx
def test_onnx_export_of_sparse_float_model_is_a_plain_model_with_zeros(tmp_path: Path) -> None:
    cfg = {"input_info": {"sample_size": SIZE}, "compression": SPARSE["magnitude_sparsity"]}
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    model.eval()
    path = ctrl.export_model(tmp_path / "m.onnx")
    res = check_onnx(path, model, (torch.randn(8, 3, 8, 8),))
    assert res.max_abs_diff < 1e-4, res
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "QuantizeLinear" not in ops and "BatchNormalization" not in ops
