"""Fashion-MNIST accuracy: FP32 ResNet-20 vs INT8 QAT in netsculpt and in NNCF 2.19, one seed per run.

Every arm starts from the same cached FP32 model (``_fp32.fp32_baseline``: ``--fp32-epochs`` at lr 0.1 on the
first ``--train-limit`` images, seed ``--fp32-seed``, the same for every ``--seed``) and gets the same fine-tune:
``--qat-epochs`` of SGD (lr ``--qat-lr``, Nesterov momentum 0.9, weight decay 5e-4 on conv/linear weights only,
never on quantizer parameters), a per-step cosine schedule and the same data order. Arms:

* ``netsculpt_int8``: netsculpt QAT with ``QAT_CONFIG`` (8-bit, per-channel weights, range init on 512 samples,
  BN adaptation on 2048), then its exported ONNX re-evaluated in ONNX Runtime;
* ``fp32_finetune``: the control, the same fine-tune without quantization; INT8 − control per seed is the loss
  due to quantization, control − FP32 the fine-tune's own effect;
* ``nncf_int8``: NNCF 2.19's legacy QAT with the same config dict, run in the bench venv (``.venv-bench``)
  through a subprocess of this script (``--peer-nncf``); its legacy ONNX export (standard Q/DQ ops, batch dim
  rewritten to dynamic) is re-evaluated in ONNX Runtime too. ``--nncf off`` skips it.

``--seed`` sets the data order of the fine-tune and everything seeded after the FP32 start. Every arm (both
libraries) restores the training loader's generator and the torch seed after its wrap (range init and BN
adaptation draw from the loader), so one seed means one data order; each arm records a digest of the labels in
the order it trained on (``order``) to check it.

Usage (about 15 min per seed on 2 quiet cores, plus the FP32 training once):
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/accuracy_fmnist.py [--seed S] [--fp32-seed 0]
        [--fp32-epochs 3] [--qat-epochs 1] [--train-limit 20000] [--nncf auto|off] [--out PATH]

Smoke run (a couple of minutes):
    .venv/bin/python bench/accuracy_fmnist.py --fp32-epochs 1 --train-limit 512 --test-limit 512 \
        --out /tmp/accuracy_smoke.json

Prints a table and writes bench/results/accuracy_fmnist_seed{seed}.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if "--peer-nncf" in sys.argv:  # the bench venv has no netsculpt installed: use the sources for data and model
    sys.path.insert(0, str(ROOT / "src"))

import _onnx_peers  # noqa: E402
import _peers  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _fp32 import fp32_baseline  # noqa: E402
from _machine import machine_info  # noqa: E402
from torch import nn  # noqa: E402

from netsculpt.data import dataset_info, make_loaders  # noqa: E402
from netsculpt.models import create_model  # noqa: E402
from netsculpt.train import evaluate, train_epoch  # noqa: E402
from netsculpt.train.fit import cosine_schedule  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CONTROL = "fp32_finetune"
QAT_CONFIG: dict[str, Any] = {
    "algorithm": "quantization",
    "weights": {"per_channel": True},
    "initializer": {"range": {"num_init_samples": 512}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 2048}},
    "export_to_onnx_standard_ops": True,  # NNCF: Q/DQ ops ONNX Runtime can run; netsculpt always exports them
}


def qat_config(sample: list[int]) -> dict[str, Any]:
    """The NNCF-dialect config both libraries get."""
    return {"input_info": {"sample_size": sample}, "compression": copy.deepcopy(QAT_CONFIG)}


def make_sgd(model: nn.Module, args: argparse.Namespace) -> tuple[torch.optim.Optimizer, int]:
    """SGD (Nesterov, momentum 0.9) with weight decay on the conv/linear weights only; returns it and how many
    tensors are decayed (the same in every arm). Biases, BN and quantizer parameters (netsculpt ``_netsculpt``,
    NNCF ``pre_ops`` / ``external_quantizers``, per-channel scales included) are not decayed."""
    decay, rest = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        parts = name.split(".")
        quantizer = bool({"_netsculpt", "pre_ops", "external_quantizers"} & set(parts))
        (decay if p.ndim > 1 and parts[-1] == "weight" and not quantizer else rest).append(p)
    groups = [{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=args.qat_lr, momentum=0.9, nesterov=True), len(decay)


def netsculpt_create(model: nn.Module, cfg: dict[str, Any], train: Any) -> tuple[Any, nn.Module]:
    from netsculpt import create_compressed_model, register_default_init_args

    return create_compressed_model(model, register_default_init_args(cfg, train))  # type: ignore[arg-type]


def nncf_create(model: nn.Module, cfg: dict[str, Any], train: Any) -> tuple[Any, nn.Module]:
    _peers.ensure_nncf_env()
    from nncf import NNCFConfig
    from nncf.torch import create_compressed_model, register_default_init_args

    cfg = {**cfg, "log_dir": tempfile.mkdtemp(prefix="netsculpt-bench-nncf-")}  # keep NNCF's logs out of the tree
    config = register_default_init_args(NNCFConfig.from_dict(cfg), train, device="cpu")
    return create_compressed_model(model, config, dump_graphs=False)  # type: ignore[no-any-return]


def ort_accuracy(path: str | Path, loader: Any, threads: int) -> float:
    """Top-1 accuracy of an ONNX model in ONNX Runtime."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    correct = total = 0
    for x, y in loader:
        correct += int((sess.run(None, {name: x.numpy()})[0].argmax(1) == y.numpy()).sum())
        total += len(y)
    return correct / max(total, 1)


