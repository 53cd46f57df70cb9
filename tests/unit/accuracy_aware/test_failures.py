"""Issue 10 finding 10: every metric is validated, and a failing callback leaves the best model and statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from netsculpt import CallbackError, ConfigError, NNCFConfig, create_accuracy_aware_training_loop

from ._fakes import FakeCtrl, Recorder, model, optimizers, scripted


def _config(mode: str = "early_exit") -> dict[str, Any]:
    return {"accuracy_aware_training": {"mode": mode, "params": {"maximal_total_epochs": 6,
                                                                   "maximal_absolute_accuracy_degradation": 1.0}}}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 101.0, -0.5, "80.0", None, [80.0], True])
def test_a_bad_metric_stops_the_loop_with_a_located_error(bad: Any, tmp_path: Path) -> None:
    values: list[Any] = [60.0, 70.0, bad]
    loop = create_accuracy_aware_training_loop(_config(), FakeCtrl(), uncompressed_model_accuracy=80.0)
    m = model()

    def validate(model: nn.Module, epoch: int) -> Any:
        return values[min(epoch, 2)]

    with pytest.raises(ConfigError, match=r"validate_fn.*(finite|\[0, 100\]|as a number)") as info:
        loop.run(m, Recorder(), validate, optimizers(m), log_dir=tmp_path)
    assert "epoch 2" in str(info.value) or "as a number" in str(info.value)
    assert m.weight.item() == 1.0  # the best epoch (1, metric 70) was restored
    stats = json.loads((tmp_path / "accuracy_aware_statistics.json").read_text())
    assert "validate_fn raised ConfigError at epoch 2" in stats["stop_reason"] and stats["best_epoch"] == 1


@pytest.mark.parametrize("value", [np.float32(70.0), torch.tensor(70.0), 70])
def test_numpy_and_tensor_metrics_are_numbers(value: Any) -> None:
    loop = create_accuracy_aware_training_loop(_config(), FakeCtrl(), uncompressed_model_accuracy=70.5)
    m = model()
    loop.run(m, Recorder(), lambda model, epoch: value, optimizers(m))
    assert loop.statistics["criterion_met"]


@pytest.mark.parametrize("a0", [math.nan, math.inf, 250.0, "90"])
def test_a_bad_uncompressed_accuracy_is_rejected_before_anything_runs(a0: Any) -> None:
    with pytest.raises(ConfigError, match="uncompressed_model_accuracy"):
        create_accuracy_aware_training_loop(_config(), FakeCtrl(), uncompressed_model_accuracy=a0)


def test_metric_range_can_be_widened_or_switched_off() -> None:
    for metric_range in [(-10.0, 10.0), None]:
        loop = create_accuracy_aware_training_loop(
            _config(), FakeCtrl(), uncompressed_model_accuracy=-3.0, metric_range=metric_range
        )
        m = model()
        loop.run(m, Recorder(), scripted([-3.5, -3.2]), optimizers(m))
        assert loop.statistics["criterion_met"]


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize(
    ("mode", "values"),
    [("early_exit", [10.0, 60.0, 40.0, 30.0]), ("adaptive_compression_level", [79.5, 85.0, 40.0, 30.0])],
)
def test_a_raising_train_epoch_fn_restores_the_best_epoch_and_writes_statistics(
    mode: str, values: list[float], tmp_path: Path
) -> None:
    ctrl = FakeCtrl(rate=0.3)
    loop = create_accuracy_aware_training_loop(_config(mode), ctrl, uncompressed_model_accuracy=80.0)
    m = model()
    recorder = Recorder()

    def train(compression_ctrl: Any, model: nn.Module, epoch: int, optimizer: Any, lr_scheduler: Any) -> None:
        if epoch == 2:
            raise _Boom("out of memory")
        recorder(compression_ctrl, model, epoch, optimizer, lr_scheduler)

    with pytest.raises(CallbackError, match=r"train_epoch_fn raised _Boom: out of memory at epoch 2.*restored") as info:
        loop.run(m, train, scripted(values), optimizers(m), log_dir=tmp_path)
    assert isinstance(info.value.__cause__, _Boom)
    assert m.weight.item() == 1.0  # epoch 1 is the best; epoch 2 (weight 2) had been trained
    stats = json.loads((tmp_path / "accuracy_aware_statistics.json").read_text())
    assert stats["best_epoch"] == 1 and "train_epoch_fn raised _Boom" in stats["stop_reason"]
    if mode == "adaptive_compression_level":
        assert ctrl.compression_rate == pytest.approx(stats["best_compression_rate"])


def test_keyboard_interrupt_is_reraised_after_the_restore(tmp_path: Path) -> None:
    loop = create_accuracy_aware_training_loop(_config(), FakeCtrl(), uncompressed_model_accuracy=80.0)
    m = model()

    def validate(model: nn.Module, epoch: int) -> float:
        if epoch == 2:
            raise KeyboardInterrupt
        return 50.0 + epoch

    with pytest.raises(KeyboardInterrupt):
        loop.run(m, Recorder(), validate, optimizers(m), log_dir=tmp_path)
    assert m.weight.item() == 1.0 and (tmp_path / "accuracy_aware_statistics.json").is_file()


def test_adaptive_mode_without_a_rate_algorithm_is_rejected_by_the_config() -> None:
    cfg = {"input_info": {"sample_size": [1, 3, 8, 8]}, "compression": [{"algorithm": "quantization"}],
           **_config("adaptive_compression_level")}
    with pytest.raises(ConfigError, match=r"^accuracy_aware_training\.mode: .*\(quantization\).*early_exit"):
        NNCFConfig.from_dict(cfg)
