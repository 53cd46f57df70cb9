"""Fashion-MNIST: filter pruning driven by the adaptive_compression_level accuracy-aware loop, netsculpt next to
NNCF 2.19.

Starts from the cached FP32 model (``bench/_fp32.py``), then lets ``adaptive_compression_level`` (maximal relative
degradation ``--max-drop`` %, 1 by default) search the highest pruning rate that keeps the accuracy; reports the
final rate, the epochs used, the accuracy, the trajectory and what the final masks remove (``pruned``: Conv2d
filters removed of all Conv2d filters, FLOPs removed). Nominal rates are not comparable across the libraries
(NNCF 2.19 rounds each layer's kept filters up to a multiple of 8), so ``levels`` records both libraries' filters and
FLOPs removed at each ``--levels`` value on the FP32 weights. The same run is repeated with NNCF 2.19's legacy API
(``nncf.torch.create_compressed_model`` + ``nncf.common.accuracy_aware_training.create_accuracy_aware_training_loop``)
in the bench venv (``.venv-bench``, a subprocess of this script with ``--peer-nncf``), with the same config dict,
FP32 checkpoint, callbacks (``train_epoch_fn`` with ``--steps-per-epoch`` batches, ``validate_fn`` on the same test
subset), optimizer (SGD momentum 0.9 at ``--lr``, ExponentialLR 0.9 per epoch) and budget (``maximal_total_epochs``).
Both loops get a fresh, identically seeded training loader; the init (BN adaptation) loader is a separate one.
``--seed`` sets the data order and compression init; every seed starts from the same FP32 model
(``--fp32-seed``, 0 by default).
NNCF's loop has no stop-reason field: the reason is inferred from its runner's state after the run.

The parts live next to this script: bench/_aat_common.py (config, loaders, callbacks, level sweep: both
libraries) and bench/_aat_nncf.py (the NNCF arm of the ``--peer-nncf`` subprocess); this file runs netsculpt's
loop and the whole.

Usage (full run with the defaults: about 3-4 min on 2 quiet cores; the defaults reuse the cached FP32 model):
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/aat_fmnist.py [--model resnet20] [--fp32-epochs 3]
        [--max-epochs 10] [--steps-per-epoch 40] [--batch-size 64] [--initial-epochs 1] [--patience 1]
        [--train-limit 10000] [--test-limit 3000] [--seed 0] [--fp32-seed 0] [--levels 0.1,0.2,0.3,0.4,0.5]
        [--round-to 1] [--round-mode nearest|up] [--nncf auto|off] [--out PATH]
    ``--round-to 8 --nncf off``: a netsculpt-only arm with kept filters a multiple of 8 (nearest), close to NNCF
    2.19's rounding; ``--round-to 8 --round-mode up --nncf off`` keeps exactly NNCF's filter counts at every
    nominal level. bench/aat_seeds.py pairs these arms by seed with the NNCF results of the main runs.

Smoke run (1-2 min):
    .venv/bin/python bench/aat_fmnist.py --fp32-epochs 1 --max-epochs 3 --steps-per-epoch 5 --train-limit 512 \
        --test-limit 256 --out /tmp/aat_fmnist_smoke.json

Prints a table and writes bench/results/aat_fmnist.json (or ``--out``; netsculpt's keys at the top level, NNCF's
under ``"nncf"``, an ``"error"`` string there if the peer failed) and netsculpt's loop plot to the folder named
like the output file without its suffix (bench/results/aat_fmnist/). Exits with a message if filter_pruning is
not available in this build.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if "--peer-nncf" in sys.argv:  # the bench venv: make sure netsculpt's sources (data, models, loops) are importable
    sys.path.insert(0, str(ROOT / "src"))

import _peers  # noqa: E402
import torch  # noqa: E402
from _aat_common import Callbacks, aat_config, fp32_model, make_data, sweep_levels  # noqa: E402
from _aat_nncf import peer_main  # noqa: E402
from _fp32 import fp32_baseline  # noqa: E402
from torch import nn  # noqa: E402

from netsculpt.train import evaluate  # noqa: E402

OUT = ROOT / "bench" / "results" / "aat_fmnist.json"
PEER_KEYS = (
    "model",
    "max_epochs",
    "steps_per_epoch",
    "val_batches",
    "initial_epochs",
    "patience",
    "step",
    "min_step",
    "max_drop",
    "pruning_init",
    "lr",
    "train_limit",
    "test_limit",
    "batch_size",
    "threads",
    "seed",
    "levels",
)


def _conv_filters(model: nn.Module) -> dict[str, int]:
    """Output filters of every Conv2d of the model, by module name (the denominator of "filters removed")."""
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


# -------------------------------------------------------------------------------------------------- netsculpt


def ns_pruned(ctrl: Any, model: nn.Module) -> dict[str, float]:
    """What netsculpt's masks remove now: nominal rate, Conv2d filters removed (of all Conv2d filters), FLOPs removed."""
    st = ctrl.statistics().as_dict()["filter_pruning"]
    convs = _conv_filters(model)
    total, kept = st["total_channels"], st["remaining_channels"]
    removed = sum(total[n] - kept[n] for n in convs if n in total)
    return {
        "compression_rate": float(ctrl.compression_rate),
        "filters_removed": removed / sum(convs.values()),
        "flops_removed": float(st["flops_removed"]),
        "library_filter_rate": float(st["filter_pruning_rate"]),  # netsculpt's own: of the prunable filters
    }


