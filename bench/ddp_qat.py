"""DDP on CPU: INT8 QAT of ResNet-20 on Fashion-MNIST, 2 processes x 1 thread vs 1 process x 2 threads.

Both arms start from the same cached FP32 model (``bench/_fp32.py``) and see the same global batch (``--batch``,
split over the ranks), the same number of optimizer steps, SGD with a per-step cosine LR, and the same range
initialisation budget per process. The 2-process arm runs under ``torchrun --standalone`` (gloo), wraps the model
in ``DistributedDataParallel`` after ``create_compressed_model`` + ``ctrl.distributed()``, and shards the data with
``DistributedSampler``. Reported per arm (mean ± std over ``--seeds``): top-1 on the test images after QAT, training
throughput (images per second over all processes, first 5 steps excluded), ``create_compressed_model`` seconds,
and the cost of the consistency machinery: the seconds of one ``ctrl.distributed()`` call (the broadcast of rank 0's
decisions and tensors; the pooled range statistics are part of ``create_compressed_model``).

Usage (about 8 min on 2 quiet cores):
    OMP_WAIT_POLICY=PASSIVE flock /tmp/netsculpt-cpu.lock .venv/bin/python bench/ddp_qat.py [--seeds 3]
        [--epochs 1] [--train-limit 10000] [--test-limit 5000]
Prints a markdown table and writes bench/results/ddp_qat.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fp32 import fp32_baseline  # noqa: E402
from _machine import machine_info  # noqa: E402

from netsculpt import create_compressed_model, register_default_init_args  # noqa: E402
from netsculpt.data import load_dataset  # noqa: E402
from netsculpt.train import cosine_schedule, evaluate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "ddp_qat.json"
ARMS = {"1 process x 2 threads": (1, 2), "2 processes x 1 thread": (2, 1)}
SKIP = 5  # warm-up steps left out of the throughput


def qat_config() -> dict[str, Any]:
    return {
        "input_info": {"sample_size": [1, 1, 28, 28]},
        "compression": {"algorithm": "quantization", "initializer": {
            "range": {"num_init_samples": 512}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 512}}},
    }  # fmt: skip


def worker(args: argparse.Namespace) -> None:
    """One process of an arm (``torchrun`` sets the rank and world size; a plain start is one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if world > 1 else 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    fp32, _ = fp32_baseline("resnet20", args.fp32_epochs, args.train_limit, 0)
    train = load_dataset("fashion_mnist", "train", limit=args.train_limit, verify="off")
    test = load_dataset("fashion_mnist", "test", limit=args.test_limit, verify="off")
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    loader = DataLoader(train, batch_size=args.batch // world, sampler=sampler, drop_last=True)
    t0 = time.perf_counter()
    ctrl, model = create_compressed_model(fp32, register_default_init_args(qat_config(), loader))
    create_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ctrl.distributed()
    sync_s = time.perf_counter() - t0
    net: torch.nn.Module = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    sched = cosine_schedule(opt, args.epochs * len(loader))
    steps, timed, images = 0, 0.0, 0
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        ctrl.scheduler.epoch_step()
        net.train()
        for x, y in loader:
            t0 = time.perf_counter()
            loss = F.cross_entropy(net(x), y) + ctrl.loss()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ctrl.scheduler.step()
            steps += 1
            if steps > SKIP:
                timed += time.perf_counter() - t0
                images += x.shape[0] * world
    if rank == 0:
        top1 = float(evaluate(model, DataLoader(test, batch_size=256), progress=False).accuracy)
        rec = {"top1": top1, "images_per_s": images / timed, "create_s": create_s, "sync_s": sync_s, "steps": steps}
        Path(args.worker_out).write_text(json.dumps(rec))
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


def run_arm(world: int, threads: int, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    flags = ["--worker", "--threads", str(threads), "--seed", str(seed), "--epochs", str(args.epochs),
             "--train-limit", str(args.train_limit), "--test-limit", str(args.test_limit), "--batch", str(args.batch),
             "--lr", str(args.lr), "--fp32-epochs", str(args.fp32_epochs)]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rank0.json"
        if world > 1:
            torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
            cmd = [torchrun, "--standalone", f"--nproc-per-node={world}", __file__, *flags]
        else:
            cmd = [sys.executable, __file__, *flags]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run([*cmd, "--worker-out", str(out)], check=True, env=env)
        return json.loads(out.read_text())  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--fp32-epochs", type=int, default=3)
    ap.add_argument("--train-limit", type=int, default=10000)
    ap.add_argument("--test-limit", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=128, help="global batch (split over the processes)")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    fp32_baseline("resnet20", args.fp32_epochs, args.train_limit, 0)  # cache it before the workers start
    res: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "machine": machine_info(2), "arms": {}}
    for seed in range(args.seeds):  # arms interleaved per seed: load drifts hit both
        for name, (world, threads) in ARMS.items():
            res["arms"].setdefault(name, {"runs": []})["runs"].append(run_arm(world, threads, seed, args))
    for rec in res["arms"].values():
        for key in ("top1", "images_per_s", "create_s", "sync_s"):
            vals = [r[key] for r in rec["runs"]]
            rec[key] = {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0}
    one, two = (res["arms"][n] for n in ARMS)
    res["throughput_ratio_2proc_over_1proc"] = two["images_per_s"]["mean"] / one["images_per_s"]["mean"]
    res["top1_diff_pt"] = 100 * (two["top1"]["mean"] - one["top1"]["mean"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    m = res["machine"]
    print(f"CPU {m['cpu']} ({', '.join(m['flags'])}), load {m['load_1min']:.1f}; {args.seeds} seeds, "
          f"QAT {args.epochs} epoch(s) on {args.train_limit} images, global batch {args.batch}")  # fmt: skip
    print("| arm | top-1 after QAT | images/s | create_compressed_model s | ctrl.distributed() s |")
    print("|---|---|---|---|---|")
    for name, r in res["arms"].items():
        print(f"| {name} | {100 * r['top1']['mean']:.2f} ± {100 * r['top1']['std']:.2f} | "
              f"{r['images_per_s']['mean']:.0f} ± {r['images_per_s']['std']:.0f} | {r['create_s']['mean']:.2f} | "
              f"{r['sync_s']['mean']:.3f} |")  # fmt: skip
    print(f"2 processes / 1 process throughput: {res['throughput_ratio_2proc_over_1proc']:.2f}x; "
          f"top-1 difference {res['top1_diff_pt']:+.2f} pt")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
