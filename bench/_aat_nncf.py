"""The NNCF 2.19 arm of bench/aat_fmnist.py: NNCF's legacy API with the same config, callbacks and budget.

Runs inside the bench venv (``.venv-bench``): the main run starts ``bench/aat_fmnist.py --peer-nncf`` there
(``aat_fmnist.run_nncf_peer``), which calls ``peer_main``: it loads the FP32 checkpoint the main run saved, runs
``nncf.torch.create_compressed_model`` + ``create_accuracy_aware_training_loop`` (``adaptive_compression_level``)
and writes the result as JSON (an ``error`` entry if it fails) to ``--peer-out``. NNCF's loop has no stop-reason
field, so ``_nncf_stop_reason`` infers it from the runner's state. ``nncf`` is imported inside the functions.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import _peers
import torch
from _aat_common import Callbacks, aat_config, ctrl_rate, fp32_model, make_data, sweep_levels
from torch import nn


def _nncf_stop_reason(runner: Any) -> str:
    """What ended NNCF's search loop, read off the runner (NNCF 2.19 logs it but does not store it)."""
    step, min_step = float(runner.compression_rate_step), float(runner.minimal_compression_rate_step)
    if step < min_step:
        return f"compression rate step {step:.4g} below minimal_compression_rate_step (inferred)"
    if runner.cumulative_epoch_count >= runner.maximal_total_epochs:
        return "maximal_total_epochs reached (inferred)"
    target = float(runner.compression_rate_target)
    if target >= float(runner.maximal_compression_rate) - 1e-9:
        return f"maximal compression rate {runner.maximal_compression_rate} reached (inferred)"
    if target < float(runner.minimal_compression_rate):
        return "cannot meet the accuracy criterion even at the minimal compression rate (inferred)"
    return "unknown"


def nncf_pruned(ctrl: Any, model: nn.Module) -> dict[str, float]:
    """The same measures for NNCF: nominal level, zeroed Conv2d filters counted on the model, NNCF's FLOPs removed."""
    st = _peers.nncf_pruning_stats(ctrl)
    return {
        "compression_rate": float(ctrl.compression_rate),
        "filters_removed": _peers.zero_filter_fraction(model),
        "flops_removed": st["flops_pruning_level"],
        "library_filter_rate": st["filter_pruning_level"],  # NNCF's own: of all its counted filters
    }


def run_nncf(args: argparse.Namespace) -> dict[str, Any]:
    """NNCF 2.19's legacy create_compressed_model + adaptive_compression_level loop, same config and callbacks."""

    _peers.ensure_nncf_env()
    ext_s = _peers.nncf_build_extension()
    import nncf
    from nncf import NNCFConfig
    from nncf.common.accuracy_aware_training import create_accuracy_aware_training_loop

    state = torch.load(args.fp32_ckpt, weights_only=True)
    probe_ctrl, probe, _ = _peers._nncf_create(fp32_model(args, state), aat_config(args), None)
    levels = sweep_levels(probe_ctrl, probe, nncf_pruned, args)
    model = fp32_model(args, state)
    cb = Callbacks(args)
    a0 = cb.validate_fn(model, 0)
    init_train, _ = make_data(args)
    torch.manual_seed(args.seed)
    cfg = aat_config(args)
    # register_default_init_args on the same loader netsculpt gets (BN adaptation), no graph dumps, log_dir in /tmp
    ctrl, model, wrap_s = _peers._nncf_create(model, cfg, init_train)
    cb.ctrl, cb.model = ctrl, model
    loop = create_accuracy_aware_training_loop(NNCFConfig.from_dict(cfg), ctrl, a0)
    with tempfile.TemporaryDirectory(prefix="aat_nncf_") as log_dir:
        t0 = time.perf_counter()
        model = loop.run(
            model,
            train_epoch_fn=cb.train_epoch_fn,
            validate_fn=cb.validate_fn,
            configure_optimizers_fn=cb.configure_optimizers_fn,
            log_dir=log_dir,
        )
        t_loop = time.perf_counter() - t0
    cb.ctrl = None
    final_acc = cb.validate_fn(model, -1)
    r = loop.runner
    st = loop.statistics
    rate = float(st.compression_rate)
    at_rate = [h["accuracy"] for h in cb.history
               if h["compression_rate"] is not None and abs(h["compression_rate"] - rate) < 1e-6
               and h["accuracy"] >= r.minimal_tolerable_accuracy]  # fmt: skip
    return {
        "version": nncf.__version__,
        "fp32_top1": a0,
        "final_top1": final_acc,
        "final_compression_rate": rate,
        "ctrl_compression_rate": ctrl_rate(ctrl),
        "best_accuracy": max(at_rate, default=None),  # best validation at the final rate meeting the criterion
        "max_val_accuracy": max((h["accuracy"] for h in cb.history), default=None),
        "minimal_tolerable_accuracy": float(r.minimal_tolerable_accuracy),
        "epochs": int(r.cumulative_epoch_count),
        "stop_reason": _nncf_stop_reason(r),
        "final_compression_rate_step": float(r.compression_rate_step),
        "maximal_compression_rate": float(r.maximal_compression_rate),
        "loop_s": t_loop,
        "wrap_s": wrap_s,
        "extension_s": ext_s,
        "masks": _peers.nncf_pruning_stats(ctrl),
        "zero_filter_fraction": _peers.zero_filter_fraction(model),
        "training_history": [[float(k), float(v)] for k, v in r.compressed_training_history.items()],
        "history": cb.history,
        "pruned": nncf_pruned(ctrl, model),
        "levels": levels,
    }


def peer_main(args: argparse.Namespace) -> None:
    """``--peer-nncf``: run NNCF's loop and write JSON (an ``error`` entry if it fails)."""
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    try:
        res = run_nncf(args)
    except Exception as err:  # noqa: BLE001 - the failure is the result
        logging.getLogger("bench.aat").exception("NNCF run failed")
        res = {"error": f"{type(err).__name__}: {err}"}
    Path(args.peer_out).write_text(json.dumps(res, indent=2, default=str))
