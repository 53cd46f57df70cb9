"""Non-finite init data (issue 10, finding 2): range init, BN adaptation and range statistics reject NaN/inf with
an error naming the batch, and never write NaN (or a made-up range) into the model."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, seeded
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_compressed_model, register_default_init_args
from netsculpt.algorithms.quantization.init import adapt_batchnorm
from netsculpt.errors import DatasetError, UnsupportedModelError
from netsculpt.graph import get_runtime
from netsculpt.init_args import wrap_loader
from netsculpt.nn.quantizer import AsymmetricQuantizer, SymmetricQuantizer

SIZE = [1, 3, 8, 8]
NO_BN = {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}}
CONFIGS = {
    "quantization-range": {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 64}, **NO_BN}},
    "quantization-bn": {"algorithm": "quantization",
                        "initializer": {"range": {"num_init_samples": 0},
                                        "batchnorm_adaptation": {"num_bn_adaptation_samples": 64}}},
    "magnitude_sparsity": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5,
                           "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 64}}},
    "filter_pruning": {"algorithm": "filter_pruning", "pruning_init": 0.5,
                       "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 64}}},
}


def _loader(bad_batch: int = 2, value: float = float("nan")) -> DataLoader[Any]:
    x = torch.randn(64, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x[bad_batch * 16 + 3, 1, 4, 4] = value
    return DataLoader(TensorDataset(x, torch.zeros(64, dtype=torch.long)), batch_size=16)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(model: nn.Module, snap: dict[str, torch.Tensor]) -> bool:
    sd = model.state_dict()
    return sd.keys() == snap.keys() and all(torch.equal(sd[k], v) for k, v in snap.items())


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_non_finite_init_data_is_an_error_naming_the_batch(name: str, value: float) -> None:
    model = seeded(TinyResNet())
    with torch.no_grad():  # BN statistics of a trained model, which a failed adaptation must not touch
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    snap = _snapshot(model)
    cfg = register_default_init_args({"input_info": {"sample_size": SIZE}, "compression": CONFIGS[name]},
                                     _loader(2, value))
    with pytest.raises(DatasetError, match=r"batch 2 .*non-finite") as err:
        create_compressed_model(model, cfg)
    assert "inputs[0]" in str(err.value)
    assert get_runtime(model) is None and _same(model, snap)


def test_bn_adaptation_restores_statistics_when_the_model_overflows() -> None:
    model = seeded(TinyResNet())
    with torch.no_grad():
        model.stem.weight.mul_(1e38)  # finite inputs, infinite activations
    snap = _snapshot(model)
    with pytest.raises(DatasetError, match=r"BN adaptation: batch 0 .*'bn0'"):
        adapt_batchnorm(model, wrap_loader(_loader(0, 0.0)), 64, torch.device("cpu"))
    assert _same(model, snap)
    assert model.bn0.momentum == 0.1


def test_range_init_reports_non_finite_activations_from_finite_data() -> None:
    model = seeded(TinyResNet())
    with torch.no_grad():
        model.stem.weight.mul_(1e38)
    snap = _snapshot(model)
    cfg = register_default_init_args(
        {"input_info": {"sample_size": SIZE}, "compression": CONFIGS["quantization-range"]}, _loader(0, 0.0))
    with pytest.raises(DatasetError, match=r"range init: batch 0 .*non-finite activation"):
        create_compressed_model(model, cfg)
    assert get_runtime(model) is None and _same(model, snap)


def test_non_finite_weights_are_named() -> None:
    model = seeded(TinyResNet())
    with torch.no_grad():
        model.conv1.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(UnsupportedModelError, match=r"weight 'conv1.weight' has 1 non-finite"):
        create_compressed_model(model, {"input_info": {"sample_size": SIZE}, "compression": {"algorithm": "quantization"}})
    assert get_runtime(model) is None


@pytest.mark.parametrize("q", [SymmetricQuantizer(8, signed=True), AsymmetricQuantizer(8)], ids=["sym", "asym"])
def test_init_range_rejects_non_finite_statistics(q: nn.Module) -> None:
    before = {k: v.clone() for k, v in q.state_dict().items()}
    with pytest.raises(DatasetError, match="non-finite"):
        q.init_range(torch.tensor(float("nan")), torch.tensor(1.0))  # type: ignore[operator]
    assert all(torch.equal(q.state_dict()[k], v) for k, v in before.items())
