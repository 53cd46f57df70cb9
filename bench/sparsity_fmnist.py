"""Fashion-MNIST ResNet-20: 50 % magnitude sparsity, 50 % RB sparsity, 50 % sparsity + INT8; netsculpt next to NNCF 2.19.

One FP32 model is trained first and saved; every arm fine-tunes a copy of it with the same NNCF-dialect
config, data order, optimizer (Adam, ``--lr``; RB mask logits at ``--mask-lr``; every LR decayed per step to 0 by
one cosine over the fine-tune, or ``--lr-schedule constant``, the earlier protocol) and epochs, in netsculpt
and (in the bench venv, ``.venv-bench``, through a subprocess running this script with ``--peer-nncf``) in
NNCF 2.19's legacy API. Reported per arm: top-1 and drop vs FP32, measured sparsity, training-step time
relative to FP32 (median, steps alternated with the FP32 model in one process), and for netsculpt the gzip
size of the stripped state_dict relative to the FP32 one. Unstructured sparsity shrinks the compressed
file; it does not speed up ONNX Runtime (its dense kernels multiply the zeros too).

The control arm ``dense_finetune`` (netsculpt only) fine-tunes the FP32 model with the same optimizer, LR, epochs
and loop and no compression: compressed − control per seed is the part of the drop due to sparsity. Every arm
(both libraries) restores the training loader's generator and the torch seed before its epochs, so one seed
means one data order whichever arms run (NNCF's init draws from the loader: the state is restored after it);
each trace row keeps a digest of the epoch's labels in order (``order``) to check it. ``--merge`` adds the arms
run now to an existing ``--out`` of the same settings; ``--nncf only`` runs NNCF's arms alone (with ``--merge``);
``--epoch-eval`` adds test top-1 after every epoch; ``--loss-scale`` (diagnostic) multiplies ``ctrl.loss()``.
The two libraries' create and measure functions are in bench/_sparsity_libs.py, the printed table and ``--merge``
in bench/_sparsity_report.py; the README tables come from bench/_seed_sparsity.py.

The RB budget: every mask logit starts at logit(0.99) = 4.6 and must cross 0 to drop its weight; Adam moves a
logit by at most about its LR per step. With 10k images, batch 128 (78 steps per epoch) and the target level at
epoch 1, ``--mask-lr`` 0.1 gives the logits 156 steps x 0.1 = 15.6 of travel before the level is due with a
constant LR, about 11 under the default cosine decay (mean factor 0.71 over those steps); the earlier
1e-2 gave 2.3 over the whole run, so no weight could be dropped (0 % sparsity in both libraries). Both libraries
get the same mask LR.

Usage (one seed of magnitude_50 + rb_50 + dense_finetune in both libraries: about 10 min on 2 cores):
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/sparsity_fmnist.py [--fp32-epochs 3] [--epochs 3] [--seed S]
        [--arms A ...] [--train-limit N] [--test-limit N] [--nncf auto|off|only] [--out PATH] [--merge]
    Control of an existing seed: --seed S --arms dense_finetune --merge --out bench/results/sparsity_fmnist_seedS.json

Smoke run (a few minutes):
    .venv/bin/python bench/sparsity_fmnist.py --fp32-epochs 1 --epochs 1 --train-limit 512 --test-limit 512 \
        --timing-steps 3 --out /tmp/sparsity_smoke.json

Prints a table and writes bench/results/sparsity_fmnist.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if "--peer-nncf" in sys.argv:  # the bench venv has no netsculpt installed: use the sources for data and model
    sys.path.insert(0, str(ROOT / "src"))

import _peers  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _fp32 import fp32_baseline  # noqa: E402
from _sparsity_libs import netsculpt_create, netsculpt_measure, nncf_create, nncf_measure, sparsity_now  # noqa: E402
from _sparsity_report import merge, print_table  # noqa: E402
from torch import nn  # noqa: E402

from netsculpt.data import dataset_info, make_loaders  # noqa: E402
from netsculpt.models import create_model  # noqa: E402
from netsculpt.train import cosine_schedule, evaluate, train_epoch  # noqa: E402

OUT = ROOT / "bench" / "results" / "sparsity_fmnist.json"
CONTROL = "dense_finetune"
ARMS = ("magnitude_50", "rb_50", "magnitude_50+int8", CONTROL)


def arm_configs(args: argparse.Namespace, sample: list[int]) -> dict[str, dict[str, Any]]:
    """The NNCF-dialect config of each arm (identical for both libraries)."""
    target_epoch = max(args.epochs - 2, 1)  # NNCF divides by it
    params = {
        "sparsity_target": 0.5,
        "sparsity_target_epoch": target_epoch,
        "sparsity_freeze_epoch": max(args.epochs - 1, 1),  # the last epoch fine-tunes with fixed masks
    }
    magnitude = {
        "algorithm": "magnitude_sparsity",
        "params": {**params, "schedule": "polynomial"},
        "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
    }
    rb = {"algorithm": "rb_sparsity", "params": {**params, "schedule": "exponential"}}
    quant = {
        "algorithm": "quantization",
        "initializer": {"range": {"num_init_samples": 512}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
    }
    base = {"input_info": {"sample_size": sample}}
    return {
        "magnitude_50": {**base, "compression": magnitude},
        "rb_50": {**base, "compression": rb},
        "magnitude_50+int8": {**base, "compression": [magnitude, quant]},
    }


def make_optimizer(model: nn.Module, args: argparse.Namespace) -> torch.optim.Optimizer:
    """Adam; RB mask logits (netsculpt ``.logit``, NNCF ``._mask``) get ``--mask-lr``."""
    masks, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (masks if name.endswith((".logit", "._mask")) else rest).append(p)
    groups: list[dict[str, Any]] = [{"params": rest, "lr": args.lr}]
    if masks:
        groups.append({"params": masks, "lr": args.mask_lr})
    return torch.optim.Adam(groups)


def step_time_ratio(fp32: nn.Module, model: nn.Module, ctrl: Any, batch: Any, steps: int) -> dict[str, float]:
    """Median training-step seconds (scheduler step, forward, loss + ctrl.loss(), backward, SGD) of both models."""
    x, y = batch
    opts = {
        "fp32": torch.optim.SGD(fp32.parameters(), lr=1e-5),
        "compressed": torch.optim.SGD(model.parameters(), lr=1e-5),
    }
    times: dict[str, list[float]] = {"fp32": [], "compressed": []}
    fp32.train()
    model.train()
    for i in range(steps + 2):
        for key, m in (("fp32", fp32), ("compressed", model)):
            t0 = time.perf_counter()
            if key == "compressed":
                ctrl.scheduler.step()
            loss = F.cross_entropy(m(x), y)
            if key == "compressed":
                loss = loss + ctrl.loss()
            opts[key].zero_grad(set_to_none=True)
            loss.backward()
            opts[key].step()
            if i >= 2:  # two warm-up rounds
                times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"fp32_s": med["fp32"], "compressed_s": med["compressed"], "ratio": med["compressed"] / med["fp32"]}


class ScaledLoss:
    """Diagnostic ``--loss-scale``: the controller with its ``loss()`` (the RB sparsity penalty) multiplied."""

    def __init__(self, ctrl: Any, scale: float) -> None:
        self.ctrl, self.scale = ctrl, scale

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ctrl, name)

    def loss(self) -> Any:
        return self.ctrl.loss() * self.scale


def run_arms(library: str, fp32: nn.Module, train: Any, test: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune every arm from the FP32 model; returns per-arm results."""
    create = netsculpt_create if library == "netsculpt" else nncf_create
    measure = netsculpt_measure if library == "netsculpt" else nncf_measure
    info = dataset_info("fashion_mnist")
    configs = arm_configs(args, [1, info.in_channels, *info.image_size])
    batch = next(iter(train))
    order = train.generator.get_state()  # every arm's epochs start from this loader state
    out: dict[str, Any] = {}
    for arm in args.arms:
        t0, eval_s = time.perf_counter(), 0.0
        torch.manual_seed(args.seed)
        ctrl, model = (
            (None, copy.deepcopy(fp32)) if arm == CONTROL else create(copy.deepcopy(fp32), configs[arm], train)
        )
        train.generator.set_state(order)  # after create: NNCF's init iterates the loader
        if ctrl is not None and args.loss_scale != 1.0:
            ctrl = ScaledLoss(ctrl, args.loss_scale)
        opt = make_optimizer(model, args)
        sched = cosine_schedule(opt, args.epochs * len(train)) if args.lr_schedule == "cosine" else None
        loader = _peers.OrderDigest(train)
        trace = []
        for epoch in range(args.epochs):
            if ctrl is not None:
                ctrl.scheduler.epoch_step()
            ep = train_epoch(
                model, loader, opt, F.cross_entropy, ctrl=ctrl, progress=args.progress, desc=f"{arm}:{epoch}",
                lr_scheduler=sched,
            )
            row: dict[str, Any] = {"epoch": epoch, "loss": ep.loss, "order": loader.digest}
            if ctrl is not None:
                row["sparsity"] = sparsity_now(ctrl, library)
            if args.epoch_eval:
                t1 = time.perf_counter()
                row["top1"] = evaluate(model, test, progress=False).accuracy
                eval_s += time.perf_counter() - t1
            trace.append(row)
        top1 = evaluate(model, test, progress=False).accuracy
        seconds = time.perf_counter() - t0 - eval_s
        res = {"top1": top1, "finetune_s": seconds, "trace": trace}
        if ctrl is None:
            out[arm] = res
            continue
        res.update(measure(ctrl, fp32))
        tctrl, tmodel = create(copy.deepcopy(fp32), configs[arm], train)  # fresh copy: time before freezing
        res["step"] = step_time_ratio(copy.deepcopy(fp32), tmodel, tctrl, batch, args.timing_steps)
        if library == "netsculpt" and arm.endswith("int8") and args.onnx:
            res["onnxruntime_top1"] = ort_accuracy(ctrl, test, args)
        out[arm] = res
    return out


