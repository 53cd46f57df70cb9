"""``netsculpt search seernet CONFIG --model M --dataset D --budget-bops 0.4``: SeerNet policy search.

Train (or load) the FP32 model, compress it with CONFIG (``filter_pruning`` and/or ``quantization``), label random
then actively selected policies (BN recalibration + a few SGD steps + top-1 on a validation split carved from the
training set), fit the predictor, and search one policy per budget. Writes, under ``--out``: ``labels.jsonl`` (the
result log: a re-run resumes and reuses labels for other budgets), ``labels.predictor.pt``, per budget
``budget-<x>/{policy.json, config.json, model.onnx}``, ``summary.json`` and plots (with matplotlib).
An optional top-level ``"seernet"`` object in CONFIG sets ``SeerNetConfig`` fields (e.g. ``{"initial": 40}``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Literal

from netsculpt.cli.compress import non_negative_int, positive_int

__all__ = ["add_parser", "run_seernet"]


def _budget(text: str) -> float:
    """argparse type: a fraction in (0, 1] of the 8/8-bit model's cost, or an absolute count (> 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number (0.4: 40 % of the 8/8-bit model); got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0; got {value}")
    return value


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
    """Register ``search`` and its ``seernet`` method."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "search", parents=parents or [], help="automated compression policy search (seernet)",
        description="Search per-layer compression policies on the netsculpt.search platform.")
    methods = p.add_subparsers(dest="method", metavar="METHOD", required=True)
    s: argparse.ArgumentParser = methods.add_parser(
        "seernet", parents=parents or [], help="predictor-driven joint pruning + mixed-precision search",
        description=(__doc__ or "").split("\n\n", 1)[1])
    s.add_argument("config", type=Path, metavar="CONFIG.json", help="NNCF-dialect config with filter_pruning "
                   "and/or quantization (optional top-level 'seernet' settings)")
    s.add_argument("--model", required=True, help="registry model name")
    s.add_argument("--dataset", required=True, help="fashion_mnist, cifar10 or digits")
    budgets = s.add_mutually_exclusive_group(required=True)
    budgets.add_argument("--budget-bops", type=_budget, nargs="+", help="BOPs budgets: fractions of the unpruned "
                         "8/8-bit model (<= 1) or absolute BOPs (> 1)")
    budgets.add_argument("--budget-macs", type=_budget, nargs="+", help="MACs budgets (fractions or absolute)")
    s.add_argument("--checkpoint", type=Path, default=None, help="FP32 state_dict to load instead of training")
    s.add_argument("--epochs", type=non_negative_int, default=2, help="FP32 baseline epochs (default 2)")
    s.add_argument("--initial", type=positive_int, default=None, help="random policies labelled first (default 20)")
    s.add_argument("--rounds", type=non_negative_int, default=None, help="active-selection rounds (default 1)")
    s.add_argument("--per-round", type=positive_int, default=None, help="labels per round (default 20)")
    s.add_argument("--heldout", type=non_negative_int, default=10,
                   help="extra random policies labelled only to check the predictor (default 10)")
    s.add_argument("--val-size", type=positive_int, default=1000,
                   help="validation images carved from the training set (default 1000)")
    s.add_argument("--bn-samples", type=non_negative_int, default=512, help="BN recalibration images per label")
    s.add_argument("--finetune-steps", type=non_negative_int, default=10, help="SGD steps per label (default 10)")
    s.add_argument("--workers", type=positive_int, default=1, help="label in a process pool of this size")
    s.add_argument("--out", type=Path, default=None, help="output directory (default runs/seernet-<model>-<dataset>)")
    s.add_argument("--batch-size", type=positive_int, default=128, help="batch size (default 128)")
    s.add_argument("--train-limit", type=positive_int, default=None, help="use the first N training images")
    s.add_argument("--threads", type=positive_int, default=2, help="torch threads (default 2)")
    s.add_argument("--download", action="store_true", help="download a missing dataset (MD5-checked)")
    s.add_argument("--data-root", default=None, help="directory searched first for dataset files")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--no-plots", action="store_true", help="do not draw plots")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=run_seernet)
    return p


def _read_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from netsculpt.errors import ConfigError

    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object; got {type(data).__name__}")
    settings = data.pop("seernet", {})
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: 'seernet' must be an object of SeerNetConfig fields; got {settings!r}")
    return data, settings


def _data(args: argparse.Namespace, info: Any) -> tuple[Any, Any]:
    import torch
    from torch.utils.data import DataLoader, Subset

    from netsculpt.data import load_dataset
    from netsculpt.errors import ConfigError

    limit = None if args.train_limit is None else args.train_limit + args.val_size
    full = load_dataset(args.dataset, "train", root=args.data_root, download=args.download, limit=limit)
    n = len(full)
    if n <= args.val_size:
        raise ConfigError(f"--val-size: {args.val_size} leaves no training images ({n} in {args.dataset})")
    train = Subset(full, range(n - args.val_size))
    val = Subset(full, range(n - args.val_size, n))
    gen = torch.Generator().manual_seed(args.seed)
    return (DataLoader(train, batch_size=args.batch_size, shuffle=True, generator=gen),
            DataLoader(val, batch_size=args.batch_size))


def run_seernet(args: argparse.Namespace) -> int:
    """Run ``search seernet``; returns 0."""
    import numpy as np
    import torch

    from netsculpt import create_compressed_model, register_default_init_args
    from netsculpt.cli.pipeline import _load_baseline, with_input_info
    from netsculpt.config import NNCFConfig
    from netsculpt.data import dataset_info
    from netsculpt.models import create_model
    from netsculpt.search import EvalTask, ProcessPoolExecutor, ResultLog, SerialExecutor, TrainHooks
    from netsculpt.search import seernet as sn
    from netsculpt.train import fit_baseline

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    raw, settings = _read_config(args.config)
    cfg = sn.SeerNetConfig.from_dict({**settings, "seed": settings.get("seed", args.seed),
                                      **{k: v for k in ("initial", "rounds", "per_round")
                                         if (v := getattr(args, k)) is not None}}, where=f"{args.config}: seernet")
    info = dataset_info(args.dataset)
    out = args.out or Path("runs") / f"seernet-{args.model}-{args.dataset}"
    out.mkdir(parents=True, exist_ok=True)
    train, val = _data(args, info)
    model = create_model(args.model, num_classes=info.num_classes, in_channels=info.in_channels)
    if args.checkpoint is not None:
        _load_baseline(model, args.checkpoint)
        print(f"loaded FP32 baseline from {args.checkpoint}", flush=True)
    else:
        print(f"training the FP32 baseline for {args.epochs} epoch(s)...", flush=True)
        fit_baseline(model, train, None, args.epochs, progress=not args.no_progress)
        torch.save(model.state_dict(), out / "baseline.pt")
    nncf = with_input_info(NNCFConfig.from_dict(raw), [1, info.in_channels, *info.image_size])
    base_config = dict(nncf)
    ctrl, _ = create_compressed_model(model, register_default_init_args(nncf, train))
    space = sn.make_space(ctrl)
    metric: Literal["bops", "macs"] = "bops" if args.budget_bops else "macs"
    ref = sn.reference_cost(space, metric)
    budgets = [b * ref if b <= 1 else b for b in (args.budget_bops or args.budget_macs)]
    enc = sn.PolicyEncoding(space)
    print(f"search space: {len(space.groups)} channel groups, {len(space.quantizers)} quantizers, "
          f"{enc.dim} searched coordinates; 8/8-bit {metric}: {ref:.4g}", flush=True)
    task = EvalTask(ctrl, TrainHooks(train_loader=train, val_loader=val), bn_recalibration_samples=args.bn_samples,
                    finetune_steps=args.finetune_steps, seed=args.seed)
    log = ResultLog(out / "labels.jsonl")
    executor = ProcessPoolExecutor(args.workers) if args.workers > 1 else SerialExecutor()
    try:
        result = sn.run(task, space, budgets, metric=metric, config=cfg, executor=executor, log=log,
                        progress=not args.no_progress)
        held = sn.label(task, sn.random_policies(enc, args.heldout, np.random.default_rng(10_000 + args.seed)),
                        executor=executor, log=log, progress=not args.no_progress)
    finally:
        executor.shutdown()
    summary: dict[str, Any] = {"model": args.model, "dataset": args.dataset, "metric": metric, "reference": ref,
                               "labels": len(result.labels), "budgets": []}
    for budget, found in zip(budgets, result.searches, strict=True):
        folder = out / f"budget-{budget / ref:.3f}"
        paths = sn.export(ctrl, found.policy, base_config, space, folder)
        summary["budgets"].append({**found.as_dict(), "fraction": budget / ref,
                                   "files": {k: str(v) for k, v in paths.items()}})
        print(f"budget {budget / ref:.1%} of 8/8-bit {metric}: {getattr(found.cost, metric) / ref:.1%}, predicted "
              f"metric {found.predicted:.4f}, search {found.seconds:.2f} s -> {folder}", flush=True)
    if held:
        _, x, y = sn.dataset(enc, held)
        summary["heldout"] = {"count": len(y), "mse": float(np.mean((result.predictor.predict(x) - y) ** 2))}
    if not args.no_plots:
        from netsculpt.search.seernet.plots import save_plots

        summary["plots"] = [str(p) for p in save_plots(out, result, held, ref, metric)]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"summary: {out / 'summary.json'}", flush=True)
    return 0
