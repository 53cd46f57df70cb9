"""``netsculpt demo``: INT8 quantization-aware training of a small ResNet on Fashion-MNIST, in minutes on 2 cores."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["DEMO_CONFIG", "DEMO_EPOCHS", "DEMO_MODEL", "DEMO_TRAIN_LIMIT", "add_parser", "run"]

DEMO_MODEL = "resnet8"
DEMO_DATASET = "fashion_mnist"
DEMO_EPOCHS = 2
DEMO_FINETUNE_EPOCHS = 1
DEMO_TRAIN_LIMIT: int | None = 20000
DEMO_THREADS = 2

DEMO_CONFIG: dict[str, Any] = {
    "compression": {
        "algorithm": "quantization",
        "preset": "performance",
        "weights": {"mode": "symmetric", "bits": 8, "per_channel": True},
        "activations": {"mode": "symmetric", "bits": 8},
        "initializer": {
            "range": {"num_init_samples": 256, "type": "mixed_min_max"},
            "batchnorm_adaptation": {"num_bn_adaptation_samples": 2048},
        },
    },
}
"""The built-in config (the same as ``configs/quantization_int8.json``); ``input_info`` comes from the dataset."""


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
    """Register the ``demo`` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        parents=parents or [],
        help=f"INT8 QAT of {DEMO_MODEL} on Fashion-MNIST with a full report (a few minutes on 2 cores)",
        description=(
            f"Train an FP32 {DEMO_MODEL} on Fashion-MNIST ({DEMO_EPOCHS} epochs on {DEMO_TRAIN_LIMIT} images), "
            "quantize it to INT8 (symmetric per-channel weights, symmetric activations, range init on 256 samples, "
            "BatchNorm adaptation), fine-tune 1 epoch, export ONNX, compare in ONNX Runtime and write a report. "
            "Needs Fashion-MNIST in /usr/share/datasets/fashion-mnist (Debian: dataset-fashion-mnist), "
            "in --data-root, or --download."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("runs") / "demo", help="output directory (default runs/demo)")
    p.add_argument("--download", action="store_true",
                   help="download Fashion-MNIST (MD5-checked) when it is not installed")
    p.add_argument("--data-root", default=None, help="directory searched first for the dataset files "
                   "(and downloaded into with --download)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def _check_dataset(root: str | None = None) -> None:
    from netsculpt.data.fashion_mnist import SYSTEM_DIRS, find_fashion_mnist
    from netsculpt.errors import DatasetError

    if find_fashion_mnist("train", root) is None or find_fashion_mnist("test", root) is None:
        where = ", ".join(str(d) for d in ([Path(root)] if root else []) + list(SYSTEM_DIRS))
        raise DatasetError(
            f"demo: Fashion-MNIST not found; looked in {where} and ~/.cache/netsculpt/fashion_mnist. Install the "
            "Debian package dataset-fashion-mnist, or run `netsculpt demo --download` (or "
            "`bash scripts/demo.sh --download`) to fetch it from its official source (MD5-checked)"
        )


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns 0."""
    import torch

    from netsculpt.cli.pipeline import CompressOptions, exit_status, run_compression
    from netsculpt.cli.preflight import check_data_root
    from netsculpt.config import NNCFConfig

    check_data_root(args.data_root)
    if not args.download:
        _check_dataset(args.data_root)
    torch.set_num_threads(DEMO_THREADS)
    opts = CompressOptions(
        config=NNCFConfig.from_dict(DEMO_CONFIG),
        config_path="<built-in demo config>",
        model=DEMO_MODEL,
        dataset=DEMO_DATASET,
        out=args.out,
        epochs=DEMO_EPOCHS,
        finetune_epochs=DEMO_FINETUNE_EPOCHS,
        train_limit=DEMO_TRAIN_LIMIT,
        threads=DEMO_THREADS,
        download=args.download,
        data_root=args.data_root,
        progress=not args.no_progress,
    )
    report = run_compression(opts)
    return exit_status(report)
