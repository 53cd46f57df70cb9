"""HookRuntime on containers: a compressed nn.Sequential still runs, counts and indexes only its own layers."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_compressed_model, register_default_init_args
from netsculpt.export import check_onnx
from netsculpt.graph.hooks import detach_runtime, get_runtime


class MySequential(nn.Sequential):
    """A user's Sequential subclass that adds nothing but its name."""


def _layers() -> list[nn.Module]:
    torch.manual_seed(0)
    return [
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    ]


def _compress(model: nn.Module, algo: dict[str, Any]) -> Any:
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(x, torch.zeros(32, dtype=torch.long)), batch_size=16)
    cfg = register_default_init_args({"input_info": {"sample_size": [1, 3, 8, 8]}, "compression": algo}, loader)
    return create_compressed_model(model, cfg)


QUANT = {"algorithm": "quantization", "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}}}


@pytest.mark.parametrize("cls", [nn.Sequential, MySequential])
def test_compressed_sequential_runs_and_keeps_its_layers(cls: type[nn.Sequential]) -> None:
    model = cls(*_layers())
    ctrl, qmodel = _compress(model, QUANT)
    assert qmodel is model and isinstance(model, cls) and type(model).__name__ == cls.__name__
    assert get_runtime(model) is not None
    assert len(model) == 8 and isinstance(model[-1], nn.Linear) and isinstance(model[0], nn.Conv2d)
    assert [type(m) for m in model] == [type(m) for m in _layers()]
    head = model[:2]
    assert type(head) is cls and len(head) == 2
    x = torch.randn(4, 3, 8, 8)
    out = model.eval()(x)
    assert out.shape == (4, 10)
    # The quantizers really run: the output differs from the same layers without compression.
    plain = cls(*_layers()).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if "_netsculpt" not in k})
    assert not torch.equal(plain(x), out)
    assert torch.allclose(plain(x), out, atol=0.1 * float(out.detach().abs().max()))


def test_compressed_sequential_survives_deepcopy_pickle_and_detach() -> None:
    model = nn.Sequential(*_layers())
    ctrl, model = _compress(model, QUANT)
    model.eval()
    x = torch.randn(4, 3, 8, 8)
    ref = model(x)
    twin = copy.deepcopy(model)
    assert torch.equal(twin(x), ref) and len(twin) == 8
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert torch.equal(loaded(x), ref) and isinstance(loaded, nn.Sequential)
    detach_runtime(twin)
    assert type(twin) is nn.Sequential and get_runtime(twin) is None
    assert "_netsculpt" not in dict(twin.named_children())


def test_compressed_sequential_exports_to_onnx(tmp_path: Path) -> None:
    ctrl, model = _compress(nn.Sequential(*_layers()), QUANT)
    path = ctrl.export_model(tmp_path / "seq.onnx")
    res = check_onnx(path, model.eval(), (torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(2)),))
    assert res.top1_agreement >= 0.9, res


def test_pruned_sequential_is_physically_smaller() -> None:
    algo = {"algorithm": "filter_pruning", "pruning_init": 0.5, "params": {"prune_first_conv": True}}
    ctrl, model = _compress(nn.Sequential(*_layers()), algo)
    model.eval()
    x = torch.randn(4, 3, 8, 8)
    masked = model(x)
    pruned = ctrl.strip()
    assert pruned[0].out_channels < 8
    torch.testing.assert_close(pruned(x), masked, rtol=1e-5, atol=1e-5)
