"""The peer arms of bench/ekg_fmnist.py: Torch-Pruning 1.6.1 L1 and NNCF 2.19 global L1 at the same FLOPs target.

Runs inside the bench venv (``.venv-bench``; ``bench/ekg_fmnist.py --peer`` is started there by the main run).
Each arm prunes the same cached FP32 ResNet-20 once, re-estimates BatchNorm statistics on the same 512 images with
netsculpt's ``adapt_batchnorm`` (the recalibration every netsculpt arm gets), and then gets the same plain
fine-tune as the netsculpt arms, once per seed:

* ``tp_l1``: Torch-Pruning ``MagnitudePruner`` + ``MagnitudeImportance(p=1)``, uniform per-group ratio found by
  bisection so that at least the FLOPs target is removed (``bench/_pruning_peers.py``'s ``tp_find_ratio``);
  physically smaller model, MACs by ``count_macs``.
* ``nncf_l1_global``: NNCF 2.19 legacy ``filter_pruning`` with the bench's pruning settings and ``all_weights``
  (global ranking: NNCF's uniform mode rounds ResNet-20's channels to multiples of 8 and cannot land on 50 %);
  masks only, so MACs are counted on live channels (``bench/_pruning_common.py``'s ``effective_counts``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from netsculpt.algorithms.quantization.init import adapt_batchnorm
from netsculpt.init_args import wrap_loader
from netsculpt.metrics.macs import count_macs
from netsculpt.train import evaluate

PEER_ARMS = ("tp_l1", "nncf_l1_global")
Finetune = Callable[[nn.Module, Any, Any, int], float]


def _prune_tp(fp32: nn.Module, target: float, info: dict[str, Any]) -> nn.Module:
    import pruning_fmnist as pf  # bench/ is on sys.path (ekg_fmnist puts it there)

    t0 = time.perf_counter()
    if "pruning_ratio" not in info:  # the bisection once; the pruning itself per seed (deterministic)
        info["pruning_ratio"], trials = pf.tp_find_ratio(fp32, target, False)
        info["ratio_trials"] = len(trials)
    model = pf.tp_prune(copy.deepcopy(fp32), info["pruning_ratio"], False)
    info["prune_s"] = time.perf_counter() - t0
    return model


def _prune_nncf(fp32: nn.Module, cfg: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    import _peers

    info["extension_s"] = _peers.nncf_build_extension()  # one-time C++ build, not pruning time
    ctrl, model, info["prune_s"] = _peers._nncf_create(copy.deepcopy(fp32), cfg, None)
    info["claimed"] = _peers.nncf_pruning_stats(ctrl)
    return model  # type: ignore[no-any-return]


def _counts(arm: str, model: nn.Module, shape: list[int], probe: torch.Tensor) -> dict[str, int]:
    if arm == "tp_l1":
        return {"macs": int(count_macs(model, (torch.zeros(*shape),)).total),
                "params": sum(p.numel() for p in model.parameters())}  # fmt: skip
    import pruning_fmnist as pf

    return pf.effective_counts(model, probe)


def run_peer_arms(
    arms: list[str],
    fp32: nn.Module,
    cfg: dict[str, Any],
    data: tuple[Any, Any, Any],
    finetune: Finetune,
    args: Any,
    shape: list[int],
) -> dict[str, Any]:
    """``{arm: {"runs": [...], ...}}`` for the peer arms in ``arms``; ``data`` is ``(ft_set, bn_data, test)``."""
    ft_set, bn_data, test = data
    probe = next(iter(test))[0][:64]
    nncf_cfg = copy.deepcopy(cfg)
    nncf_cfg["compression"].pop("initializer", None)  # BN re-estimated below, the same way for both peers
    nncf_cfg["compression"]["params"]["all_weights"] = True
    out: dict[str, Any] = {}
    for arm in [a for a in arms if a in PEER_ARMS]:
        info: dict[str, Any] = {}
        try:
            runs = []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                torch.manual_seed(seed)
                model = (
                    _prune_tp(fp32, args.flops_target, info) if arm == "tp_l1" else _prune_nncf(fp32, nncf_cfg, info)
                )
                adapt_batchnorm(model, wrap_loader(bn_data), 512, torch.device("cpu"))
                before = float(evaluate(model, test, progress=False).accuracy) if seed == 0 else None
                ft_s = finetune(model, ft_set, args, seed)
                runs.append({"seed": seed, "top1_before_ft": before,
                             "top1": float(evaluate(model, test, progress=False).accuracy),
                             **_counts(arm, model, shape, probe), "finetune_s": ft_s,
                             "arm_s": time.perf_counter() - t0})  # fmt: skip
            out[arm] = {"runs": runs, **info}
        except Exception as err:  # noqa: BLE001 - a peer failing is a result, not a crash
            out[arm] = {"error": f"{type(err).__name__}: {err}"}
    return out