def run_netsculpt(model: nn.Module, a0: float, args: argparse.Namespace) -> dict[str, Any]:
    """netsculpt's loop; returns the keys this bench has always written."""
    from netsculpt import create_accuracy_aware_training_loop, create_compressed_model, register_default_init_args

    probe_ctrl, probe = create_compressed_model(fp32_model(args, model.state_dict()), aat_config(args))
    levels = sweep_levels(probe_ctrl, probe, ns_pruned, args)
    cb = Callbacks(args)
    init_train, _ = make_data(args)
    torch.manual_seed(args.seed)
    cfg = register_default_init_args(aat_config(args), init_train)
    ctrl, model = create_compressed_model(model, cfg)
    cb.ctrl, cb.model = ctrl, model
    loop = create_accuracy_aware_training_loop(cfg, ctrl, a0)
    t0 = time.perf_counter()
    model = loop.run(
        model,
        train_epoch_fn=cb.train_epoch_fn,
        validate_fn=cb.validate_fn,
        configure_optimizers_fn=cb.configure_optimizers_fn,
        log_dir=args.out.with_suffix(""),
    )
    t_loop = time.perf_counter() - t0
    cb.ctrl = None
    final_acc = cb.validate_fn(model, -1)
    stats = loop.statistics
    return {
        "final_top1": final_acc,
        "final_compression_rate": ctrl.compression_rate,
        "best_compression_rate": stats["best_compression_rate"],
        "best_accuracy": stats["best_accuracy"],
        "epochs": stats["epochs"],
        "stop_reason": stats["stop_reason"],
        "loop_s": t_loop,
        "rate_changes": stats["rate_changes"],
        "history": stats["history"],
        "pruned": ns_pruned(ctrl, model),
        "levels": levels,
    }


