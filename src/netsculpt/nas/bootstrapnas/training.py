"""``EpochBasedTrainingAlgorithm``: NNCF 2.x BootstrapNAS's training entry point over netsculpt's supernet trainer.

``from_config(model, nncf_config)`` makes the model an :class:`~netsculpt.nas.ElasticSupernet` (traced on
``input_info``) from the ``bootstrapNAS.training`` section; ``run(...)`` trains it epoch by epoch, validates the
minimum subnet and the full model after each epoch and writes NNCF's checkpoint files (rank 0).

The user's ``train_epoch_fn(loader, model, compression_ctrl, epoch, optimizer)`` is honoured for NNCF's
progressive shrinking (one subnet per step): its loop calls ``compression_ctrl.scheduler.step()`` (LR and subnet of
the step, planned by :class:`~netsculpt.nas.training.SupernetTrainer`) and adds ``compression_ctrl.loss()`` (KD). A
schedule that trains several subnets per step (``deps``, ``bignas``, a stage with ``subnets_per_step`` > 1) cannot
run inside a user's single forward/backward: then the epoch is ``SupernetTrainer.train_step`` over the loader's
``(input, target)`` batches (``train_epoch_fn`` is not called; a warning says so). ``train_epoch_fn=None`` always
selects netsculpt's loop.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netsculpt.config.nncf_config import NNCFConfig
from netsculpt.distributed import is_main_process
from netsculpt.errors import ConfigError, StateError
from netsculpt.init_args import BNAdaptationInitArgs
from netsculpt.nas.bootstrapnas.controller import ElasticityController, TrainingController
from netsculpt.nas.bootstrapnas.params import BootstrapNASParams, parse_bootstrapnas
from netsculpt.nas.supernet import ElasticSupernet
from netsculpt.nas.training import SupernetTrainer
from netsculpt.nas.training.schedules import stage_at

__all__ = ["EpochBasedTrainingAlgorithm", "bootstrapnas_params", "to_nncf_config"]

logger = logging.getLogger(__name__)
TrainEpochFn = Callable[[Any, nn.Module, TrainingController, int, torch.optim.Optimizer], Any]
ValFn = Callable[[nn.Module, Any], Any]
_WHERE = "bootstrapNAS.training"


def to_nncf_config(config: NNCFConfig | dict[str, Any]) -> NNCFConfig:
    """An ``NNCFConfig`` (validated) from either form."""
    return config if isinstance(config, NNCFConfig) else NNCFConfig.from_dict(dict(config))


def bootstrapnas_params(config: NNCFConfig) -> BootstrapNASParams:
    """The parsed ``bootstrapNAS`` section; a top-level ``knowledge_distillation`` entry of ``compression`` is used
    when ``bootstrapNAS.training.compression`` (NNCF's place for it) has none."""
    params = parse_bootstrapnas(config.get("bootstrapNAS", {}))
    top = [a for a in config.algorithms if getattr(a, "algorithm", None) == "knowledge_distillation"]
    others = [a.algorithm for a in config.algorithms if getattr(a, "algorithm", None) != "knowledge_distillation"]
    if others:
        logger.warning(
            "bootstrapNAS: the top-level compression algorithms %s are not applied during supernet "
            "training (as in NNCF); compress the extracted subnet with them",
            ", ".join(others),
        )
    if top and params.training.kd is None:
        training = params.training
        sched = dataclasses.replace(training.schedule, kd_weight=top[0].scale, kd_temperature=top[0].temperature)
        params = dataclasses.replace(params, training=dataclasses.replace(training, kd=top[0], schedule=sched))
    return params


def _acc(result: Any, where: str) -> tuple[float, float, float]:
    """``val_fn``'s ``(top1, top5, loss)``; a single number is taken as top1."""
    if isinstance(result, (int, float)):
        return float(result), 0.0, 0.0
    if isinstance(result, (tuple, list)) and result:
        vals = [float(v) for v in result] + [0.0, 0.0]
        return vals[0], vals[1], vals[2]
    raise ConfigError(f"{where}: must return (top1, top5, loss) or top1; got {type(result).__name__}")


class EpochBasedTrainingAlgorithm:
    """Trains an elastic supernet one epoch at a time (NNCF's class of the same name)."""

    def __init__(
        self,
        supernet: ElasticSupernet,
        params: BootstrapNASParams,
        config: dict[str, Any],
        checkpoint: dict[str, Any] | None = None,
    ) -> None:
        self.supernet = supernet
        self.params = params
        self.config = config
        self._elasticity = ElasticityController(supernet)
        self._resume = checkpoint
        self._start_epoch = int(checkpoint["epoch"]) if checkpoint else 0
        self._best_acc1 = float(checkpoint["best_acc1"]) if checkpoint else -math.inf
        self._min_best_acc1 = float(checkpoint["min_subnet_best_acc1"]) if checkpoint else -math.inf
        self.trainer: SupernetTrainer | None = None
        #: BN adaptation batches (NNCF: the registered ``BNAdaptationInitArgs``; default: ``run``'s train loader).
        self.bn_loader: Iterable[Any] | None = None

    @property
    def elasticity_ctrl(self) -> ElasticityController:
        """The elasticity verbs of the supernet."""
        return self._elasticity

    @classmethod
    def from_config(
        cls, nncf_network: nn.Module | ElasticSupernet, nncf_config: NNCFConfig | dict[str, Any]
    ) -> EpochBasedTrainingAlgorithm:
        """Make ``nncf_network`` (a plain model, or an ``ElasticSupernet`` already built) an elastic supernet per
        ``bootstrapNAS.training.elasticity``, traced on ``input_info``."""
        from netsculpt.api import make_example_inputs  # noqa: PLC0415 (api imports the whole algorithm zoo)

        config = to_nncf_config(nncf_config)
        params = bootstrapnas_params(config)
        if isinstance(nncf_network, ElasticSupernet):
            supernet = nncf_network
        else:
            if not config.input_infos:
                raise ConfigError("input_info: required by bootstrapNAS to trace the model; got nothing")
            device = next((p.device for p in nncf_network.parameters()), torch.device("cpu"))
            args, kwargs = make_example_inputs(config.input_infos, device)
            supernet = ElasticSupernet(
                nncf_network, args, params.training.elasticity, kwargs, where=f"{_WHERE}.elasticity"
            )
        algo = cls(supernet, params, json.loads(json.dumps(dict(config))))
        if config.has_extra_struct(BNAdaptationInitArgs):
            algo.bn_loader = config.get_extra_struct(BNAdaptationInitArgs).data_loader
        return algo

    @classmethod
    def from_checkpoint(
        cls, nncf_network: nn.Module, bn_adapt_args: Any, resuming_checkpoint_path: str | Path
    ) -> EpochBasedTrainingAlgorithm:
        """Continue from ``supernet_last.pth`` (the config is read from it). ``bn_adapt_args`` is accepted for NNCF's
        call shape; BN adaptation uses ``run``'s train loader."""
        del bn_adapt_args
        path = Path(resuming_checkpoint_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no checkpoint found")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        where = str(path)
        for key in ("epoch", "model_state", "optimizer", "training_algo_state", "best_acc1", "min_subnet_best_acc1"):
            if key not in ckpt:
                raise StateError(f"{where}: {key}: missing (not a bootstrapNAS checkpoint)")
        algo = cls.from_config(nncf_network, json.loads(ckpt["training_algo_state"]["config"]))
        algo.supernet.model.load_state_dict(ckpt["model_state"])
        algo._resume = ckpt
        algo._start_epoch = int(ckpt["epoch"])
        algo._best_acc1 = float(ckpt["best_acc1"])
        algo._min_best_acc1 = float(ckpt["min_subnet_best_acc1"])
        return algo

    # ---- training --------------------------------------------------------------------------------------------
    def run(
        self,
        train_epoch_fn: TrainEpochFn | None,
        train_loader: Iterable[Any],
        val_fn: ValFn,
        val_loader: Any,
        optimizer: torch.optim.Optimizer,
        checkpoint_save_dir: str | Path,
        tensorboard_writer: Any = None,
        train_iters: int | None = None,
    ) -> tuple[nn.Module, ElasticityController]:
        """Train, validate and checkpoint every epoch; returns ``(model, elasticity_ctrl)`` with the full model
        active. ``train_iters``: steps per epoch (default ``train_steps``, else ``len(train_loader)``)."""
        training = self.params.training
        steps = train_iters or training.train_steps or len(train_loader)  # type: ignore[arg-type]
        if steps < 1:
            raise ConfigError(f"train_iters: must be >= 1 (or a non-empty train_loader); got {steps}")
        sched = dataclasses.replace(training.schedule, steps_per_epoch=int(steps))
        source = self.bn_loader if self.bn_loader is not None else train_loader
        batch = getattr(source, "batch_size", None) or 1
        bn_batches = math.ceil(training.num_bn_adaptation_samples / batch)
        bn_loader = source if bn_batches > 0 else None
        trainer = SupernetTrainer(
            self.supernet,
            optimizer,
            sched,
            bn_adapt_loader=bn_loader,
            bn_adapt_batches=bn_batches,
            where=f"{_WHERE}.schedule",
        )
        self.trainer = trainer
        if self._resume is not None:
            optimizer.load_state_dict(self._resume["optimizer"])
            trainer.load_state_dict(self._resume["training_algo_state"]["trainer"], f"{_WHERE} checkpoint")
        ctrl = TrainingController(trainer, self._elasticity, training.kd, bn_loader, bn_batches)
        one_subnet = sched.schedule == "ofa" and all(s.subnets_per_step == 1 for s in sched.stages)
        if train_epoch_fn is not None and not one_subnet:
            logger.warning(
                "bootstrapNAS: schedule %r trains several subnets per step, which a train_epoch_fn's "
                "single forward/backward cannot; netsculpt's trainer runs the epochs instead",
                sched.schedule,
            )
        out = Path(checkpoint_save_dir)
        if is_main_process():
            out.mkdir(parents=True, exist_ok=True)
        for epoch in range(self._start_epoch, sched.total_epochs):
            ctrl.scheduler.epoch_step(epoch)
            if train_epoch_fn is not None and one_subnet:
                ctrl.attach()
                try:
                    train_epoch_fn(train_loader, self.supernet.model, ctrl, epoch, optimizer)
                finally:
                    ctrl.detach()
            else:
                self._train_epoch(trainer, train_loader, epoch)
            trainer.step = (epoch + 1) * sched.steps_per_epoch
            self._end_epoch(epoch, ctrl, val_fn, val_loader, optimizer, out, tensorboard_writer)
        self._elasticity.activate_maximum_subnet()
        return self.supernet.model, self._elasticity

    def _train_epoch(self, trainer: SupernetTrainer, loader: Iterable[Any], epoch: int) -> None:
        steps = trainer.params.steps_per_epoch
        trainer.step = epoch * steps
        device = next((p.device for p in self.supernet.model.parameters()), torch.device("cpu"))
        for done, batch in enumerate(loader):
            if done == steps:
                break
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ConfigError(
                    f"train_loader: netsculpt's loop needs (input, target) batches; got {type(batch).__name__}"
                )
            x, y = batch[0], batch[1]
            x = x.to(device) if isinstance(x, torch.Tensor) else x
            trainer.train_step(x, y.to(device))

    def _end_epoch(
        self,
        epoch: int,
        ctrl: TrainingController,
        val_fn: ValFn,
        val_loader: Any,
        optimizer: torch.optim.Optimizer,
        out: Path,
        writer: Any,
    ) -> None:
        results: dict[str, tuple[float, float, float]] = {}
        for name, activate in (
            ("min_subnet", self._elasticity.activate_minimum_subnet),
            ("supernet", self._elasticity.activate_maximum_subnet),
        ):
            activate()
            ctrl.prepare_for_validation()
            results[name] = _acc(val_fn(self.supernet.model, val_loader), "val_fn")
            logger.info("epoch %d: %s Acc@1 %.3f Acc@5 %.3f", epoch, name, results[name][0], results[name][1])
            if writer is not None and is_main_process():
                for label, value in zip(("top1", "top5", "loss"), results[name], strict=True):
                    writer.add_scalar(f"val/{name}_{label}", value, epoch)
        sched = ctrl.trainer.params
        final = sched.schedule != "ofa" or stage_at(sched, ctrl.trainer.step - 1)[0] == len(sched.stages) - 1
        acc1, min_acc1 = results["supernet"][0], results["min_subnet"][0]
        is_best = final and acc1 >= self._best_acc1
        self._best_acc1 = max(self._best_acc1, acc1) if final else self._best_acc1
        self._min_best_acc1 = max(self._min_best_acc1, min_acc1)
        if not is_main_process():
            return
        model_state = self.supernet.model.state_dict()
        ckpt = {
            "epoch": epoch + 1,
            "model_state": model_state,
            "acc1": acc1,
            "best_acc1": self._best_acc1,
            "min_subnet_acc1": min_acc1,
            "min_subnet_best_acc1": self._min_best_acc1,
            "optimizer": optimizer.state_dict(),
            "training_algo_state": {
                "trainer": ctrl.trainer.state_dict(),
                "elasticity": self._elasticity.get_compression_state(),
                "config": json.dumps(self.config),
            },
        }
        last = out / "supernet_last.pth"
        torch.save(ckpt, last)
        if is_best:
            shutil.copyfile(last, out / "supernet_best.pth")
        torch.save(self._elasticity.get_compression_state(), out / "last_elasticity.pth")
        torch.save(model_state, out / "last_model_weights.pth")
