"""NNCF's Python entry points: EpochBasedTrainingAlgorithm.from_config(...).run(...) and SearchAlgorithm."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.unit.nas.bootstrapnas._example import EXAMPLE, example, loader, model, top1, val_fn
from torch import nn

from netsculpt import NNCFConfig
from netsculpt.nas import ElasticityController, EpochBasedTrainingAlgorithm, SearchAlgorithm
from netsculpt.nas.bootstrapnas import TrainingController, create_nncf_network

CHECKPOINTS = ("supernet_last.pth", "supernet_best.pth", "last_elasticity.pth", "last_model_weights.pth")


class Recorder:
    """An NNCF-2.x-style ``train_epoch_fn`` (as in NNCF's classification sample) that records what it saw."""

    def __init__(self) -> None:
        self.configs: list[dict[str, Any]] = []
        self.lrs: list[float] = []
        self.kd: list[float] = []
        self.epochs: list[int] = []

    def __call__(
        self,
        loader_: Any,
        model_: nn.Module,
        compression_ctrl: TrainingController,
        epoch: int,
        optimizer: torch.optim.Optimizer,
    ) -> None:
        self.epochs.append(epoch)
        criterion = nn.CrossEntropyLoss()
        for x, y in loader_:
            compression_ctrl.scheduler.step()
            out = model_(x)
            compression_loss = compression_ctrl.loss()
            loss = criterion(out, y) + compression_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            self.configs.append(compression_ctrl.multi_elasticity_handler.get_active_config())
            self.lrs.append(optimizer.param_groups[0]["lr"])
            self.kd.append(float(compression_loss.detach()))


def train(tmp_path: Path, cfg: dict[str, Any], fn: Any = None) -> tuple[nn.Module, ElasticityController, Recorder]:
    net = create_nncf_network(model(), cfg)
    algo = EpochBasedTrainingAlgorithm.from_config(net, NNCFConfig.from_dict(cfg))
    opt = torch.optim.SGD(net.parameters(), lr=0.0, momentum=0.9)
    rec = Recorder() if fn is None else fn
    out, ctrl = algo.run(rec, loader(), val_fn, loader(8, seed=1), opt, tmp_path)
    return out, ctrl, rec


def test_example_trains_with_an_nncf_train_epoch_fn(tmp_path: Path) -> None:
    before = {k: v.clone() for k, v in model().state_dict().items()}
    net, ctrl, rec = train(tmp_path, EXAMPLE)
    assert rec.epochs == [0, 1] and len(rec.configs) == 8
    space = ctrl.get_search_space()
    for cfg in rec.configs[:4]:  # stage 0 trains depth only
        assert all(w == space["width"][g][0] for g, w in cfg["width"].items())
    assert any(cfg["depth"] for cfg in rec.configs)
    # stage 1: widths among the 2 largest, several subnets drawn
    assert all(w in space["width"][g][:2] for cfg in rec.configs[4:] for g, w in cfg["width"].items())
    # NNCF's stage LR: cosine from init_lr over epochs_lr, restarted at each stage
    expected = [0.5 * 0.05 * (1 + math.cos(math.pi * k / 4)) for k in range(4)] * 2
    assert rec.lrs == pytest.approx(expected)
    assert rec.kd == [0.0] * 8  # no KD section
    changed = [k for k, v in net.state_dict().items() if k in before and not torch.equal(v, before[k])]
    assert any("conv" in k for k in changed)
    assert ctrl.get_active_config() == ctrl.get_maximum_config()  # returned with the full model active


def test_checkpoints_are_written_and_load_with_weights_only(tmp_path: Path) -> None:
    net, ctrl, _ = train(tmp_path, EXAMPLE)
    for name in CHECKPOINTS:
        assert (tmp_path / name).is_file(), name
        torch.load(tmp_path / name, weights_only=True)
    ckpt = torch.load(tmp_path / "supernet_last.pth", weights_only=True)
    assert ckpt["epoch"] == 2
    assert {"acc1", "best_acc1", "min_subnet_acc1", "min_subnet_best_acc1", "optimizer"} <= set(ckpt)
    assert ckpt["training_algo_state"]["trainer"]["step"] == 8
    weights = torch.load(tmp_path / "last_model_weights.pth", weights_only=True)
    assert all(torch.equal(weights[k], v) for k, v in net.state_dict().items())
    assert torch.load(tmp_path / "last_elasticity.pth", weights_only=True)["search_space"] == ctrl.get_search_space()


def test_resume_from_checkpoint(tmp_path: Path) -> None:
    net, _, _ = train(
        tmp_path,
        example(schedule={"list_stage_descriptions": [{"train_dims": ["depth"], "epochs": 1, "init_lr": 0.05}]}),
    )
    algo = EpochBasedTrainingAlgorithm.from_checkpoint(model(), None, tmp_path / "supernet_last.pth")
    assert all(torch.equal(algo.supernet.model.state_dict()[k], v) for k, v in net.state_dict().items())
    rec = Recorder()
    opt = torch.optim.SGD(algo.supernet.model.parameters(), lr=0.0)
    algo.run(rec, loader(), val_fn, loader(8, seed=1), opt, tmp_path / "again")
    assert rec.epochs == []  # the one epoch was done
    assert algo.trainer is not None and algo.trainer.step == 4


def test_elasticity_ctrl_verbs(tmp_path: Path) -> None:
    net, ctrl, _ = train(
        tmp_path,
        example(
            schedule={"list_stage_descriptions": [{"train_dims": ["depth", "width"], "epochs": 1, "init_lr": 0.05}]}
        ),
    )
    assert ctrl.multi_elasticity_handler is ctrl
    ctrl.activate_minimum_subnet()
    assert ctrl.get_active_config() == ctrl.get_minimum_config()
    small = ctrl.count_flops_and_weights_for_active_subnet()
    ctrl.activate_supernet()
    big = ctrl.count_flops_and_weights_for_active_subnet()
    assert small[0] < big[0] and small[1] < big[1]
    ctrl.activate_random_subnet(3)
    cfg = ctrl.get_active_config()
    assert cfg == ctrl.get_random_config(3)
    x = torch.randn(2, 1, 8, 8)
    net.eval()
    sub = ctrl.extract().eval()
    torch.testing.assert_close(sub(x), net(x), rtol=1e-5, atol=1e-5)
    state = ctrl.get_compression_state()
    assert state["active_config"] == cfg


def test_kd_section_gives_an_in_place_kd_loss(tmp_path: Path) -> None:
    cfg = example(compression=[{"algorithm": "knowledge_distillation", "type": "mse"}])
    _, ctrl, rec = train(tmp_path, cfg)
    smaller = [kd for kd, c in zip(rec.kd, rec.configs, strict=True) if c != ctrl.get_maximum_config()]
    assert smaller and all(kd > 0 for kd in smaller)


def test_multi_subnet_schedules_run_the_netsculpt_trainer(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = example(schedule={"schedule": "bignas", "epochs": 2, "lr": 0.05, "min_lr": 0.0})
    rec = Recorder()
    with caplog.at_level(logging.WARNING, logger="netsculpt.nas.bootstrapnas"):
        net, _, _ = train(tmp_path, cfg, rec)
    assert rec.epochs == []  # a single forward/backward per step cannot carry a sandwich
    assert "trains several subnets per step" in caplog.text
    ckpt = torch.load(tmp_path / "supernet_last.pth", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["training_algo_state"]["trainer"]["schedule"] == "bignas"
    assert not torch.equal(net.state_dict()["stem.0.weight"], model().state_dict()["stem.0.weight"])


def test_search_entry_point(tmp_path: Path) -> None:
    pytest.importorskip("netsculpt.nas.search", reason="netsculpt.nas.search is not in this tree yet")
    cfg = NNCFConfig.from_dict(EXAMPLE)
    net, ctrl, _ = train(tmp_path, EXAMPLE)
    search = SearchAlgorithm.from_config(net, ctrl, cfg)
    ctrl_out, best, metrics = search.run(top1, loader(8, seed=1), tmp_path)
    assert ctrl_out is ctrl
    assert ctrl.get_active_config() == best
    assert len(metrics) == 2 and metrics[0] > 0 and 0 <= metrics[1] <= 100
    assert (tmp_path / "search_result.json").is_file()
    assert search.result is not None and best == search.result.best_config
