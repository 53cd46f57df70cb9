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

import _peers  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from netsculpt.data import dataset_info, make_loaders  # noqa: E402
from netsculpt.metrics.macs import count_macs  # noqa: E402
from netsculpt.models import create_model  # noqa: E402
from netsculpt.train import cosine_schedule, evaluate, train_epoch  # noqa: E402

OUT = ROOT / "bench" / "results" / "pruning_fmnist.json"
# arm -> (library, filter importance, global ranking across layers)
ARM_SPECS: dict[str, tuple[str, str, bool]] = {
    "netsculpt_l1": ("netsculpt", "L1", False),
    "netsculpt_l2": ("netsculpt", "L2", False),
    "netsculpt_l1_global": ("netsculpt", "L1", True),
    "netsculpt_legr": ("netsculpt", "L1", True),
    "netsculpt_l1_inputs": ("netsculpt", "L1", False),  # importance_scope filters_and_inputs
    "netsculpt_l1_inputs_f52": ("netsculpt", "L1", False),  # the same at Torch-Pruning's 52 % FLOPs (ARM_FLOPS)
    "netsculpt_l1_inputs_tpw": ("netsculpt", "L1", False),  # the same with tp_l1's widths per group (TP's FLOPs)
    "netsculpt_l1_tpw": ("netsculpt", "L1", False),  # netsculpt_l1 with tp_l1's widths per group
    "tp_l1": ("torch-pruning", "L1", False),
    "tp_l1_global": ("torch-pruning", "L1", True),
    "nncf_l1": ("nncf", "L1", False),
    "nncf_l1_global": ("nncf", "L1", True),
}
ARMS = tuple(ARM_SPECS)
DEFAULT_ARMS = ("netsculpt_l1", "netsculpt_l1_inputs", "netsculpt_legr", "tp_l1", "nncf_l1", "nncf_l1_global")
# LeGR arm: learned per-group affine ranking (netsculpt.algorithms.pruning.legr), evolved on a held-out slice of
# the training subset (never the test images); a small budget: generations x train_steps fine-tuning steps.
# arms with their own FLOPs target: Torch-Pruning's uniform ratio cannot stop at 50 % on ResNet-20 and lands at
# 52.0 %, so this arm removes as many FLOPs as `tp_l1` does
ARM_FLOPS = {"netsculpt_l1_inputs_f52": 0.52}
LEGR_PARAMS = {"generations": 32, "train_steps": 10, "population_size": 16, "num_samples": 4}
LEGR_VAL = 2000  # validation images for LeGR: the last ones of the 60k training set (disjoint from train and test)
PEER_ARMS = tuple(a for a, spec in ARM_SPECS.items() if spec[0] != "netsculpt")
WEIGHT_DECAY = 5e-4
log = logging.getLogger("bench.pruning_fmnist")


# ---------------------------------------------------------------------------------------------- shared


def sample_size() -> list[int]:
    """Traced input shape, batch 1."""
    info = dataset_info("fashion_mnist")
    return [1, info.in_channels, *info.image_size]


def make_data(args: argparse.Namespace) -> tuple[Any, Any]:
    """Train/test loaders; a fresh call gives the same shuffling order (the generator is seeded)."""
    train, test = make_loaders(
        "fashion_mnist", args.batch_size, train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed
    )
    return train, test


def legr_val_loader(args: argparse.Namespace) -> Any:
    """The last ``LEGR_VAL`` images of the full training set: disjoint from the fine-tuning subset and the test set."""
    full, _ = make_loaders("fashion_mnist", 256, test_limit=1, seed=args.seed)
    n = len(full.dataset)  # type: ignore[arg-type]
    subset = torch.utils.data.Subset(full.dataset, range(n - LEGR_VAL, n))
    return torch.utils.data.DataLoader(subset, batch_size=256)


def load_fp32(args: argparse.Namespace, ckpt: Path) -> nn.Module:
    """The FP32 model from a state_dict file."""
    info = dataset_info("fashion_mnist")
    model: nn.Module = create_model(args.model, in_channels=info.in_channels, num_classes=info.num_classes)
    model.load_state_dict(torch.load(ckpt, weights_only=True))
    return model


def pruning_config(importance: str, target: float, all_weights: bool = False, legr: bool = False,
                   scope: str | None = None) -> dict[str, Any]:
    """The NNCF-dialect ``filter_pruning`` config used verbatim by netsculpt and NNCF (``legr``: learned ranking;
    ``scope``: netsculpt's ``importance_scope``)."""
    cfg: dict[str, Any] = {
        "input_info": {"sample_size": sample_size()},
        "compression": {
            "algorithm": "filter_pruning",
            "pruning_init": target,
            "params": {
                "schedule": "baseline",
                "pruning_flops_target": target,
                "filter_importance": importance,
                "all_weights": all_weights,
                "prune_first_conv": True,
                "prune_downsample_convs": True,
                "num_init_steps": 0,
                "pruning_steps": 1,
            },
            "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
        },
    }
    if scope is not None:
        cfg["compression"]["params"]["importance_scope"] = scope
    if legr:
        cfg["compression"]["params"].update(interlayer_ranking_type="learned_ranking", legr_params=dict(LEGR_PARAMS))
    return cfg