def run_nncf_peer(ckpt: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    """Run the NNCF arm in the bench venv; ``None`` when switched off, ``{"error": ...}`` when it fails."""
    if args.nncf == "off":
        return None
    argv = [
        "--peer-nncf",
        "--fp32-ckpt",
        str(ckpt),
        *_peers.cli_flags(args, PEER_KEYS, zero_for_none=("train_limit", "test_limit")),
    ]
    return _peers.run_in_bench_venv(__file__, argv, "NNCF run")


# ------------------------------------------------------------------------------------------------ orchestration


def print_table(res: dict[str, Any]) -> None:
    """Both libraries side by side."""
    rows = [("netsculpt", res)]
    nncf_res = res.get("nncf")
    if isinstance(nncf_res, dict) and "error" not in nncf_res:
        rows.append((f"nncf {nncf_res.get('version', '')}".strip(), nncf_res))
    print(
        "| library | model | FP32 top-1 | final top-1 | best top-1 (library's own) | pruning rate (nominal) "
        "| filters removed | FLOPs removed | epochs | stop | loop s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        best = r.get("best_accuracy")
        best_s = f"{100 * best:.2f}" if isinstance(best, (int, float)) else "-"
        fp32 = r.get("fp32_top1", res["fp32_top1"])
        pr = r.get("pruned") or {}
        print(
            f"| {name} | {res['model']} | {100 * fp32:.2f} | {100 * r['final_top1']:.2f} | {best_s} "
            f"| {r['final_compression_rate']:.3f} | {pr.get('filters_removed', float('nan')):.3f} "
            f"| {pr.get('flops_removed', float('nan')):.3f} | {r['epochs']} | {r['stop_reason']} | {r['loop_s']:.0f} |"
        )
    if isinstance(nncf_res, dict) and "error" in nncf_res:
        print(f"nncf: {nncf_res['error']}")
    print("\nNominal level -> Conv2d filters / FLOPs removed on the FP32 weights (no training):")
    for name, r in rows:
        cells = [
            f"{x['level']:g}: {x['filters_removed']:.3f} / {x['flops_removed']:.3f}" for x in r.get("levels") or []
        ]
        print(f"  {name}: {'; '.join(cells)}")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--fp32-epochs", type=int, default=3)
    ap.add_argument("--max-epochs", type=int, default=10, help="maximal_total_epochs (the budget)")
    ap.add_argument("--steps-per-epoch", type=int, default=40, help="training batches per loop epoch")
    ap.add_argument("--val-batches", type=int, default=None, help="validation batches (default: all)")
    ap.add_argument("--initial-epochs", type=int, default=1)
    ap.add_argument("--patience", type=int, default=1)
    ap.add_argument("--step", type=float, default=0.1)
    ap.add_argument("--min-step", type=float, default=0.025)
    ap.add_argument("--max-drop", type=float, default=1.0, help="maximal relative accuracy degradation, %%")
    ap.add_argument("--pruning-init", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--train-limit", type=int, default=10000, help="training images (0: all 60000)")
    ap.add_argument("--test-limit", type=int, default=3000, help="validation images (0: all 10000)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="data order and compression init (both libraries)")
    ap.add_argument(
        "--fp32-seed", type=int, default=0, help="seed of the cached FP32 start (the same for every --seed)"
    )
    ap.add_argument(
        "--levels",
        default="0.1,0.2,0.3,0.4,0.5",
        help="nominal pruning levels at which both libraries' filters/FLOPs removed are measured ('' skips)",
    )
    ap.add_argument(
        "--round-to",
        type=int,
        default=1,
        help="netsculpt arm only: params.round_to (kept filters a multiple of it, nearest; NNCF 2.19 "
        "rounds up to 8); the NNCF arm always gets the plain config",
    )
    ap.add_argument(
        "--round-mode",
        choices=["nearest", "up"],
        default="nearest",
        help="netsculpt arm only: params.round_mode; '--round-to 8 --round-mode up' keeps NNCF 2.19's "
        "filter counts at every nominal level",
    )
    ap.add_argument("--nncf", choices=["auto", "off"], default="auto", help="run the NNCF 2.19 arm (bench venv)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--peer-nncf", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fp32-ckpt", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--peer-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.train_limit = args.train_limit or None
    args.test_limit = args.test_limit or None
    return args


def main() -> None:
    args = parse_args()
    if args.peer_nncf:
        peer_main(args)
        return
    from netsculpt.config.registry import config_class

    if config_class("filter_pruning") is None:
        print("aat_fmnist: filter_pruning is not available in this build; nothing to run")
        sys.exit(0)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model, t_fp32 = fp32_baseline(args.model, args.fp32_epochs, args.train_limit, args.fp32_seed)
    _, test = make_data(args)
    a0 = float(evaluate(model, test, progress=False, max_batches=args.val_batches).accuracy)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "fp32.pt"
        torch.save(model.state_dict(), ckpt)  # before create_compressed_model wraps the model in place
        ours = run_netsculpt(model, a0, args)
        nncf_res = run_nncf_peer(ckpt, args)
    res = {
        "model": args.model,
        "fp32_top1": a0,
        **{k: ours[k] for k in ("final_top1", "final_compression_rate", "best_compression_rate", "epochs",
                                "stop_reason")},
        "steps_per_epoch": args.steps_per_epoch,
        "fp32_train_s": t_fp32,
        "loop_s": ours["loop_s"],
        "args": vars(args),
        "rate_changes": ours["rate_changes"],
        "history": ours["history"],
        "host": platform.node(),
        "best_accuracy": ours["best_accuracy"],
        "pruned": ours["pruned"],
        "levels": ours["levels"],
        "config": aat_config(args),
        "nncf": nncf_res,
        "load_avg": os.getloadavg(),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=str))
    print_table(res)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
