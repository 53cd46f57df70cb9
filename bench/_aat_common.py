"""The parts of bench/aat_fmnist.py both libraries' loops share, in both venvs.

``aat_config`` is the NNCF-dialect config (filter pruning + ``adaptive_compression_level``) both libraries get;
``Callbacks`` holds the loop callbacks (training epoch, validation with its history, optimizer); ``make_data``
gives identically seeded loaders; ``sweep_levels`` measures a fresh controller at each ``--levels`` value. The
script's main run imports this module in the project venv, its ``--peer-nncf`` subprocess (bench/_aat_nncf.py)
in the bench venv (``.venv-bench``): this module imports netsculpt's sources at the top, so the script puts
``src/`` on ``sys.path`` before importing it when it runs as the peer.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from netsculpt.data import dataset_info, make_loaders
from netsculpt.models import create_model
from netsculpt.train import evaluate, make_optimizer, train_epoch


def aat_config(args: argparse.Namespace) -> dict[str, Any]:
    """The NNCF-dialect config both libraries get."""
    info = dataset_info("fashion_mnist")
    return {
        "input_info": {"sample_size": [1, info.in_channels, *info.image_size]},
        "compression": {
            "algorithm": "filter_pruning",
            "pruning_init": args.pruning_init,
            "params": {
                "schedule": "exponential",
                "pruning_target": args.pruning_init,
                "pruning_steps": 1,
                # netsculpt's keys; never sent to NNCF
                **({"round_to": args.round_to, "round_mode": args.round_mode} if args.round_to > 1 else {}),
            },
        },
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_relative_accuracy_degradation": args.max_drop,
                "initial_training_phase_epochs": args.initial_epochs,
                "patience_epochs": args.patience,
                "initial_compression_rate_step": args.step,
                "minimal_compression_rate_step": args.min_step,
                "maximal_total_epochs": args.max_epochs,
            },
        },
    }


def make_data(args: argparse.Namespace) -> tuple[Any, Any]:
    """Train/test loaders; every call gives the same shuffling order (seeded generator)."""
    train, test = make_loaders(
        "fashion_mnist", args.batch_size, train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed
    )
    return train, test


class Callbacks:
    """The loop callbacks shared by both libraries; ``history`` records every validation."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.train, self.test = make_data(args)
        self.ctrl: Any = None
        self.model: nn.Module | None = None
        self.history: list[dict[str, Any]] = []

    def validate_fn(self, m: nn.Module, epoch: int = -1) -> float:
        acc = float(evaluate(m, self.test, progress=False, max_batches=self.args.val_batches).accuracy)
        if self.ctrl is not None:
            self.history.append({"epoch": epoch, "compression_rate": ctrl_rate(self.ctrl), "accuracy": acc})
        return acc

    def train_epoch_fn(self, ctrl: Any, m: nn.Module, epoch: int, optimizer: Any, lr_scheduler: Any) -> float:
        res = train_epoch(
            m, self.train, optimizer, F.cross_entropy, ctrl=ctrl, progress=False, max_steps=self.args.steps_per_epoch
        )
        return float(getattr(res, "loss", 0.0))

    def configure_optimizers_fn(self) -> tuple[Any, Any]:
        assert self.model is not None
        opt = make_optimizer(self.model, "sgd", lr=self.args.lr, weight_decay=5e-4, momentum=0.9)
        return opt, torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)


def ctrl_rate(ctrl: Any) -> float | None:
    try:
        return float(ctrl.compression_rate)
    except (AttributeError, TypeError, ValueError):
        return None


def fp32_model(args: argparse.Namespace, state: dict[str, Any]) -> nn.Module:
    info = dataset_info("fashion_mnist")
    model = create_model(args.model, in_channels=info.in_channels, num_classes=info.num_classes)
    model.load_state_dict(state)
    return model


def sweep_levels(ctrl: Any, model: nn.Module, measure: Any, args: argparse.Namespace) -> list[dict[str, float]]:
    """``measure(ctrl, model)`` at each nominal level of ``--levels`` (a fresh controller on the FP32 weights)."""
    out = []
    for level in [float(x) for x in str(args.levels or "").split(",") if x.strip()]:
        ctrl.compression_rate = level
        out.append({"level": level, **measure(ctrl, model)})
    return out
