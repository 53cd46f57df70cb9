"""User-caused failures that used to escape as raw exceptions are netsculpt errors (issue 10, finding 9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, seeded
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_compressed_model, register_default_init_args
from netsculpt.config.nncf_config import NNCFConfig
from netsculpt.errors import ConfigError, DatasetError, ExportError, NetsculptError
from netsculpt.graph import get_runtime

SIZE = [1, 3, 8, 8]
QUANT = {"input_info": {"sample_size": SIZE}, "compression": {"algorithm": "quantization"}}


@pytest.mark.parametrize("algo", [{"algorithm": "quantization"}, {"algorithm": "magnitude_sparsity"},
                                  {"algorithm": "filter_pruning", "pruning_init": 0.3}],
                         ids=lambda a: a["algorithm"])
def test_second_in_place_strip_and_scheduling_after_it(algo: dict[str, Any]) -> None:
    ctrl, model = create_compressed_model(seeded(TinyResNet()), {"input_info": {"sample_size": SIZE},
                                                                 "compression": algo})
    stripped = ctrl.strip(do_copy=False)
    assert stripped is model
    with pytest.raises(NetsculptError, match=r"ctrl\.strip: the model was already stripped in place"):
        ctrl.strip(do_copy=False)
    with pytest.raises(NetsculptError, match=r"ctrl\.strip: the model was already stripped in place"):
        ctrl.strip()
    with pytest.raises(NetsculptError, match=r"ctrl\.scheduler\.epoch_step: the model was stripped in place"):
        ctrl.scheduler.epoch_step()
    with pytest.raises(NetsculptError, match=r"ctrl\.scheduler\.step: the model was stripped in place"):
        ctrl.scheduler.step()


def test_copies_can_be_stripped_many_times() -> None:
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), QUANT)
    ctrl.strip()
    ctrl.strip()
    ctrl.scheduler.epoch_step()


def test_export_path_under_a_file(tmp_path: Path) -> None:
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), QUANT)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ExportError, match=r"is a file, not a folder"):
        ctrl.export_model(tmp_path / "f" / "m.onnx")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16], ids=str)
def test_non_float32_quantized_export_is_an_export_error(tmp_path: Path, dtype: torch.dtype) -> None:
    model = seeded(TinyResNet()).to(dtype)
    ctrl, _ = create_compressed_model(model, QUANT, example_inputs=(torch.randn(1, 3, 8, 8, dtype=dtype),))
    with pytest.raises(ExportError, match=rf"{dtype} parameters; the QDQ ONNX export .* needs float32"):
        ctrl.export_model(tmp_path / "m.onnx")


def _loader(x: torch.Tensor, batch_size: int = 4) -> DataLoader[Any]:
    return DataLoader(TensorDataset(x, torch.zeros(len(x))), batch_size=batch_size)


@pytest.mark.parametrize("section", ["range", "batchnorm_adaptation"])
def test_empty_init_loader(section: str) -> None:
    init = {"range": {"num_init_samples": 8 if section == "range" else 0},
            "batchnorm_adaptation": {"num_bn_adaptation_samples": 8 if section != "range" else 0}}
    cfg = register_default_init_args({**QUANT, "compression": {"algorithm": "quantization", "initializer": init}},
                                     _loader(torch.zeros(0, 3, 8, 8)))
    model = seeded(TinyResNet())
    with pytest.raises(DatasetError, match="yielded no batch"):
        create_compressed_model(model, cfg)
    assert get_runtime(model) is None


def test_init_data_with_the_wrong_channel_count() -> None:
    cfg = register_default_init_args(QUANT, _loader(torch.zeros(8, 1, 8, 8)))
    model = seeded(TinyResNet())
    with pytest.raises(DatasetError, match=r"range init: the model fails on batch 0 .*\[\[4, 1, 8, 8\]\]") as err:
        create_compressed_model(model, cfg)
    assert isinstance(err.value.__cause__, RuntimeError)
    assert get_runtime(model) is None


def test_batch_of_one_with_batchnorm1d() -> None:
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    cfg = register_default_init_args(
        {"input_info": {"sample_size": [2, 4]},
         "compression": {"algorithm": "quantization",
                         "initializer": {"range": {"num_init_samples": 0},
                                         "batchnorm_adaptation": {"num_bn_adaptation_samples": 4}}}},
        _loader(torch.randn(4, 4), batch_size=1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(DatasetError, match=r"BN adaptation: the model fails on batch 0 .*more than one sample"):
        create_compressed_model(model, cfg)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_misspelled_algorithm_key() -> None:
    with pytest.raises(ConfigError, match=r"compression\[0\]\.algoritm: unknown key; got str 'quantization'\. "
                                          r"Did you mean 'algorithm'\?"):
        NNCFConfig.from_dict({"compression": [{"algoritm": "quantization"}]})
    with pytest.raises(ConfigError, match=r"compression\.algorithm: required string key is missing; got list \['weights'\]"):
        NNCFConfig.from_dict({"compression": {"weights": {}}})


def test_very_deep_nesting(tmp_path: Path) -> None:
    deep: dict[str, Any] = {}
    cur = deep
    for _ in range(5000):
        cur["x"] = {}
        cur = cur["x"]
    with pytest.raises(ConfigError, match="nested too deeply"):
        NNCFConfig.from_dict({"compression": {"algorithm": "quantization", "weights": deep}})
    path = tmp_path / "deep.json"
    path.write_text('{"compression": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(ConfigError, match="nested too deeply"):
        NNCFConfig.from_json(path)
