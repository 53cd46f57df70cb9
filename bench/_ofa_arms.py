"""The supernet and the training arms of bench/ofa_fmnist.py: data, the elastic ResNet-20, one arm's run.

``ARMS`` names the four arms (``deps``, ``deps_no_eps``, ``bignas``, ``ofa``), ``SKIPPABLE`` the blocks elastic
depth may skip, ``WD`` / ``MOMENTUM`` / ``LABEL_SMOOTHING`` the training settings every arm shares. ``loaders``
gives the seeded Fashion-MNIST loaders at ``--image-size`` (``Resized``; ``Take`` cuts a loader to its first
batches), ``make_supernet`` the ``ElasticSupernet``, ``middle_config`` / ``corner_configs`` the measured subnets
and ``measure_config`` / ``top1`` their top-1 after BN recalibration. ``phases`` composes each arm from
``SupernetTrainer`` schedules, ``curve_steps`` picks the steps of the full-model curve around the DεpS switch and
``run_arm`` trains one arm on one seed and returns its result dict and the trained supernet.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import torch
import torch.nn.functional as F

from netsculpt.data import make_loaders
from netsculpt.models import create_model
from netsculpt.nas import DepthParams, ElasticityParams, ElasticSupernet, WidthParams
from netsculpt.nas.training import ScheduleParams, StageParams, SupernetTrainer
from netsculpt.train import evaluate

ARMS = ("deps", "deps_no_eps", "bignas", "ofa")
SKIPPABLE = ("layers.0.1", "layers.0.2", "layers.1.1", "layers.1.2", "layers.2.1", "layers.2.2")
WD, MOMENTUM, LABEL_SMOOTHING = 5e-4, 0.9, 0.1
log = logging.getLogger("bench.ofa_fmnist")


# ---- data -------------------------------------------------------------------------------------------------------
class Resized:
    """Batches of a loader, images resized to ``size`` (bilinear, antialiased); ``size`` 28 passes them through."""

    def __init__(self, loader: Any, size: int) -> None:
        self.loader, self.size = loader, size

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Any:
        for x, y in self.loader:
            if x.shape[-1] != self.size:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
            yield x, y


class Take:
    """The first ``n`` batches of a loader."""

    def __init__(self, loader: Any, n: int) -> None:
        self.loader, self.n = loader, n

    def __len__(self) -> int:
        return min(self.n, len(self.loader))

    def __iter__(self) -> Any:
        for i, b in enumerate(self.loader):
            if i >= self.n:
                return
            yield b


def loaders(args: argparse.Namespace, seed: int, test_limit: int | None = None) -> tuple[Resized, Resized]:
    train, test = make_loaders(
        "fashion_mnist",
        args.batch_size,
        train_limit=args.train_images,
        test_limit=test_limit or args.test_images,
        seed=seed,
    )
    return Resized(train, args.image_size), Resized(test, args.image_size)


# ---- supernet ---------------------------------------------------------------------------------------------------
def make_supernet(seed: int, image_size: int) -> ElasticSupernet:
    torch.manual_seed(seed)
    model = create_model("resnet20", in_channels=1, num_classes=10)
    params = ElasticityParams(
        dims=("width", "depth"),
        width=WidthParams(min_width=8, width_multipliers=(1.0, 0.75, 0.5)),
        depth=DepthParams(skipped_blocks=SKIPPABLE),
    )
    return ElasticSupernet(model, (torch.zeros(2, 1, image_size, image_size),), params)


def middle_config(net: ElasticSupernet) -> dict[str, Any]:
    width = {}
    for g, choices in net.search_space.width.items():
        target = 0.75 * max(choices)
        width[g] = min(choices, key=lambda w: (abs(w - target), -w))
    return {"width": width, "depth": [b for b in SKIPPABLE if b.endswith(".2")], "kernel": {}}


def corner_configs(net: ElasticSupernet) -> dict[str, Any]:
    return {"smallest": net.get_minimum_config(), "middle": middle_config(net), "largest": net.get_maximum_config()}


def bn_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches_tracked" in k}


def top1(model: torch.nn.Module, loader: Any) -> float:
    return 100.0 * float(evaluate(model, loader, progress=False).accuracy)


def measure_config(net: ElasticSupernet, cfg: Any, train: Any, test: Any, bn_batches: int) -> float:
    net.activate_subnet_for_config(cfg)
    net.recalibrate_bn(train, num_batches=bn_batches)
    acc = top1(net.model, test)
    net.activate_subnet_for_config(net.get_maximum_config())
    return acc


# ---- one arm ----------------------------------------------------------------------------------------------------
def phases(arm: str, args: argparse.Namespace, spe: int, seed: int) -> list[tuple[ScheduleParams, int, int]]:
    """``(params, first step, end step)`` of each trainer the arm runs in turn (step counters of that trainer)."""
    n = args.epochs
    common = {
        "steps_per_epoch": spe,
        "lr": args.lr,
        "seed": seed,
        "label_smoothing": LABEL_SMOOTHING,
        "num_random": 2,
        "kd_temperature": 1.0,
    }
    deps = ScheduleParams(schedule="deps", epochs=n, ramp_epochs=args.ramp_epochs, **common)
    if arm == "deps":
        return [(deps, 0, n * spe)]
    if arm == "bignas":
        return [(ScheduleParams(schedule="bignas", epochs=n, **common), 0, n * spe)]
    if arm == "deps_no_eps":
        switch = deps.switch_epoch * spe
        return [(deps, 0, switch), (ScheduleParams(schedule="bignas", epochs=n, **common), switch, n * spe)]
    nt = n // 2
    nd = max(1, (n - nt) // 3)
    nw = n - nt - nd
    if nw < 1:
        raise SystemExit("ofa_fmnist: the OFA arm needs --epochs >= 4")
    ofa_lr = args.ofa_lr if args.ofa_lr is not None else args.lr / 2
    stages = (
        StageParams(train_dims=("depth",), epochs=nd, depth_indicator=2, subnets_per_step=2, init_lr=ofa_lr),
        StageParams(
            train_dims=("depth", "width"),
            epochs=nw,
            depth_indicator=2,
            width_indicator=-1,
            reorg_weights=True,
            bn_adapt=True,
            subnets_per_step=4,
            init_lr=ofa_lr,
        ),
    )
    teacher = ScheduleParams(schedule="deps", epochs=nt, warmup_fraction=1.0, **common)
    return [(teacher, 0, nt * spe), (ScheduleParams(schedule="ofa", stages=stages, **common), 0, (nd + nw) * spe)]


def curve_steps(args: argparse.Namespace, spe: int, switch_epoch: int) -> set[int]:
    """Global steps after which the full model is evaluated: every tenth of an epoch in the window."""
    lo = max(0, switch_epoch - args.curve_before)
    hi = min(args.epochs, switch_epoch + args.curve_after)
    marks = sorted({max(1, round(k * spe / 10)) for k in range(1, 11)})
    return {e * spe + m for e in range(lo, hi) for m in marks} | {lo * spe}


def run_arm(arm: str, seed: int, args: argparse.Namespace) -> tuple[dict[str, Any], ElasticSupernet]:
    train, test = loaders(args, seed)
    _, curve_test = loaders(args, seed, test_limit=args.curve_images)
    spe = len(train)
    net = make_supernet(seed, args.image_size)
    opt = torch.optim.SGD(net.model.parameters(), lr=args.lr, momentum=MOMENTUM, weight_decay=WD)
    plan = phases(arm, args, spe, seed)
    switch_epoch = plan[0][0].switch_epoch
    want_curve = arm in ("deps", "deps_no_eps")
    marks = curve_steps(args, spe, switch_epoch) if want_curve else set()
    curve: list[dict[str, float]] = []
    epoch_seconds: list[float] = [0.0] * args.epochs
    epoch_phase: list[str] = [""] * args.epochs
    train_s = 0.0
    gstep = 0
    data = iter(())

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal data
        try:
            return next(data)
        except StopIteration:
            data = iter(train)
            return next(data)

    def curve_point() -> None:
        saved = bn_state(net.model)
        net.recalibrate_bn(Take(train, args.curve_bn_batches), num_batches=args.curve_bn_batches)
        acc = top1(net.model, curve_test)
        net.model.load_state_dict(saved, strict=False)
        curve.append({"epoch": gstep / spe, "top1": acc})

    if 0 in marks:
        curve_point()
    for params, start, end in plan:
        trainer = SupernetTrainer(net, opt, params, bn_adapt_loader=train, bn_adapt_batches=args.bn_batches)
        trainer.step = start
        for _ in range(start, end):
            x, y = next_batch()
            t0 = time.perf_counter()
            r = trainer.train_step(x, y)
            dt = time.perf_counter() - t0
            train_s += dt
            e = min(gstep // spe, args.epochs - 1)
            epoch_seconds[e] += dt
            epoch_phase[e] = epoch_phase[e] or r.phase
            gstep += 1
            if gstep in marks:
                curve_point()
    accs = {name: measure_config(net, cfg, train, test, args.bn_batches) for name, cfg in corner_configs(net).items()}
    log.info("%s seed %d: %s  train %.0f s", arm, seed, {k: round(v, 2) for k, v in accs.items()}, train_s)
    return {
        "arm": arm,
        "seed": seed,
        "top1": accs,
        "train_s": train_s,
        "epoch_s": epoch_seconds,
        "epoch_phase": epoch_phase,
        "switch_epoch": switch_epoch if want_curve else None,
        "curve": curve,
        "steps_per_epoch": spe,
    }, net
