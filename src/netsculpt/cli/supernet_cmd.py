"""``netsculpt supernet train|search|extract``: once-for-all elastic supernets from the command line.

``train CONFIG --model M --dataset D``: make the registry model an ``ElasticSupernet`` per CONFIG's
``bootstrapNAS.training`` section and train it with its schedule (deps, bignas or ofa); per epoch a checkpoint
(``supernet_epoch<N>.pt`` and ``supernet_last.pt``, rank 0), TensorBoard scalars under ``tb/`` (loss, lr, beta) and
the smallest / middle / largest subnet's BN-recalibrated top-1, plotted in ``corners.png`` (DεpS's shrink point
marked). ``search CONFIG --checkpoint CKPT``: NSGA-II per ``bootstrapNAS.search`` on the test images; writes
``search.json``, ``pareto.png`` and ``best_subnet.json``. ``extract --checkpoint CKPT --config-json SUBNET.json``:
the subnet as a plain model, ``subnet.pt`` (state_dict, ``torch.load(weights_only=True)``) and ``subnet.onnx``
(checked in ONNX Runtime), with its parameters and MACs against the full model's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from netsculpt.cli.compress import positive_int

__all__ = ["add_parser", "middle_config", "run_extract", "run_search", "run_train"]

CORNERS = ("smallest", "middle", "largest")
ONNX_TOLERANCE = 1e-4  # relative difference allowed between ONNX Runtime and PyTorch


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
    """Register ``supernet`` and its ``train`` / ``search`` / ``extract`` verbs."""
    parents = parents or []
    p: argparse.ArgumentParser = subparsers.add_parser(
        "supernet",
        parents=parents,
        help="train, search and extract once-for-all elastic supernets (bootstrapNAS)",
        description=(__doc__ or "").split("\n\n", 1)[1],
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    t: argparse.ArgumentParser = verbs.add_parser("train", parents=parents, help="train a supernet")
    s: argparse.ArgumentParser = verbs.add_parser("search", parents=parents, help="search a trained supernet")
    for q in (t, s):
        q.add_argument("config", type=Path, metavar="CONFIG.json", help="NNCF config with a 'bootstrapNAS' section")
        q.add_argument("--model", required=True, help="registry model name (e.g. resnet20)")
        q.add_argument("--dataset", required=True, help="fashion_mnist, cifar10 or digits")
        q.add_argument(
            "--test-limit", type=positive_int, default=500, help="test images for subnet accuracies (default 500)"
        )
        q.add_argument(
            "--bn-batches", type=positive_int, default=4, help="training batches per BN recalibration (default 4)"
        )
        q.add_argument("--batch-size", type=positive_int, default=64, help="batch size (default 64)")
        q.add_argument("--threads", type=positive_int, default=2, help="torch threads (default 2)")
        q.add_argument("--data-root", default=None, help="directory searched first for dataset files")
        q.add_argument("--download", action="store_true", help="download a missing dataset (MD5-checked)")
        q.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.add_argument("--out", type=Path, default=None, help="output directory (default runs/supernet-<model>-<dataset>)")
    t.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="epochs (default: the schedule's; not for ofa, whose stages set them)",
    )
    t.add_argument("--train-limit", type=positive_int, default=2000, help="training images (default 2000)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.set_defaults(func=run_train)
    s.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint of 'supernet train'")
    s.add_argument("--out", type=Path, default=None, help="output directory (default: the checkpoint's)")
    s.add_argument("--train-limit", type=positive_int, default=2000, help="images for BN recalibration")
    s.set_defaults(func=run_search)
    e: argparse.ArgumentParser = verbs.add_parser("extract", parents=parents, help="extract one subnet")
    e.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint of 'supernet train'")
    e.add_argument(
        "--config-json",
        type=Path,
        required=True,
        metavar="SUBNET.json",
        help="subnet config (best_subnet.json of 'supernet search')",
    )
    e.add_argument("--model", required=True, help="registry model name the checkpoint was trained with")
    e.add_argument("--out", type=Path, default=None, help="output directory (default: the config file's)")
    e.set_defaults(func=run_extract)
    return p


# ---- shared ------------------------------------------------------------------------------------------------
def _params(path: Path) -> tuple[Any, dict[str, Any]]:
    """``(BootstrapNASParams, config dict)`` of CONFIG; errors start with the file's path."""
    from netsculpt.config import NNCFConfig
    from netsculpt.errors import ConfigError
    from netsculpt.nas.bootstrapnas import bootstrapnas_params

    try:
        config = NNCFConfig.from_json(path)
        if "bootstrapNAS" not in config:
            raise ConfigError("bootstrapNAS: missing; supernet commands need NNCF's 'bootstrapNAS' section")
        params = bootstrapnas_params(config)
    except ConfigError as err:
        text = str(err)
        raise ConfigError(text if text.startswith(str(path)) else f"{path}: {text}") from None
    return params, json.loads(json.dumps(dict(config)))


