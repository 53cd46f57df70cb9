"""early_exit (ALGORITHMS.md §7.2) with a scripted validation function and a fake controller."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from netsculpt import ConfigError, NNCFConfig, create_accuracy_aware_training_loop

from ._fakes import FakeCtrl, Recorder, dump_fn, model, optimizers, scripted


def _config(max_epochs: int = 10, **criterion: float) -> dict[str, Any]:
    return {
        "input_info": {"sample_size": [1, 1]},
        "accuracy_aware_training": {"mode": "early_exit", "params": {"maximal_total_epochs": max_epochs, **criterion}},
    }


def _run(cfg: dict[str, Any], values: list[float], ctrl: FakeCtrl, a0: float = 0.8, **run: Any) -> tuple[Any, Any, Recorder]:
    m = model()
    train = Recorder()
    loop = create_accuracy_aware_training_loop(cfg, ctrl, uncompressed_model_accuracy=a0)
    out = loop.run(m, train, scripted(values), optimizers(m), **run)
    assert out is m
    return loop, m, train


def test_relative_criterion_stops_at_first_qualifying_epoch() -> None:
    # tolerable = 0.8 * 0.99 = 0.792; epoch 2 reaches 0.795 but compression is only full from epoch 3 on
    ctrl = FakeCtrl(full_from=3)
    loop, m, train = _run(
        _config(maximal_relative_accuracy_degradation=1.0), [0.70, 0.75, 0.795, 0.7925, 0.80, 0.81], ctrl
    )
    assert len(train.calls) == 3
    assert loop.statistics["epochs"] == 3
    assert loop.statistics["criterion_met"]
    assert loop.statistics["best_epoch"] == 3
    assert m.weight.item() == 3  # the model of epoch 3, not restored to anything else
    assert loop.statistics["accuracy"] == [0.70, 0.75, 0.795, 0.7925]
    assert loop.statistics["minimal_tolerable_accuracy"] == pytest.approx(0.792)


def test_absolute_criterion_stops_at_first_qualifying_epoch() -> None:
    loop, m, train = _run(
        _config(maximal_absolute_accuracy_degradation=0.02), [0.70, 0.779, 0.781, 0.9], FakeCtrl(full_from=0)
    )
    assert len(train.calls) == 2
    assert loop.statistics["best_epoch"] == 2
    assert loop.statistics["minimal_tolerable_accuracy"] == pytest.approx(0.78)


def test_criterion_met_right_after_initialization_trains_zero_epochs() -> None:
    loop, _, train = _run(_config(maximal_relative_accuracy_degradation=1.0), [0.8], FakeCtrl())
    assert train.calls == []
    assert loop.statistics["epochs"] == 0
    assert loop.statistics["criterion_met"]


def test_never_qualifying_runs_to_max_epochs_and_restores_best(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    values = [0.5, 0.6, 0.7, 0.65, 0.6, 0.55]
    with caplog.at_level(logging.WARNING):
        loop, m, train = _run(
            _config(5, maximal_relative_accuracy_degradation=1.0), values, FakeCtrl(), log_dir=tmp_path
        )
    assert len(train.calls) == 5
    assert loop.statistics["epochs"] == 5
    assert loop.statistics["best_epoch"] == 2
    assert not loop.statistics["criterion_met"]
    assert m.weight.item() == 2  # weights of epoch 2 restored
    assert "no epoch met the criterion" in caplog.text
    assert (tmp_path / "acc_aware_checkpoint_best.pth").is_file()
    assert (tmp_path / "accuracy_aware_training.png").stat().st_size > 1000
    assert (tmp_path / "accuracy_aware_statistics.json").is_file()


def test_best_checkpoint_only_counts_fully_compressed_epochs() -> None:
    # epoch 1 has the highest metric but compression is not fully applied yet
    loop, m, _ = _run(_config(4, maximal_relative_accuracy_degradation=1.0), [0.5, 0.75, 0.6, 0.7, 0.65], FakeCtrl(full_from=2))
    assert loop.statistics["best_epoch"] == 3
    assert m.weight.item() == 3


def test_user_checkpoint_functions_and_early_stopping(tmp_path: Path) -> None:
    dumped: list[Path] = []
    loaded: list[Path] = []

    def load(model: Any, checkpoint_path: Any) -> None:
        import torch

        loaded.append(Path(checkpoint_path))
        model.load_state_dict(torch.load(checkpoint_path)["state_dict"])

    loop, m, train = _run(
        _config(10, maximal_relative_accuracy_degradation=1.0),
        [0.5, 0.7, 0.6, 0.55, 0.5],
        FakeCtrl(),
        dump_checkpoint_fn=dump_fn(dumped),
        load_checkpoint_fn=load,
        early_stopping_fn=lambda metric: metric < 0.56,
        log_dir=tmp_path,
    )
    assert len(dumped) == 4  # init + 3 epochs, then early_stopping_fn said stop
    assert len(train.calls) == 3
    assert loaded == [tmp_path / "acc_aware_checkpoint_best.pth"]
    assert m.weight.item() == 1
    assert "early_stopping_fn" in loop.statistics["stop_reason"]


def test_tensorboard_scalars_and_lr_steps_once_per_epoch() -> None:
    class Writer:
        def __init__(self) -> None:
            self.scalars: list[tuple[str, float, int]] = []

        def add_scalar(self, tag: str, value: float, step: int) -> None:
            self.scalars.append((tag, value, step))

    w = Writer()
    _, _, train = _run(_config(3, maximal_relative_accuracy_degradation=1.0), [0.1], FakeCtrl(), tensorboard_writer=w)
    assert [c["lr"] for c in train.calls] == pytest.approx([0.1, 0.05, 0.025])
    tags = {t for t, _, _ in w.scalars}
    assert {"val/accuracy_aware/metric_value", "compression/accuracy_aware/compression_rate"} <= tags


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"maximal_relative_accuracy_degradation": 1.0, "maximal_absolute_accuracy_degradation": 0.01}, "got both"),
        ({"maximal_total_epochs": 3}, "got neither"),
    ],
)
def test_exactly_one_criterion(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        NNCFConfig.from_dict({"accuracy_aware_training": {"mode": "early_exit", "params": params}})


def test_missing_section_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="accuracy_aware_training: section missing"):
        create_accuracy_aware_training_loop({"input_info": {"sample_size": [1, 1]}}, FakeCtrl(), 0.8)
