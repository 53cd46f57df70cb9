"""``netsculpt compress CONFIG.json --model M --dataset D``: train/load FP32, compress, fine-tune, export, report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "positive_int", "run"]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0; got {value}")
    return value


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
    """Register the ``compress`` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "compress",
        parents=parents or [],
        help="compress a registry model on a dataset with an NNCF config and write a report",
        description=(
            "Train (or load) an FP32 baseline, compress it with the config (create_compressed_model), fine-tune, "
            "export FP32 and compressed ONNX, check them in ONNX Runtime, measure latency and write "
            "report.json / report.md / report.png. Exit status: 0 done; 2 error (one line on stderr); 3 outputs "
            "written but compression never fully switched on (see report status)."
        ),
    )
    p.add_argument("config", type=Path, metavar="CONFIG.json", help="NNCF-dialect JSON config")
    p.add_argument("--task", choices=("classification", "detection", "segmentation"), default="classification",
                   help="classification (default); detection (mAP@0.5) or segmentation (mIoU) of Fashion-MNIST items "
                   "on 64x64 canvases (needs: pip install 'netsculpt[samples]')")
    p.add_argument("--model", default=None, help="registry model name (netsculpt.models.list_models()); required for "
                   "classification, default tiny_detector / tiny_unet for detection / segmentation")
    p.add_argument("--dataset", default=None, help="fashion_mnist, cifar10 or digits; required for classification, "
                   "fashion_mnist (the only choice) for detection / segmentation")
    p.add_argument("--epochs", type=non_negative_int, default=2, help="FP32 baseline epochs (default 2)")
    p.add_argument("--finetune-epochs", type=non_negative_int, default=1,
                   help="compression fine-tuning epochs (default 1)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="FP32 state_dict to load instead of training (torch.load(weights_only=True))")
    p.add_argument("--out", type=Path, default=None, help="output directory (default runs/<model>-<dataset>-<algos>)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="batch size (default 128)")
    p.add_argument("--lr", type=float, default=None,
                   help="FP32 peak learning rate, cosine (default: classification SGD 0.1, detection and "
                   "segmentation Adam 3e-3)")
    p.add_argument("--finetune-lr", type=float, default=None,
                   help="fine-tuning learning rate, cosine (default: classification SGD 1e-3, detection and "
                   "segmentation Adam 3e-4)")
    p.add_argument("--train-limit", type=positive_int, default=None,
                   help="use the first N training images (detection / segmentation: N canvases, default 6000)")
    p.add_argument("--test-limit", type=positive_int, default=None,
                   help="use the first N test images (detection / segmentation: N canvases, default 1000)")
    p.add_argument("--threads", type=positive_int, default=2, help="torch and ONNX Runtime threads (default 2)")
    p.add_argument("--download", action="store_true", help="download a missing dataset (MD5-checked)")
    p.add_argument("--data-root", default=None, help="directory searched first for dataset files")
    p.add_argument("--strict-config", action="store_true",
                   help="reject top-level config keys netsculpt does not read (default: ignore them with a warning, "
                   "as NNCF's sample configs carry their training script's settings there)")
    p.add_argument("--verify", choices=("strict", "warn", "off"), default="strict",
                   help="local dataset files whose checksum differs from the official release: refuse them "
                   "(strict, default), use them with a warning (warn), or skip the check (off)")
    p.add_argument("--latency-repeats", type=positive_int, default=20,
                   help="timed ONNX Runtime runs per latency measurement (default 20)")
    p.add_argument("--ekg", type=Path, default=None, metavar="EKG.json",
                   help="EKG: search the filter_pruning sub-network and fine-tune with its memory bank (docs/EKG.md)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``compress``; returns 0, or :data:`~netsculpt.cli.pipeline.EXIT_NOT_COMPRESSED` (outputs written, but
    the model is not fully compressed: ``report["status"]``)."""
    import torch

    from netsculpt.cli.pipeline import CompressOptions, algorithms_tag, exit_status, run_compression
    from netsculpt.config import NNCFConfig
    from netsculpt.errors import ConfigError
    from netsculpt.tasks import get_task

    if args.task == "classification" and (args.model is None or args.dataset is None):
        missing = " and ".join(f"--{k}" for k in ("model", "dataset") if getattr(args, k) is None)
        raise ConfigError(f"compress: {missing} required for --task classification (e.g. --model resnet8 "
                          "--dataset fashion_mnist)")
    task = get_task(args.task, dataset=args.dataset or "fashion_mnist")
    model = args.model or task.default_model
    dataset = args.dataset or "fashion_mnist"

    config = NNCFConfig.from_json(args.config, strict=args.strict_config)
    if args.ekg is not None:  # the EKG settings and the pruning section are checked before any training
        from netsculpt.search.ekg.cli import check_ekg

        check_ekg(args.ekg, config)
    torch.set_num_threads(args.threads)
    out = args.out or Path("runs") / f"{model}-{dataset}-{algorithms_tag(config)}"
    opts = CompressOptions(
        config=config,
        config_path=str(args.config),
        model=model,
        dataset=dataset,
        task=args.task,
        out=out,
        epochs=args.epochs,
        finetune_epochs=args.finetune_epochs,
        checkpoint=args.checkpoint,
        batch_size=args.batch_size,
        lr=task.default_lr if args.lr is None else args.lr,
        finetune_lr=task.default_finetune_lr if args.finetune_lr is None else args.finetune_lr,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        threads=args.threads,
        download=args.download,
        verify=args.verify,
        data_root=args.data_root,
        seed=args.seed,
        progress=not args.no_progress,
        latency_repeats=args.latency_repeats,
        ekg=args.ekg,
    )
    report = run_compression(opts)
    return exit_status(report)
