"""The peer arms of bench/pruning_fmnist.py: Torch-Pruning 1.6.1 L1 and NNCF 2.19 L1 filter pruning.

Runs inside the bench venv (``.venv-bench``): the main run starts ``bench/pruning_fmnist.py --peer`` there
(``pruning_fmnist.run_peers``), which calls ``peer_main``: it loads the FP32 checkpoint the main run saved,
runs the Torch-Pruning / NNCF arms of ``--arms`` and writes their JSON (an ``error`` entry per failed arm) to
``--peer-out``. ``torch_pruning`` is imported inside the functions and NNCF only through bench/_peers.py's
lazy helpers, so the project venv can import this module too (bench/_ekg_peers.py and
bench/pruning_diagnose.py reuse ``tp_prune`` / ``tp_find_ratio`` through ``pruning_fmnist``).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from pathlib import Path
from typing import Any

import _peers
import torch
from _pruning_common import (
    ARM_SPECS,
    effective_counts,
    finetune,
    layer_widths,
    load_fp32,
    make_data,
    model_counts,
    probe_batch,
    pruning_config,
    sample_size,
    top1,
)
from torch import nn

log = logging.getLogger("bench.pruning_fmnist")


def tp_prune(model: nn.Module, ratio: float, global_pruning: bool) -> nn.Module:
    """Torch-Pruning 1.6.1: MagnitudePruner with group-L1 importance at ``ratio``, classifier ignored."""
    import torch_pruning as tp

    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
    pruner = tp.pruner.MagnitudePruner(
        model, torch.zeros(*sample_size()), importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=ratio, global_pruning=global_pruning, ignored_layers=last,
    )  # fmt: skip
    pruner.step()
    return model


def tp_find_ratio(fp32: nn.Module, target: float, global_pruning: bool, iters: int = 14) -> tuple[float, list[Any]]:
    """Smallest ``pruning_ratio`` (bisection) whose pruned model removes at least ``target`` of the MACs."""
    base = model_counts(fp32)["macs"]
    trials: list[Any] = []

    def removed(r: float) -> float:
        m = tp_prune(copy.deepcopy(fp32), r, global_pruning)
        value = 1.0 - model_counts(m)["macs"] / base
        trials.append((round(r, 5), round(value, 5)))
        return value

    lo, hi = 0.0, 0.95
    if removed(hi) < target:
        return hi, trials
    for _ in range(iters):
        mid = (lo + hi) / 2
        if removed(mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi, trials


def run_tp(arm: str, fp32: nn.Module, test: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Torch-Pruning L1 at the FLOPs target, then the shared fine-tuning as a plain model."""
    import torch_pruning as tp

    global_pruning = ARM_SPECS[arm][2]
    t0 = time.perf_counter()
    ratio, trials = tp_find_ratio(fp32, args.flops_target, global_pruning)
    search_s = time.perf_counter() - t0
    torch.manual_seed(args.seed)
    model = copy.deepcopy(fp32)
    t0 = time.perf_counter()
    tp_prune(model, ratio, global_pruning)
    prune_s = time.perf_counter() - t0
    before = top1(model, test)
    ft = finetune(model, None, args, arm)
    tp_ops, tp_params = tp.utils.count_ops_and_params(model, torch.zeros(*sample_size()))
    return {
        "library": "torch-pruning",
        "importance": "MagnitudeImportance(p=1) (group L1, mean reduction)",
        "global_pruning": global_pruning,
        "pruning_ratio": ratio,
        "ratio_search_s": search_s,
        "ratio_trials": trials,
        **model_counts(model),
        "widths": layer_widths(model),
        "tp_count_ops": float(tp_ops),
        "tp_count_params": float(tp_params),
        "top1_before": before,
        "top1_after": top1(model, test),
        "prune_s": prune_s,
        **ft,
    }


def run_nncf(arm: str, fp32: nn.Module, test: Any, args: argparse.Namespace) -> dict[str, Any]:
    """NNCF 2.19 filter pruning (same config, L1), fine-tuned with its controller; counts measured on the masks."""

    _, importance, all_weights = ARM_SPECS[arm]
    cfg = pruning_config(importance, args.flops_target, all_weights)
    ext_s = _peers.nncf_build_extension()  # one-time C++ build/load: not pruning time
    torch.manual_seed(args.seed)
    ctrl, model, prune_s = _peers._nncf_create(copy.deepcopy(fp32), cfg, None)
    claimed_init = _peers.nncf_pruning_stats(ctrl)
    before = top1(model, test)
    ft = finetune(model, ctrl, args, arm)
    after = top1(model, test)
    eff = effective_counts(model, probe_batch(test))
    return {
        "library": "nncf",
        "importance": importance,
        "config": cfg,
        **eff,
        "counted_on": "masked model (forward hooks, live channels)",
        "top1_before": before,
        "top1_after": after,
        "prune_s": prune_s,
        "extension_s": ext_s,
        "zero_filter_fraction": _peers.zero_filter_fraction(model),
        "claimed": _peers.nncf_pruning_stats(ctrl),
        "claimed_at_creation": claimed_init,
        **ft,
    }


def peer_main(args: argparse.Namespace) -> None:
    """``--peer``: load the FP32 checkpoint, run the Torch-Pruning / NNCF arms, write JSON (errors per arm)."""
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    _, test = make_data(args)
    fp32 = load_fp32(args, args.fp32_ckpt)
    res: dict[str, Any] = {"versions": {}, "arms": {}}
    for arm in args.arms:
        library = ARM_SPECS[arm][0]
        if library == "netsculpt":
            continue
        t0 = time.perf_counter()
        try:
            res["arms"][arm] = (run_tp if library == "torch-pruning" else run_nncf)(arm, fp32, test, args)
            res["arms"][arm]["arm_s"] = time.perf_counter() - t0
        except Exception as err:  # noqa: BLE001 - a peer failing is a result, not a crash
            log.exception("%s failed", arm)
            res["arms"][arm] = {"library": library, "error": f"{type(err).__name__}: {err}"}
    from importlib.metadata import PackageNotFoundError, version

    for name in ("torch-pruning", "nncf"):
        try:
            res["versions"][name] = version(name)
        except PackageNotFoundError:
            res["versions"][name] = "unavailable"
    Path(args.peer_out).write_text(json.dumps(res, indent=2, default=str))