def _supernet(model_name: str, dataset: str, elasticity: Any) -> Any:
    import torch

    from netsculpt.data import dataset_info
    from netsculpt.models import create_model
    from netsculpt.nas import ElasticSupernet

    info = dataset_info(dataset)
    model = create_model(model_name, num_classes=info.num_classes, in_channels=info.in_channels)
    example = (torch.zeros(2, info.in_channels, *info.image_size),)
    return ElasticSupernet(model, example, elasticity, where="bootstrapNAS.training.elasticity")


def _loaders(args: argparse.Namespace) -> tuple[Any, Any]:
    import torch
    from torch.utils.data import DataLoader

    from netsculpt.data import load_dataset

    kw: dict[str, Any] = {"root": args.data_root, "download": args.download}
    train = load_dataset(args.dataset, "train", limit=args.train_limit, **kw)
    test = load_dataset(args.dataset, "test", limit=args.test_limit, **kw)
    gen = torch.Generator().manual_seed(getattr(args, "seed", 0))
    return (
        DataLoader(
            train, batch_size=args.batch_size, shuffle=True, generator=gen, drop_last=len(train) > args.batch_size
        ),
        DataLoader(test, batch_size=256),
    )


def _read_ckpt(path: Path) -> dict[str, Any]:
    from netsculpt.checkpoint import read_checkpoint
    from netsculpt.errors import StateError

    ckpt = read_checkpoint(path, "--checkpoint")
    missing = [k for k in ("model", "config", "dataset", "model_name") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise StateError(f"--checkpoint: {path} is not a 'netsculpt supernet train' checkpoint ({missing[0]} missing)")
    return dict(ckpt)


def _load(ckpt: dict[str, Any], model_name: str, path: Path) -> Any:
    from netsculpt.errors import ConfigError
    from netsculpt.nas.bootstrapnas import parse_bootstrapnas

    if ckpt["model_name"] != model_name:
        raise ConfigError(f"--model: {path} was trained with --model {ckpt['model_name']}; got {model_name}")
    params = parse_bootstrapnas(json.loads(ckpt["config"]).get("bootstrapNAS", {}))
    net = _supernet(model_name, ckpt["dataset"], params.training.elasticity)
    try:
        net.model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise ConfigError(f"--checkpoint: {path} does not fit the supernet: {' '.join(str(err).split())}") from None
    return net


def top1(loader: Any) -> Any:
    """``validate(model) -> float``: top-1 in percent on ``loader`` (eval mode set by the caller)."""

    def validate(model: Any) -> float:
        from netsculpt.nas.training.trainer import logits_of

        right = total = 0
        for x, y in loader:
            right += int((logits_of(model(x)).argmax(1) == y).sum())
            total += int(y.numel())
        return 100.0 * right / max(total, 1)

    return validate


def middle_config(net: Any) -> dict[str, Any]:
    """The middle choice of every width group and elastic conv, every second skippable block skipped."""
    space = net.search_space
    return {
        "width": {g: c[len(c) // 2] for g, c in space.width.items()},
        "depth": list(space.depth[1::2]),
        "kernel": {k: c[len(c) // 2] for k, c in space.kernel.items()},
    }


# ---- train -------------------------------------------------------------------------------------------------
def run_train(args: argparse.Namespace) -> int:
    """Run ``supernet train``; returns 0."""
    import dataclasses

    import torch

    from netsculpt.cli.pipeline import _tb_writer
    from netsculpt.distributed import is_main_process
    from netsculpt.nas.search.task import SubnetTask
    from netsculpt.nas.training import SupernetTrainer
    from netsculpt.train.progress import progress_bar

    params, raw = _params(args.config)
    sched = params.training.schedule
    if args.epochs is not None:
        if sched.schedule == "ofa":
            print("--epochs: ignored by the ofa schedule (its stages set the epochs)", flush=True)
        else:
            sched = dataclasses.replace(sched, epochs=args.epochs)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, test = _loaders(args)
    net = _supernet(args.model, args.dataset, params.training.elasticity)
    sched = dataclasses.replace(sched, steps_per_epoch=len(train), seed=args.seed)
    optimizer = torch.optim.SGD(net.model.parameters(), lr=sched.lr, momentum=0.9, nesterov=True)
    trainer = SupernetTrainer(
        net,
        optimizer,
        sched,
        bn_adapt_loader=train,
        bn_adapt_batches=args.bn_batches,
        where="bootstrapNAS.training.schedule",
    )
    out = args.out or Path("runs") / f"supernet-{args.model}-{args.dataset}"
    out.mkdir(parents=True, exist_ok=True)
    main = is_main_process()
    tb = _tb_writer(out / "tb") if main else None
    task = SubnetTask(net, top1(test), bn_loader=train, bn_batches=args.bn_batches, seed=args.seed)
    corners = {"smallest": net.get_minimum_config(), "middle": middle_config(net), "largest": net.get_maximum_config()}
    history: list[dict[str, Any]] = []
    space = net.search_space
    print(
        f"supernet: {len(space.width)} elastic width groups, {len(space.depth)} skippable blocks, "
        f"{len(space.kernel)} elastic kernels; schedule {sched.schedule}, {sched.total_epochs} epoch(s) x "
        f"{len(train)} steps",
        flush=True,
    )
    for epoch in range(sched.total_epochs):
        bar = progress_bar(
            train,
            total=len(train),
            desc=f"supernet epoch {epoch + 1}/{sched.total_epochs}",
            enabled=not args.no_progress,
        )
        for x, y in bar:
            r = trainer.train_step(x, y)
            loss = sum(r.losses)
            if tb is not None:
                tb.add_scalar("supernet/loss", loss, r.step)
                tb.add_scalar("supernet/lr", r.lr, r.step)
                tb.add_scalar("supernet/beta", r.beta, r.step)
            bar.set_postfix(loss=f"{loss:.3f}", phase=r.phase, beta=f"{r.beta:.2f}")
        bar.close()
        accs = {name: task.run(cfg).metric for name, cfg in corners.items()}
        history.append({"epoch": epoch + 1, "phase": trainer.phase, **accs})
        print(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.2f} %" for k, v in accs.items()), flush=True)
        if tb is not None:
            for name, acc in accs.items():
                tb.add_scalar(f"corners/{name}", acc, epoch + 1)
        if main:
            ckpt = {
                "model": net.model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "trainer": trainer.state_dict(),
                "epoch": epoch + 1,
                "config": json.dumps(raw),
                "dataset": args.dataset,
                "model_name": args.model,
                "history": json.dumps(history),
            }
            torch.save(ckpt, out / f"supernet_epoch{epoch + 1}.pt")
            torch.save(ckpt, out / "supernet_last.pt")
    if tb is not None:
        tb.close()
    if main:
        shrink = sched.switch_epoch if sched.schedule == "deps" else None
        (out / "corners.json").write_text(json.dumps({"shrink_epoch": shrink, "history": history}, indent=2))
        plot = _plot_corners(history, shrink, out / "corners.png")
        print(f"checkpoint: {out / 'supernet_last.pt'}" + (f"; plot: {plot}" if plot else ""), flush=True)
    return 0


def _plot_corners(history: list[dict[str, Any]], shrink: int | None, path: Path) -> Path | None:
    """Corner-subnet accuracy per epoch; the DεpS shrink point (end of the full-model warm-up) dashed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [h["epoch"] for h in history]
    for name in CORNERS:
        ax.plot(epochs, [h[name] for h in history], marker="o", label=f"{name} subnet")
    if shrink is not None:
        ax.axvline(shrink, color="grey", linestyle="--", label=f"DεpS shrink (epoch {shrink})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("top-1 after BN recalibration (%)")
    ax.set_title("corner subnets over training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---- search ------------------------------------------------------------------------------------------------
def run_search(args: argparse.Namespace) -> int:
    """Run ``supernet search``; returns 0."""
    import torch

    from netsculpt.errors import ConfigError
    from netsculpt.nas import config_to_json
    from netsculpt.nas.search import search_subnets

    params, _ = _params(args.config)
    ckpt = _read_ckpt(args.checkpoint)
    if ckpt["dataset"] != args.dataset:
        raise ConfigError(f"--dataset: {args.checkpoint} was trained on {ckpt['dataset']}; got {args.dataset}")
    torch.set_num_threads(args.threads)
    net = _load(ckpt, args.model, args.checkpoint)
    train, test = _loaders(args)
    out = args.out or args.checkpoint.parent
    out.mkdir(parents=True, exist_ok=True)
    result = search_subnets(net, top1(test), params=params.search, bn_loader=train, progress=not args.no_progress)
    result.save(out / "search.json")
    plot = result.plot(out / "pareto.png")
    (out / "best_subnet.json").write_text(config_to_json(result.best_config) + "\n")
    print(f"{len(result.points)} subnets evaluated, {len(result.pareto)} on the Pareto front", flush=True)
    print(
        f"best subnet: top-1 {result.best_accuracy:.2f} %, {result.cost_metric} {result.best_cost:.4g} "
        f"-> {out / 'best_subnet.json'}" + (f"; plot: {plot}" if plot else ""),
        flush=True,
    )
    return 0


# ---- extract -----------------------------------------------------------------------------------------------
def run_extract(args: argparse.Namespace) -> int:
    """Run ``supernet extract``; returns 0 (an ``ExportError`` when ONNX Runtime disagrees)."""
    import torch

    from netsculpt.cli.export_fp32 import export_fp32_onnx
    from netsculpt.errors import ConfigError, ExportError
    from netsculpt.export import check_onnx
    from netsculpt.metrics import count_macs
    from netsculpt.nas import config_from_json

    ckpt = _read_ckpt(args.checkpoint)
    net = _load(ckpt, args.model, args.checkpoint)
    try:
        cfg = config_from_json(args.config_json.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"--config-json: {args.config_json}: not valid JSON: {err}") from None
    try:
        cfg = net.search_space.validate(cfg)
    except ConfigError as err:
        raise ConfigError(f"--config-json: {args.config_json}: {err}") from None
    sub = net.extract(cfg).eval()
    out = args.out or args.config_json.parent
    out.mkdir(parents=True, exist_ok=True)
    torch.save(sub.state_dict(), out / "subnet.pt")
    example = (net.example[0][0][:1].clone(),)
    onnx = export_fp32_onnx(sub, example, out / "subnet.onnx")
    batch = torch.randn(8, *example[0].shape[1:], generator=torch.Generator().manual_seed(0))
    check = check_onnx(onnx, sub, (batch,))
    if not check.within(ONNX_TOLERANCE):
        raise ExportError(
            f"{onnx}: ONNX Runtime disagrees with the PyTorch subnet (relative difference "
            f"{check.relative_diff:.3g} > {ONNX_TOLERANCE})"
        )
    full = count_macs(net.extract(net.get_maximum_config()).eval(), example)
    mine = count_macs(sub, example)
    print(
        f"subnet: {mine.params:,} params ({100 * mine.params / full.params:.1f} % of {full.params:,}), "
        f"{mine.total:,} MACs ({100 * mine.total / full.total:.1f} % of {full.total:,})",
        flush=True,
    )
    print(
        f"ONNX Runtime vs PyTorch: max |diff| {check.max_abs_diff:.3g} -> {onnx}; state_dict: {out / 'subnet.pt'}",
        flush=True,
    )
    (out / "subnet_summary.json").write_text(
        json.dumps(
            {
                "config": cfg,
                "params": mine.params,
                "macs": mine.total,
                "full_params": full.params,
                "full_macs": full.total,
                "onnx_max_abs_diff": check.max_abs_diff,
            },
            indent=2,
        )
    )
    return 0
