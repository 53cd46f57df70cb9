"""Fashion-MNIST: filter pruning driven by the adaptive_compression_level accuracy-aware loop.

Trains an FP32 model, then lets ``adaptive_compression_level`` (maximal relative degradation 1 %) search the
highest pruning rate that keeps the accuracy; reports the final rate, the epochs used and the trajectory.

Usage:
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/aat_fmnist.py [--model resnet20] [--fp32-epochs 3]
        [--max-epochs 15] [--steps-per-epoch 80] [--initial-epochs 1] [--patience 1] [--train-limit N]

Prints a table and writes bench/results/aat_fmnist.json (and the loop's plot to bench/results/aat_fmnist/).
Exits with a message if filter_pruning is not available in this build.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from netsculpt import create_accuracy_aware_training_loop, create_compressed_model, register_default_init_args
from netsculpt.config.registry import config_class
from netsculpt.data import dataset_info, make_loaders
from netsculpt.models import create_model
from netsculpt.train import evaluate, fit_baseline, make_optimizer, train_epoch

OUT = Path(__file__).parent / "results"


def _config(args: argparse.Namespace) -> dict[str, Any]:
    info = dataset_info("fashion_mnist")
    return {
        "input_info": {"sample_size": [1, info.in_channels, *info.image_size]},
        "compression": {
            "algorithm": "filter_pruning",
            "pruning_init": args.pruning_init,
            "params": {"schedule": "exponential", "pruning_target": args.pruning_init, "pruning_steps": 1},
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--fp32-epochs", type=int, default=3)
    ap.add_argument("--max-epochs", type=int, default=15)
    ap.add_argument("--steps-per-epoch", type=int, default=80, help="training batches per loop epoch")
    ap.add_argument("--val-batches", type=int, default=None, help="validation batches (default: all)")
    ap.add_argument("--initial-epochs", type=int, default=1)
    ap.add_argument("--patience", type=int, default=1)
    ap.add_argument("--step", type=float, default=0.1)
    ap.add_argument("--min-step", type=float, default=0.025)
    ap.add_argument("--max-drop", type=float, default=1.0, help="maximal relative accuracy degradation, %%")
    ap.add_argument("--pruning-init", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--test-limit", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if config_class("filter_pruning") is None:
        print("aat_fmnist: filter_pruning is not available in this build; nothing to run")
        sys.exit(0)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    info = dataset_info("fashion_mnist")
    train, test = make_loaders(
        "fashion_mnist", args.batch_size, train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed
    )
    model = create_model(args.model, in_channels=info.in_channels, num_classes=info.num_classes)
    t0 = time.perf_counter()
    fit_baseline(model, train, None, args.fp32_epochs, lr=0.1, progress=False)
    t_fp32 = time.perf_counter() - t0

    def validate_fn(m: nn.Module, epoch: int) -> float:
        return evaluate(m, test, progress=False, max_batches=args.val_batches).accuracy

    def train_epoch_fn(ctrl: Any, m: nn.Module, epoch: int, optimizer: Any, lr_scheduler: Any) -> float:
        res = train_epoch(
            m, train, optimizer, F.cross_entropy, ctrl=ctrl, progress=False, max_steps=args.steps_per_epoch
        )
        return float(getattr(res, "loss", 0.0))

    a0 = validate_fn(model, 0)
    cfg = register_default_init_args(_config(args), train)
    ctrl, model = create_compressed_model(model, cfg)

    def configure_optimizers_fn() -> tuple[Any, Any]:
        opt = make_optimizer(model, "sgd", lr=args.lr, weight_decay=5e-4, momentum=0.9)
        return opt, torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)

    loop = create_accuracy_aware_training_loop(cfg, ctrl, a0)
    t0 = time.perf_counter()
    model = loop.run(
        model,
        train_epoch_fn=train_epoch_fn,
        validate_fn=validate_fn,
        configure_optimizers_fn=configure_optimizers_fn,
        log_dir=OUT / "aat_fmnist",
    )
    t_loop = time.perf_counter() - t0
    final_acc = validate_fn(model, -1)
    stats = loop.statistics
    res = {
        "model": args.model,
        "fp32_top1": a0,
        "final_top1": final_acc,
        "final_compression_rate": ctrl.compression_rate,
        "best_compression_rate": stats["best_compression_rate"],
        "epochs": stats["epochs"],
        "stop_reason": stats["stop_reason"],
        "steps_per_epoch": args.steps_per_epoch,
        "fp32_train_s": t_fp32,
        "loop_s": t_loop,
        "args": vars(args),
        "rate_changes": stats["rate_changes"],
        "history": stats["history"],
        "host": platform.node(),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "aat_fmnist.json").write_text(json.dumps(res, indent=2, default=str))
    print("| model | FP32 top-1 | final top-1 | pruning rate | epochs | stop |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.model} | {100 * a0:.2f} | {100 * final_acc:.2f} | {ctrl.compression_rate:.3f} | {stats['epochs']} "
        f"| {stats['stop_reason']} |"
    )


if __name__ == "__main__":
    main()
