"""Fashion-MNIST ResNet-20 at ~50 % FLOPs removed: top-1 after the same fine-tuning budget, netsculpt vs
Torch-Pruning 1.6.1 (L1) vs NNCF 2.19 (L1 filter pruning).

Every arm starts from the same cached FP32 model (``bench/_fp32.py``), removes about half of the conv/linear
FLOPs at once and is then fine-tuned with the same budget: ``--epochs`` passes over the same training subset in
the same order (a fresh loader seeded with ``--seed`` per arm), batch ``--batch-size``, SGD (momentum 0.9,
weight decay 5e-4 on every parameter) at ``--lr`` with a per-step cosine decay to 0. The arms (``--arms``):

* ``netsculpt_l1`` / ``netsculpt_l2`` (``netsculpt_l1_global``): ``filter_pruning`` with ``pruning_flops_target``
  0.5, ``filter_importance`` L1 / L2, uniform level per group (``all_weights`` true: global ranking), schedule
  ``baseline`` (masks set at creation, frozen), fine-tuned masked with the controller, then ``strip()``: the
  reported FLOPs (``netsculpt.metrics.count_macs``), params and top-1 are those of the physically smaller model.
* ``netsculpt_l1_inputs``: as ``netsculpt_l1`` with ``importance_scope: filters_and_inputs`` (a channel's score
  also counts the weights that read it; bench/pruning_diagnose.py measures why).
* ``netsculpt_l1_inputs_f52``: the same at 52 % FLOPs (``ARM_FLOPS``), the FLOPs ``tp_l1`` removes.
* ``netsculpt_l1_tpw`` / ``netsculpt_l1_inputs_tpw``: the ranking of ``netsculpt_l1`` / ``netsculpt_l1_inputs``
  with exactly the widths ``tp_l1`` keeps in every channel group
  (``params.keep_per_group`` read from the ``tp_l1`` result already in ``--out``; run it with ``--merge`` after
  ``tp_l1``): same FLOPs and parameters as Torch-Pruning, so only the choice of channels differs.
* ``netsculpt_legr``: ``interlayer_ranking_type: learned_ranking`` (LeGR) with a small evolution budget
  (``LEGR_PARAMS``), validated on ``LEGR_VAL`` held-out training images (never the test images).
* ``tp_l1`` (``tp_l1_global``): Torch-Pruning 1.6.1 ``MagnitudePruner`` + ``MagnitudeImportance(p=1)`` (group L1),
  uniform per-group ratio (``global_pruning`` true), classifier ignored. TP has no FLOPs target, so the smallest
  ``pruning_ratio`` that removes at least the target is found by bisection (MACs counted with ``count_macs``, as
  for netsculpt; the search time is reported apart). Fine-tuned as a plain model.
* ``nncf_l1`` / ``nncf_l1_global``: NNCF 2.19 legacy ``filter_pruning``, the same config dict as netsculpt (L1,
  uniform / ``all_weights``), fine-tuned with NNCF's controller (``ctrl.loss()`` added, ``scheduler.step()`` /
  ``epoch_step()`` called). NNCF's uniform mode keeps channel counts at multiples of 8 (hard-coded
  ``get_rounded_pruned_element_number``), so on ResNet-20 (16/32/64 channels) it can only remove ~33 % or ~75 %
  of the FLOPs and ``pruning_flops_target`` 0.5 lands on ~75 %; the global mode prunes filter by filter and
  lands near 50 %, which makes ``nncf_l1_global`` the FLOPs-matched NNCF arm. NNCF only zeroes filters (masks),
  so its FLOPs/params are counted on the masked model: forward hooks count, per conv/linear/BN, the channels
  whose activations are not all zero (zeroed filters and the inputs they starve); NNCF's own claim
  (``_peers.nncf_pruning_stats``) and the zero-filter fraction are kept in the JSON.

All arms prune the stem and the stride-2 convs too (``prune_first_conv``/``prune_downsample_convs`` true, as in
bench/pruning.py; Torch-Pruning prunes them by default). No BatchNorm adaptation anywhere. The peers run in the
bench venv (``.venv-bench``) through a subprocess of this script (``--peer``) that reads the FP32 checkpoint from
a temp file and writes JSON back.

The parts live next to this script: bench/_pruning_common.py (arms, data, counts, the shared fine-tune),
bench/_pruning_peers.py (the Torch-Pruning / NNCF arms of the ``--peer`` subprocess) and
bench/_pruning_report.py (the printed table, ``--merge``); this file runs the netsculpt arms and the whole.

Usage (full run with the defaults: arms netsculpt_l1 tp_l1 nncf_l1 nncf_l1_global, 2 epochs on 10k training
images, 5k test images; about 8-9 min on 2 quiet cores, ~14 min at load 2-3; reuses the cached 3-epoch/10k-sample
FP32 model):
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/pruning_fmnist.py [--fp32-epochs 3] [--epochs 2] [--lr 0.01]
        [--train-limit 10000] [--test-limit 5000] [--arms ...] [--skip-peers] [--out PATH]
Repeated seeds (the FP32 start is the same for every seed: ``--fp32-seed`` 0): ``--seed S --out
bench/results/pruning_fmnist_seedS.json``; ``--merge`` adds arms run later to such a file (same settings checked).
The other arms, same budget, in a second run (~7 min quiet):
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/pruning_fmnist.py --arms netsculpt_l2 netsculpt_l1_global \
        tp_l1_global --out bench/results/pruning_fmnist_extra.json

Smoke run (about 1 min; ``--max-steps 4`` with the default sizes gives a smoke run on the real FP32 model):
    .venv/bin/python bench/pruning_fmnist.py --fp32-epochs 1 --epochs 1 --train-limit 512 --test-limit 256 \
        --out /tmp/pruning_fmnist_smoke.json

Prints a markdown table and writes bench/results/pruning_fmnist.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import copy
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
if "--peer" in sys.argv:  # the bench venv: make sure netsculpt's sources (data, models, loops) are importable
    sys.path.insert(0, str(ROOT / "src"))

# bench/_ekg_peers.py and bench/pruning_diagnose.py use this module's tp_prune, tp_find_ratio, effective_counts,
# make_data, pruning_config, finetune and top1: they stay importable from here
import _peers  # noqa: E402
import torch  # noqa: E402
from _pruning_common import (  # noqa: E402
    ARM_FLOPS,
    ARM_SPECS,
    ARMS,
    DEFAULT_ARMS,
    PEER_ARMS,
    WEIGHT_DECAY,
    effective_counts,
    finetune,
    layer_widths,
    legr_val_loader,
    make_data,
    model_counts,
    probe_batch,
    pruning_config,
    top1,
)
from _pruning_peers import peer_main  # noqa: E402
from _pruning_peers import tp_find_ratio as tp_find_ratio  # noqa: E402
from _pruning_peers import tp_prune as tp_prune  # noqa: E402
from _pruning_report import merge_runs, print_table  # noqa: E402
from torch import nn  # noqa: E402

OUT = ROOT / "bench" / "results" / "pruning_fmnist.json"
log = logging.getLogger("bench.pruning_fmnist")


# -------------------------------------------------------------------------------------------- netsculpt


def keep_like_tp(
    fp32: nn.Module, cfg: dict[str, Any], args: argparse.Namespace
) -> tuple[dict[str, float], dict[str, int]]:
    """``keep_per_group`` giving every channel group the width ``tp_l1`` kept (its result in ``--out``), and those
    widths per layer."""
    from netsculpt import create_compressed_model
    from netsculpt.search import SearchSpace

    tp_run = json.loads(args.out.read_text())["arms"].get("tp_l1", {}) if args.out.exists() else {}
    widths = tp_run.get("widths")
    if not widths:
        raise SystemExit(f"_tpw arms: {args.out} has no tp_l1 widths; run --arms tp_l1 --merge first")
    ctrl, _ = create_compressed_model(copy.deepcopy(fp32), cfg)  # type: ignore[arg-type]
    return {g.name: widths[g.name] / g.units for g in SearchSpace.from_controller(ctrl).groups}, widths


def run_netsculpt(arm: str, fp32: nn.Module, test: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Prune at once (``baseline``), fine-tune masked, strip; counts and top-1 of the stripped model."""
    from netsculpt import create_compressed_model, register_default_init_args

    _, importance, all_weights = ARM_SPECS[arm]
    legr = arm == "netsculpt_legr"
    scope = "filters_and_inputs" if arm.startswith("netsculpt_l1_inputs") else None
    cfg = pruning_config(importance, ARM_FLOPS.get(arm, args.flops_target), all_weights, legr=legr, scope=scope)
    tp_widths = None
    if arm.endswith("_tpw"):
        cfg["compression"]["params"]["keep_per_group"], tp_widths = keep_like_tp(fp32, cfg, args)
    torch.manual_seed(args.seed)
    model = copy.deepcopy(fp32)
    t0 = time.perf_counter()
    if legr:  # LeGR evolves on held-out training images, never on `test`
        cfg["compression"]["params"]["legr_params"]["random_seed"] = args.seed
        legr_cfg = register_default_init_args(
            cfg, make_data(args)[0], criterion=nn.CrossEntropyLoss(), val_loader=legr_val_loader(args)
        )
        ctrl, model = create_compressed_model(model, legr_cfg)
    else:
        ctrl, model = create_compressed_model(model, cfg)  # type: ignore[arg-type]
    prune_s = time.perf_counter() - t0
    before = top1(model, test)
    ft = finetune(model, ctrl, args, arm)
    masked_eff = effective_counts(model, probe_batch(test))
    stats = ctrl.statistics().as_dict().get("filter_pruning", {})
    t0 = time.perf_counter()
    stripped = ctrl.strip()
    strip_s = time.perf_counter() - t0
    if tp_widths is not None and layer_widths(stripped) != tp_widths:
        raise RuntimeError(f"{arm}: widths differ from tp_l1's: {layer_widths(stripped)} vs {tp_widths}")
    return {
        "library": "netsculpt",
        "importance": importance,
        "config": cfg,
        **model_counts(stripped),
        "top1_before": before,
        "top1_after": top1(stripped, test),
        "prune_s": prune_s,
        "strip_s": strip_s,
        "strip_rel_error": ctrl.child_ctrls[0].last_strip_error,
        "masked_effective": masked_eff,
        "claimed": {
            k: stats.get(k)
            for k in ("pruning_level", "filter_pruning_rate", "flops_removed", "params_before", "params_after")
        },
        **ft,
    }