def ort_accuracy(ctrl: Any, test: Any, args: argparse.Namespace) -> float:
    """Top-1 of the exported INT8 ONNX model in ONNX Runtime."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = ctrl.export_model(Path(tmp) / "m.onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        correct = total = 0
        for x, y in test:
            correct += int((sess.run(None, {name: x.numpy()})[0].argmax(1) == y.numpy()).sum())
            total += len(y)
    return correct / max(total, 1)


def run_nncf_peer(ckpt: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    """Run the NNCF arms in the bench venv (a subprocess of this script); ``None`` when switched off."""
    if args.nncf == "off" or not _peers.BENCH_PYTHON.exists():
        return None
    arms = [a for a in args.arms if a != CONTROL]
    if not arms:
        return None
    keys = ("epochs", "train_limit", "test_limit", "batch_size", "lr", "mask_lr", "lr_schedule", "timing_steps",
            "threads", "seed")
    argv = ["--peer-nncf", "--fp32-ckpt", str(ckpt), *_peers.cli_flags(args, keys), "--arms", *arms]
    if args.epoch_eval:
        argv.append("--epoch-eval")
    return _peers.run_in_bench_venv(__file__, argv, "NNCF run")


def peer_main(args: argparse.Namespace) -> None:
    """``--peer-nncf``: load the FP32 checkpoint, run the NNCF arms, write JSON."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    _peers.nncf_build_extension()
    info = dataset_info("fashion_mnist")
    train, test = make_loaders(
        "fashion_mnist", args.batch_size, train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed
    )
    fp32 = create_model(args.model, in_channels=info.in_channels, num_classes=info.num_classes)
    fp32.load_state_dict(torch.load(args.fp32_ckpt, weights_only=True))
    res = {
        "fp32_top1": evaluate(fp32, test, progress=False).accuracy,
        "arms": run_arms("nncf", fp32, train, test, args),
    }
    import nncf

    res["version"] = nncf.__version__
    Path(args.peer_out).write_text(json.dumps(res, indent=2, default=str))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--fp32-epochs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs per arm")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument(
        "--mask-lr", type=float, default=0.1, help="Adam LR of the RB mask logits (see the module docstring)"
    )
    ap.add_argument(
        "--lr-schedule", choices=["cosine", "constant"], default="cosine",
        help="per-step cosine decay of every LR to 0 over the fine-tune (as the FP32 start was trained), or constant",
    )  # fmt: skip
    ap.add_argument("--train-limit", type=int, default=10000)
    ap.add_argument("--test-limit", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--timing-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="data order and compression init of the fine-tune")
    ap.add_argument("--fp32-seed", type=int, default=0, help="seed of the shared FP32 start (same for every --seed)")
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    ap.add_argument("--nncf", choices=["auto", "off", "only"], default="auto", help="only: skip netsculpt's arms")
    ap.add_argument("--no-onnx", dest="onnx", action="store_false")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--merge", action="store_true", help="add the arms run now to an existing --out of the same settings"
    )
    ap.add_argument("--epoch-eval", action="store_true", help="test top-1 after every epoch (in the trace)")
    ap.add_argument("--loss-scale", type=float, default=1.0, help="diagnostic: multiply ctrl.loss() (netsculpt)")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--peer-nncf", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fp32-ckpt", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--peer-out", type=Path, help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.peer_nncf:
        peer_main(args)
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    info = dataset_info("fashion_mnist")
    train, test = make_loaders(
        "fashion_mnist", args.batch_size, train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed
    )
    fp32, fp32_s = fp32_baseline(args.model, args.fp32_epochs, args.train_limit, args.fp32_seed, progress=args.progress)
    fp32_top1 = evaluate(fp32, test, progress=False).accuracy
    res: dict[str, Any] = {
        "model": args.model, "fp32_epochs": args.fp32_epochs, "epochs": args.epochs, "arms": args.arms,
        "seed": args.seed, "fp32_seed": args.fp32_seed, "lr": args.lr, "mask_lr": args.mask_lr,
        "lr_schedule": args.lr_schedule,
        "train_samples": len(train.dataset), "test_samples": len(test.dataset),  # type: ignore[arg-type]
        "configs": arm_configs(args, [1, info.in_channels, *info.image_size]), "fp32_train_s": fp32_s,
        "netsculpt": {"fp32_top1": fp32_top1},
    }  # fmt: skip
    if args.loss_scale != 1.0:
        res["loss_scale"] = args.loss_scale
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "fp32.pt"
        torch.save(fp32.state_dict(), ckpt)
        torch.manual_seed(args.seed)
        res["netsculpt"]["arms"] = run_arms("netsculpt", fp32, train, test, args) if args.nncf != "only" else {}
        torch.manual_seed(args.seed)
        res["nncf"] = run_nncf_peer(ckpt, args)
    res.update(host=platform.node(), threads=args.threads, load_avg=os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge and args.out.exists():
        res = merge(json.loads(args.out.read_text()), res, args)
    args.out.write_text(json.dumps(res, indent=2, default=str))
    print_table(res)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
