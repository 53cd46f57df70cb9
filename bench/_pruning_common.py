"""Arms, data, counts and the shared fine-tune of bench/pruning_fmnist.py, used in both venvs.

``ARM_SPECS`` names every arm (library, filter importance, global ranking); ``pruning_config`` is the
NNCF-dialect config netsculpt and NNCF both get; ``model_counts`` (``count_macs`` on a plain model) and
``effective_counts`` (forward hooks on live channels of a masked model) give MACs and parameters; ``finetune`` is
the budget every arm gets. The script's main run imports this module in the project venv, its ``--peer``
subprocess (bench/_pruning_peers.py) in the bench venv (``.venv-bench``): this module imports netsculpt's
sources at the top, so the script puts ``src/`` on ``sys.path`` before importing it when it runs as the peer.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from netsculpt.data import dataset_info, make_loaders
from netsculpt.metrics.macs import count_macs
from netsculpt.models import create_model
from netsculpt.train import cosine_schedule, evaluate, train_epoch

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
# arms with their own FLOPs target: Torch-Pruning's uniform ratio cannot stop at 50 % on ResNet-20 and lands at
# 52.0 %, so this arm removes as many FLOPs as `tp_l1` does
ARM_FLOPS = {"netsculpt_l1_inputs_f52": 0.52}
# LeGR arm: learned per-group affine ranking (netsculpt.algorithms.pruning.legr), evolved on a held-out slice of
# the training subset (never the test images); a small budget: generations x train_steps fine-tuning steps.
LEGR_PARAMS = {"generations": 32, "train_steps": 10, "population_size": 16, "num_samples": 4}
LEGR_VAL = 2000  # validation images for LeGR: the last ones of the 60k training set (disjoint from train and test)
PEER_ARMS = tuple(a for a, spec in ARM_SPECS.items() if spec[0] != "netsculpt")
WEIGHT_DECAY = 5e-4


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


def pruning_config(
    importance: str, target: float, all_weights: bool = False, legr: bool = False, scope: str | None = None
) -> dict[str, Any]:
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


def layer_widths(model: nn.Module) -> dict[str, int]:
    """Output channels of every conv and linear, by module name."""
    return {n: m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
            for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}  # fmt: skip