# ------------------------------------------------------------------------------------- peers (.venv-bench)


def run_peers(ckpt: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run the peer arms in the bench venv; returns ``{"arms": ..., "versions": ...}`` or ``{"error": ...}``."""
    arms = [a for a in args.arms if a in PEER_ARMS]
    if not arms:
        return {"arms": {}}
    keys = (
        "model",
        "epochs",
        "max_steps",
        "lr",
        "train_limit",
        "test_limit",
        "batch_size",
        "seed",
        "threads",
        "flops_target",
    )
    argv = [
        "--peer",
        "--fp32-ckpt",
        str(ckpt),
        *_peers.cli_flags(args, keys, zero_for_none=("train_limit", "test_limit")),
    ]
    argv += ["--progress"] if args.progress else []
    return _peers.run_in_bench_venv(__file__, [*argv, "--arms", *arms])


# ------------------------------------------------------------------------------------------ orchestration


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--fp32-epochs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs of every arm")
    ap.add_argument("--max-steps", type=int, default=None, help="cap on fine-tuning batches per epoch (smoke runs)")
    ap.add_argument("--lr", type=float, default=0.01, help="peak fine-tuning LR (cosine decay per step)")
    ap.add_argument("--train-limit", type=int, default=10000, help="training images (0: all 60000)")
    ap.add_argument("--test-limit", type=int, default=5000, help="test images (0: all 10000)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--flops-target", type=float, default=0.5, help="fraction of conv/linear FLOPs removed")
    ap.add_argument(
        "--arms", nargs="+", choices=ARMS, default=list(DEFAULT_ARMS), help=f"default: {' '.join(DEFAULT_ARMS)}"
    )
    ap.add_argument("--seed", type=int, default=0, help="data order and compression init of the fine-tune")
    ap.add_argument("--fp32-seed", type=int, default=0, help="seed of the shared FP32 start (same for every --seed)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-peers", action="store_true", help="netsculpt arms only")
    ap.add_argument("--no-cache", dest="cache", action="store_false", help="retrain the FP32 model")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument(
        "--merge", action="store_true", help="add the arms run now to an existing --out of the same settings"
    )
    ap.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fp32-ckpt", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--peer-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.train_limit = args.train_limit or None
    args.test_limit = args.test_limit or None
    return args


def main() -> None:
    args = parse_args()
    if args.peer:
        peer_main(args)
        return
    from _fp32 import fp32_baseline

    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, test = make_data(args)
    fp32, fp32_s = fp32_baseline(
        args.model, args.fp32_epochs, args.train_limit, args.fp32_seed, use_cache=args.cache, progress=args.progress
    )
    fp32_eff = effective_counts(fp32, probe_batch(test))
    res: dict[str, Any] = {
        "model": args.model, "fp32_epochs": args.fp32_epochs, "epochs": args.epochs, "lr": args.lr,
        "batch_size": args.batch_size, "max_steps": args.max_steps, "optimizer": f"SGD momentum 0.9, weight decay {WEIGHT_DECAY}, cosine per step",
        "flops_target": args.flops_target, "seed": args.seed, "fp32_seed": args.fp32_seed,
        "train_samples": len(train.dataset), "test_samples": len(test.dataset),  # type: ignore[arg-type]
        "fp32": {"top1": top1(fp32, test), **model_counts(fp32), "effective": fp32_eff, "train_s": fp32_s},
        "arms": {},
    }  # fmt: skip
    t_all = time.perf_counter()
    for arm in args.arms:
        if ARM_SPECS[arm][0] != "netsculpt":
            continue
        t0 = time.perf_counter()
        try:
            res["arms"][arm] = run_netsculpt(arm, fp32, test, args)
            res["arms"][arm]["arm_s"] = time.perf_counter() - t0
        except Exception as err:  # noqa: BLE001 - report and go on with the other arms
            log.exception("%s failed", arm)
            res["arms"][arm] = {"library": "netsculpt", "error": f"{type(err).__name__}: {err}"}
    if not args.skip_peers:
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = Path(tmp) / "fp32.pt"
            torch.save(fp32.state_dict(), ckpt)
            peers = run_peers(ckpt, args)
        res["versions"] = peers.get("versions", {})
        if "error" in peers:
            res["peers"] = {"error": peers["error"]}
        for arm in args.arms:
            if arm in PEER_ARMS:
                res["arms"][arm] = peers.get("arms", {}).get(
                    arm, {"library": ARM_SPECS[arm][0], "error": peers.get("error", "not run")}
                )
    import netsculpt

    res["versions"] = {
        "netsculpt": getattr(netsculpt, "__version__", "?"),
        "torch": torch.__version__,
        **res.get("versions", {}),
    }
    res.update(
        total_s=time.perf_counter() - t_all, host=platform.node(), threads=args.threads, load_avg=os.getloadavg()
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge and args.out.exists():  # add these arms to an earlier run of the same settings
        res = merge_runs(args.out, res)
    args.out.write_text(json.dumps(res, indent=2, default=str))
    print_table(res)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
