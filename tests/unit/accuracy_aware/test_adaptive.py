"""adaptive_compression_level (ALGORITHMS.md §7.3) on a synthetic accuracy-vs-rate curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from netsculpt import ConfigError, create_accuracy_aware_training_loop

from ._fakes import FakeCtrl, NoRateCtrl, Recorder, dump_fn, model, optimizers

A0 = 0.9  # tolerable = 0.891 with a 1 % relative drop


def _config(**params: Any) -> dict[str, Any]:
    base = {
        "maximal_relative_accuracy_degradation": 1.0,
        "initial_training_phase_epochs": 1,
        "patience_epochs": 2,
        "maximal_total_epochs": 100,
    }
    return {"accuracy_aware_training": {"mode": "adaptive_compression_level", "params": {**base, **params}}}


def _curve(knee: float) -> Any:
    """Metric 0.9 up to ``knee``, then falling by 1.0 per unit of rate: feasible iff rate <= knee + 0.009."""

    def validate(ctrl: FakeCtrl) -> Any:
        def fn(model: nn.Module, epoch: int) -> float:
            return max(0.0, A0 - max(0.0, ctrl.compression_rate - knee))

        return fn

    return validate


def _run(ctrl: FakeCtrl, knee: float, cfg: dict[str, Any], **kwargs: Any) -> tuple[Any, nn.Module, Recorder]:
    m = model()
    train = Recorder()
    loop_kwargs = {k: kwargs.pop(k) for k in ("maximal_compression_rate",) if k in kwargs}
    loop = create_accuracy_aware_training_loop(cfg, ctrl, uncompressed_model_accuracy=A0, **loop_kwargs)
    loop.run(m, train, _curve(knee)(ctrl), optimizers(m), **kwargs)
    return loop, m, train


def test_converges_halving_the_step_at_each_reversal() -> None:
    ctrl = FakeCtrl(rate=0.0)
    loop, m, train = _run(ctrl, 0.42, _config())
    changes = loop.statistics["rate_changes"]
    assert [round(c["rate_target"], 4) for c in changes] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.45, 0.4, 0.425, 0.45]
    assert [c["step"] for c in changes] == pytest.approx([0.1] * 5 + [0.05, 0.05, 0.025, 0.025])
    assert [c["lr_factor"] for c in changes] == pytest.approx([1.0] * 5 + [0.5, 0.5, 0.25, 0.25])
    assert "below minimal_compression_rate_step" in loop.statistics["stop_reason"]
    assert loop.statistics["best_compression_rate"] == pytest.approx(0.425)
    assert abs(loop.statistics["best_compression_rate"] - 0.429) < 0.025
    assert ctrl.compression_rate == pytest.approx(0.425)
    assert loop.statistics["criterion_met"]
    assert ctrl.disabled  # the algorithm's own schedule no longer moves the rate
    # the weights are those of the (only) epoch trained at 0.425
    epoch_at_best = [h["epoch"] for h in loop.statistics["history"] if h["rate_target"] == pytest.approx(0.425)]
    assert m.weight.item() == epoch_at_best[-1]


def test_fresh_optimizer_and_reduced_lr_per_phase_without_stale_scheduler_state() -> None:
    ctrl = FakeCtrl(rate=0.0)
    loop, _, train = _run(ctrl, 0.42, _config())
    # first epoch of each phase: a new optimizer, lr = 0.1 * lr_factor; second epoch: the scheduler halves
    # *that* (its base_lrs were scaled too), never jumping back to the unreduced rate
    calls = train.calls
    by_rate: dict[float, list[dict[str, Any]]] = {}
    # the model meets the criterion right after initialisation, so the initial phase trains no epoch (NNCF)
    assert not [h for h in loop.statistics["history"] if h["phase"] == "initial"]
    for c in calls:
        by_rate.setdefault(round(c["rate"], 4), []).append(c)
    first_045 = by_rate[0.45][0]
    assert first_045["lr"] == pytest.approx(0.05)
    opt_ids = [id(c["optimizer"]) for c in calls]
    assert len(set(opt_ids)) >= len(loop.statistics["rate_changes"])
    rate05 = by_rate[0.5]
    assert [c["lr"] for c in rate05] == pytest.approx([0.1, 0.05])  # patience 2: two epochs, scheduler stepped once
    assert [c["lr"] for c in by_rate[0.425]] == pytest.approx([0.025])


def test_clamps_to_the_maximal_rate() -> None:
    ctrl = FakeCtrl(rate=0.0)
    loop, _, _ = _run(ctrl, 1.0, _config(), maximal_compression_rate=0.35)
    targets = [round(c["rate_target"], 4) for c in loop.statistics["rate_changes"]]
    assert targets == [0.1, 0.2, 0.3, 0.35]
    assert loop.statistics["best_compression_rate"] == pytest.approx(0.35)
    assert "maximal compression rate" in loop.statistics["stop_reason"]


def test_initial_phase_uses_the_algorithms_schedule_then_freezes_it() -> None:
    ctrl = FakeCtrl(rate=0.0, full_from=2, schedule=lambda epoch: 0.05 * (epoch + 1))
    loop, _, _ = _run(ctrl, 0.42, _config(initial_training_phase_epochs=2))
    first = loop.statistics["rate_changes"][0]
    assert first["rate_target"] == pytest.approx(0.2)  # 0.1 reached by the schedule in 2 epochs, then + step
    assert ctrl.disabled


def test_unreachable_criterion_stops_at_the_minimal_rate() -> None:
    ctrl = FakeCtrl(rate=0.2)
    loop, _, _ = _run(ctrl, -1.0, _config())
    assert "minimal compression rate" in loop.statistics["stop_reason"]
    assert loop.statistics["best_compression_rate"] is None
    assert not loop.statistics["criterion_met"]


def test_epoch_budget_and_dump_checkpoint_fn(tmp_path: Path) -> None:
    dumped: list[Path] = []
    loop, _, train = _run(
        FakeCtrl(rate=0.0), 0.42, _config(maximal_total_epochs=4), dump_checkpoint_fn=dump_fn(dumped), log_dir=tmp_path
    )
    assert len(train.calls) == 4
    assert loop.statistics["epochs"] == 4
    assert len(dumped) == len(loop.statistics["history"]) == 6  # init (criterion met: no initial epoch), search start, 4 epochs
    best = torch.load(tmp_path / "acc_aware_checkpoint_best.pth")
    assert "state_dict" in best
    assert (tmp_path / "accuracy_aware_training.png").is_file()


def test_no_compression_rate_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="filter_pruning, magnitude_sparsity, rb_sparsity provide"):
        create_accuracy_aware_training_loop(_config(), NoRateCtrl(), A0)