def export_and_score(library: str, ctrl: Any, model: nn.Module, test: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Export the trained INT8 model to ONNX and measure its top-1 in ONNX Runtime (and agreement with torch)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "int8.onnx"
        if library == "netsculpt":
            path = Path(ctrl.export_model(path))
        else:  # NNCF's legacy export has a fixed batch of 1: rewrite dim 0 to dynamic, then check against torch
            _onnx_peers.nncf_export_onnx(ctrl, path, dynamic_batch=True)
        x = next(iter(test))[0]
        out = {
            "onnxruntime_top1": ort_accuracy(path, test, args.threads),
            "onnx_max_abs_diff": _onnx_peers.onnx_max_abs_diff(path, model, x, args.threads),
            "onnx_s": time.perf_counter() - t0,
        }
    return out


def run_arms(library: str, fp32: nn.Module, train: Any, test: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune each arm of ``library`` from the FP32 model with one data order; returns per-arm results."""
    info = dataset_info("fashion_mnist")
    cfg = qat_config([1, info.in_channels, *info.image_size])
    arms = ["netsculpt_int8", CONTROL] if library == "netsculpt" else ["nncf_int8"]
    create = netsculpt_create if library == "netsculpt" else nncf_create
    order = train.generator.get_state()  # every arm's epochs start from this loader state
    out: dict[str, Any] = {}
    for arm in arms:
        t0 = time.perf_counter()
        torch.manual_seed(args.seed)
        ctrl, model = (None, copy.deepcopy(fp32)) if arm == CONTROL else create(copy.deepcopy(fp32), cfg, train)
        res: dict[str, Any] = {"library": library, "wrap_s": time.perf_counter() - t0}
        if ctrl is not None:
            res["top1_after_init"] = evaluate(model, test, progress=False).accuracy
        train.generator.set_state(order)  # after create: the init iterates the loader
        torch.manual_seed(args.seed)
        opt, res["decayed_tensors"] = make_sgd(model, args)
        sched = cosine_schedule(opt, args.qat_epochs * len(train), warmup_steps=0)
        loader, trace = _peers.OrderDigest(train), []
        t0 = time.perf_counter()
        for epoch in range(args.qat_epochs):
            if ctrl is not None:
                ctrl.scheduler.epoch_step()
            ep = train_epoch(
                model,
                loader,
                opt,
                F.cross_entropy,
                ctrl=ctrl,
                progress=args.progress,
                desc=f"{arm}:{epoch}",
                lr_scheduler=sched,
            )
            trace.append({"epoch": epoch, "loss": ep.loss, "train_top1": ep.accuracy, "order": loader.digest})
        res.update(finetune_s=time.perf_counter() - t0, trace=trace)
        res["top1"] = evaluate(model, test, progress=False).accuracy
        if ctrl is not None and args.onnx:
            try:
                res.update(export_and_score(library, ctrl, model, test, args))
            except Exception as err:  # noqa: BLE001 - a failed export is a result, not a crash
                res["onnx_error"] = f"{type(err).__name__}: {err}"
        out[arm] = res
    return out


def run_nncf_peer(ckpt: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    """Run the NNCF arm in the bench venv (a subprocess of this script); ``None`` when switched off."""
    if args.nncf == "off":
        return None
    keys = ("model", "qat_epochs", "qat_lr", "train_limit", "test_limit", "batch_size", "threads", "seed")
    argv = ["--peer-nncf", "--fp32-ckpt", str(ckpt), *_peers.cli_flags(args, keys)]
    if not args.onnx:
        argv.append("--no-onnx")
    return _peers.run_in_bench_venv(__file__, argv, "NNCF run")


def loaders(args: argparse.Namespace) -> tuple[Any, Any]:
    return make_loaders(
        "fashion_mnist", args.batch_size, train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed
    )


def peer_main(args: argparse.Namespace) -> None:
    """``--peer-nncf``: load the FP32 checkpoint, run the NNCF arm, write JSON."""
    torch.set_num_threads(args.threads)
    ext_s = _peers.nncf_build_extension()
    torch.manual_seed(args.seed)
    info = dataset_info("fashion_mnist")
    train, test = loaders(args)
    fp32 = create_model(args.model, in_channels=info.in_channels, num_classes=info.num_classes)
    fp32.load_state_dict(torch.load(args.fp32_ckpt, weights_only=True))
    res: dict[str, Any] = {"fp32_top1": evaluate(fp32, test, progress=False).accuracy, "extension_s": ext_s}
    res["arms"] = run_arms("nncf", fp32, train, test, args)
    import nncf

    res["version"] = nncf.__version__
    Path(args.peer_out).write_text(json.dumps(res, indent=2, default=str))


def print_table(res: dict[str, Any]) -> None:
    fp32 = res["fp32_top1"]
    print("| arm | library | top-1 after init | top-1 | ONNX Runtime top-1 | drop vs FP32 | fine-tune s |")
    print("|---|---|---|---|---|---|---|")
    print(f"| fp32 (start) | - | - | {100 * fp32:.2f} | - | - | - |")
    for arm, r in res["arms"].items():
        init = f"{100 * r['top1_after_init']:.2f}" if "top1_after_init" in r else "-"
        ort = f"{100 * r['onnxruntime_top1']:.2f}" if "onnxruntime_top1" in r else "-"
        print(
            f"| {arm} | {r['library']} | {init} | {100 * r['top1']:.2f} | {ort} | {100 * (fp32 - r['top1']):.2f} pt "
            f"| {r['finetune_s']:.0f} |"
        )
    if res.get("nncf_error"):
        print(res["nncf_error"])


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--fp32-epochs", type=int, default=3)
    ap.add_argument("--qat-epochs", type=int, default=1)
    ap.add_argument("--qat-lr", type=float, default=0.005)
    ap.add_argument("--train-limit", type=int, default=20000, help="training images (FP32 start and fine-tune)")
    ap.add_argument("--test-limit", type=int, default=None, help="test images (default: all 10000)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="data order of the fine-tune and everything seeded after")
    ap.add_argument("--fp32-seed", type=int, default=0, help="seed of the shared FP32 start (same for every --seed)")
    ap.add_argument("--nncf", choices=["auto", "off"], default="auto")
    ap.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the ONNX Runtime re-evaluation")
    ap.add_argument("--out", type=Path, default=None, help="default: bench/results/accuracy_fmnist_seed{seed}.json")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--peer-nncf", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fp32-ckpt", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--peer-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.out is None:
        args.out = RESULTS / f"accuracy_fmnist_seed{args.seed}.json"
    return args


def main() -> None:
    args = parse_args()
    if args.peer_nncf:
        peer_main(args)
        return
    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    machine = machine_info(args.threads)
    torch.manual_seed(args.seed)
    info = dataset_info("fashion_mnist")
    train, test = loaders(args)
    fp32, fp32_s = fp32_baseline(args.model, args.fp32_epochs, args.train_limit, args.fp32_seed, progress=args.progress)
    fp32_top1 = evaluate(fp32, test, progress=False).accuracy
    res: dict[str, Any] = {
        "model": args.model,
        "seed": args.seed,
        "fp32_seed": args.fp32_seed,
        "fp32_epochs": args.fp32_epochs,
        "fp32_lr": 0.1,
        "qat_epochs": args.qat_epochs,
        "qat_lr": args.qat_lr,
        "batch_size": args.batch_size,
        "train_samples": len(train.dataset),  # type: ignore[arg-type]
        "test_samples": len(test.dataset),  # type: ignore[arg-type]
        "config": qat_config([1, info.in_channels, *info.image_size]),
        "fp32_top1": fp32_top1,
        "fp32_train_s": fp32_s,
        "fp32_cached": fp32_s == 0.0,
        "machine": machine,
    }
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "fp32.pt"
        torch.save(fp32.state_dict(), ckpt)
        res["arms"] = run_arms("netsculpt", fp32, train, test, args)
        t0 = time.perf_counter()
        peer = run_nncf_peer(ckpt, args)
        res["nncf_wall_s"] = time.perf_counter() - t0
    if isinstance(peer, dict) and "arms" in peer:
        res["arms"].update({a: {**r, "library": f"nncf {peer['version']}"} for a, r in peer["arms"].items()})
        res["nncf"] = {k: peer[k] for k in ("version", "fp32_top1", "extension_s")}
    elif isinstance(peer, dict):
        res["nncf_error"] = peer.get("error", "unknown")
    orders = {a: [e["order"] for e in r["trace"]] for a, r in res["arms"].items()}
    res["same_data_order"] = len({tuple(o) for o in orders.values()}) == 1
    res["load_end_1min"] = os.getloadavg()[0]
    res["total_s"] = time.perf_counter() - t_start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=str))
    print_table(res)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