def model_counts(model: nn.Module) -> dict[str, int]:
    """Conv/linear MACs per sample (``count_macs``) and parameters of a plain (physically pruned) model."""
    x = torch.zeros(*sample_size())
    macs = count_macs(model, (x,)).total
    params = sum(p.numel() for n, p in model.named_parameters() if "_netsculpt" not in n)
    return {"macs": int(macs), "params": int(params)}


def effective_counts(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """MACs per sample and parameters that a masked model really needs, measured with forward hooks.

    A channel counts when its activation is not exactly zero on ``x`` (eval mode): a zeroed filter (with its
    BatchNorm zeroed too, as NNCF and netsculpt do) gives an all-zero channel, so it counts neither as an
    output of its conv nor as an input of the next one. Conv: ``out * in * kh * kw * H_out * W_out`` (exact
    for ``groups == 1``, the ResNets here); linear: ``in * out``; params: conv/linear weights (and biases) over
    the live channels plus 2 per live BatchNorm channel. On an unpruned or physically pruned model this equals
    ``count_macs`` and the parameter count (checked in the JSON).
    """
    macs = params = 0
    batch = x.shape[0]

    def live(t: torch.Tensor) -> int:
        dims = [d for d in range(t.dim()) if d != 1]
        return int((t.detach().abs().amax(dim=dims) > 0).sum())

    def hook(mod: nn.Module, inp: tuple[Any, ...], out: Any) -> None:
        nonlocal macs, params
        t_in = inp[0]
        if isinstance(mod, nn.Conv2d):
            c_in, c_out = live(t_in), live(out)
            k = mod.kernel_size[0] * mod.kernel_size[1]
            per_out = -(-c_in // mod.groups) * k
            macs += c_out * per_out * out.shape[2] * out.shape[3]
            params += c_out * per_out + (c_out if mod.bias is not None else 0)
        elif isinstance(mod, nn.Linear):
            c_in = live(t_in)
            macs += c_in * mod.out_features * (t_in.numel() // batch // t_in.shape[-1])
            params += c_in * mod.out_features + (mod.out_features if mod.bias is not None else 0)
        elif isinstance(mod, nn.BatchNorm2d):
            params += 2 * live(t_in) if mod.affine else 0

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return {"macs": macs, "params": params}


def top1(model: nn.Module, test: Any) -> float:
    """Top-1 on the test loader."""
    return float(evaluate(model, test, progress=False).accuracy)


def finetune(model: nn.Module, ctrl: Any, args: argparse.Namespace, arm: str) -> dict[str, Any]:
    """The shared budget: ``--epochs`` over a freshly seeded loader, SGD momentum 0.9 + per-step cosine LR."""
    torch.manual_seed(args.seed)
    train, _ = make_data(args)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=WEIGHT_DECAY)
    per_epoch = len(train) if args.max_steps is None else min(len(train), args.max_steps)
    sched = cosine_schedule(opt, args.epochs * per_epoch)
    epochs = []
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        if ctrl is not None:
            ctrl.scheduler.epoch_step()
        res = train_epoch(
            model, train, opt, F.cross_entropy, ctrl=ctrl, progress=args.progress, lr_scheduler=sched,
            max_steps=args.max_steps, desc=f"{arm} {epoch + 1}/{args.epochs}",
        )  # fmt: skip
        epochs.append({"loss": res.loss, "train_top1": res.accuracy, "steps": res.steps, "seconds": res.seconds})
    return {"finetune_s": time.perf_counter() - t0, "epochs_log": epochs}


def probe_batch(test: Any, n: int = 64) -> torch.Tensor:
    """Real images for the hook-based counts (a real batch keeps live channels non-zero)."""
    x: torch.Tensor = next(iter(test))[0]
    return x[:n]


# -------------------------------------------------------------------------------------------- netsculpt


def layer_widths(model: nn.Module) -> dict[str, int]:
    """Output channels of every conv and linear, by module name."""
    return {n: m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
            for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}  # fmt: skip


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
        legr_cfg = register_default_init_args(cfg, make_data(args)[0], criterion=nn.CrossEntropyLoss(),
                                              val_loader=legr_val_loader(args))
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
        "claimed": {k: stats.get(k) for k in ("pruning_level", "filter_pruning_rate", "flops_removed",
                                              "params_before", "params_after")},
        **ft,
    }


# ------------------------------------------------------------------------------------- peers (.venv-bench)


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


def run_peers(ckpt: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run the peer arms in the bench venv; returns ``{"arms": ..., "versions": ...}`` or ``{"error": ...}``."""
    arms = [a for a in args.arms if a in PEER_ARMS]
    if not arms:
        return {"arms": {}}
    keys = ("model", "epochs", "max_steps", "lr", "train_limit", "test_limit", "batch_size", "seed", "threads",
            "flops_target")
    argv = ["--peer", "--fp32-ckpt", str(ckpt), *_peers.cli_flags(args, keys, zero_for_none=("train_limit", "test_limit"))]
    argv += ["--progress"] if args.progress else []
    return _peers.run_in_bench_venv(__file__, [*argv, "--arms", *arms])


# ------------------------------------------------------------------------------------------ orchestration


def print_table(res: dict[str, Any]) -> None:
    """Markdown table of every arm."""
    fp32 = res["fp32"]
    print(f"FP32 {res['model']}: top-1 {100 * fp32['top1']:.2f} %, {fp32['macs'] / 1e6:.2f} M MACs, "
          f"{fp32['params']:,} params; fine-tuning: {res['epochs']} epoch(s) on {res['train_samples']} images, "
          f"SGD lr {res['lr']} cosine, batch {res['batch_size']}")
    print("| arm | library | FLOPs removed | params | top-1 before FT | top-1 after FT | drop vs FP32 | prune s "
          "| fine-tune s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arm, r in res["arms"].items():
        lib = r.get("library", ARM_SPECS[arm][0])
        version = res.get("versions", {}).get(lib)
        lib = f"{lib} {version}" if version and version != "unavailable" else lib
        if "error" in r:
            print(f"| {arm} | {lib} | failed: {str(r['error'])[:100]} | | | | | | |")
            continue
        removed = 1.0 - r["macs"] / fp32["macs"]
        mark = " (masks)" if lib.startswith("nncf") else ""
        print(f"| {arm} | {lib} | {100 * removed:.1f} %{mark} | {r['params']:,} | {100 * r['top1_before']:.2f} "
              f"| {100 * r['top1_after']:.2f} | {100 * (fp32['top1'] - r['top1_after']):.2f} pt "
              f"| {r['prune_s']:.2f} | {r['finetune_s']:.1f} |")
    for arm, r in res["arms"].items():
        if "pruning_ratio" in r:
            print(f"{arm}: {'global' if r['global_pruning'] else 'uniform'} pruning_ratio {r['pruning_ratio']:.4f} "
                  f"found by bisection in {r['ratio_search_s']:.1f} s (not in prune s)")
        if "claimed" in r and r.get("library") == "nncf":
            c = r["claimed"]
            print(f"{arm}: counted on the masked model (filters zeroed, not removed); NNCF's own statistics: "
                  f"{100 * c['flops_pruning_level']:.1f} % FLOPs, {100 * c['params_pruning_level']:.1f} % params, "
                  f"{100 * c['filter_pruning_level']:.1f} % filters removed")
    if "error" in res.get("peers", {}):
        print(res["peers"]["error"])


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
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(DEFAULT_ARMS),
                    help=f"default: {' '.join(DEFAULT_ARMS)}")
    ap.add_argument("--seed", type=int, default=0, help="data order and compression init of the fine-tune")
    ap.add_argument("--fp32-seed", type=int, default=0, help="seed of the shared FP32 start (same for every --seed)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-peers", action="store_true", help="netsculpt arms only")
    ap.add_argument("--no-cache", dest="cache", action="store_false", help="retrain the FP32 model")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--merge", action="store_true", help="add the arms run now to an existing --out of the same settings")
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
    fp32, fp32_s = fp32_baseline(args.model, args.fp32_epochs, args.train_limit, args.fp32_seed,
                                 use_cache=args.cache, progress=args.progress)
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

    res["versions"] = {"netsculpt": getattr(netsculpt, "__version__", "?"), "torch": torch.__version__,
                       **res.get("versions", {})}
    res.update(total_s=time.perf_counter() - t_all, host=platform.node(), threads=args.threads,
               load_avg=os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge and args.out.exists():  # add these arms to an earlier run of the same settings
        old = json.loads(args.out.read_text())
        for key in ("model", "epochs", "lr", "seed", "train_samples", "test_samples", "flops_target"):
            if old.get(key) != res.get(key):
                raise SystemExit(f"--merge: {args.out} has {key}={old.get(key)!r}, this run {res.get(key)!r}")
        if abs(old["fp32"]["top1"] - res["fp32"]["top1"]) > 1e-9:
            raise SystemExit(f"--merge: {args.out} starts from another FP32 model")
        old["arms"].update(res["arms"])
        old.setdefault("merged_runs", []).append({k: res[k] for k in ("total_s", "load_avg", "versions")})
        res = old
    args.out.write_text(json.dumps(res, indent=2, default=str))
    print_table(res)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
