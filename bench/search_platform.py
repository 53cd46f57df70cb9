"""Search platform: evaluate() throughput and overhead, executors, cost() speed, apply_policy + strip at scale, LeGR.

Measures, in one run on the same machine (ratios, not absolute times, are what to compare):

* ``evaluate``: ResNet-20 on Fashion-MNIST (FP32 baseline from ``bench/_fp32.py``), filter pruning + INT8
  quantization, random policies (keep 25/50/75/100 % per group, weight bits 2/4/6/8, activation bits 4/6/8).
  One candidate = BatchNorm recalibration on 512 training images + 10 SGD steps (batch 64) + top-1 on 1,000
  test images, then restore. ``evaluate()`` and a hand-written loop doing the same work (state_dict copy,
  ``apply_policy``, the same three loops written out, ``load_state_dict``) alternate candidate by candidate;
  both must give the same metric. Then the same candidates through ``evaluate_many`` on the serial executor
  (2 torch threads), a local process pool (2 workers x 1 thread) and a Dask ``LocalCluster`` (2 workers x 1
  thread): candidates per minute (pool start-up included) and the largest metric difference to serial.
* ``cost``: ResNet-56 (CIFAR shape, every conv prunable, INT8), one torch thread: ``cost()`` per policy,
  ``cost_many()`` (vectorised) per policy, and ``DifferentiableCost`` forward + backward.
* ``apply_policy`` + ``strip()`` on a ResNet-50-shaped model (25.6M parameters, 224x224), median of 3.
* LeGR on the platform: rewards of LeGR candidates through ``evaluate`` vs the pre-platform reward (masks at the
  global ranking, the same SGD steps, top-1, ``load_state_dict``) written out here as the reference.

Usage (about 6 min on 2 cores; the FP32 baseline is trained once, ~1 min, and cached):
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/search_platform.py [--candidates 12] [--quick] [--out PATH]
Prints a markdown table and writes bench/results/search_platform.json (``--quick``: search_platform_quick.json).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fp32 import fp32_baseline  # noqa: E402
from _machine import machine_info  # noqa: E402
from _models import ResNet50Shaped  # noqa: E402
from make_readme_table import _search_platform  # noqa: E402

from netsculpt import create_compressed_model, register_default_init_args  # noqa: E402
from netsculpt.data import make_loaders  # noqa: E402
from netsculpt.models import create_model  # noqa: E402
from netsculpt.search import (  # noqa: E402
    DaskExecutor,
    DifferentiableCost,
    EvalTask,
    Policy,
    ProcessPoolExecutor,
    SearchSpace,
    SerialExecutor,
    TrainHooks,
    cost,
    evaluate,
    evaluate_many,
)
from netsculpt.search.cost import cost_many  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
KEEP = (0.25, 0.5, 0.75, 1.0)
BN_SAMPLES, STEPS, BATCH = 512, 10, 64
logger = logging.getLogger("bench.search")


def _config(shape: list[int], *, first: bool = False) -> dict[str, Any]:
    return {
        "input_info": {"sample_size": shape},
        "compression": [
            {"algorithm": "filter_pruning", "params": {"prune_first_conv": first, "prune_downsample_convs": first}},
            {
                "algorithm": "quantization",
                "weights": {"per_channel": True},
                "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
            },
        ],
    }


# ---- evaluate -----------------------------------------------------------------------------------------
def _handwritten(ctrl: Any, policy: Policy, train: Any, val: Any, seed: int) -> float:
    """The same work as ``evaluate`` written out by hand."""
    model = ctrl.model
    saved = copy.deepcopy(model.state_dict())
    before = ctrl.current_policy()
    loader_rng = train.generator.get_state()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        train.generator.manual_seed(seed)
        ctrl.apply_policy(policy)
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        seen = 0
        with torch.no_grad():
            for x, _ in train:
                model(x)
                seen += len(x)
                if seen >= BN_SAMPLES:
                    break
        for bn in bns:
            bn.momentum = 0.1
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
        steps = 0
        while steps < STEPS:
            for x, y in train:
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
                if steps == STEPS:
                    break
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for x, y in val:
                correct += int((model(x).argmax(1) == y).sum())
                total += len(y)
    train.generator.set_state(loader_rng)
    model.load_state_dict(saved)
    ctrl.apply_policy(before)
    for p in model.parameters():
        p.grad = None
    model.train()
    return correct / total


def _stamp(times: list[float]) -> Any:
    """An ``on_result`` callback recording when each result arrived."""
    return lambda _result: times.append(time.perf_counter())


def bench_evaluate(n: int, train_limit: int, quick: bool) -> dict[str, Any]:
    torch.set_num_threads(2)
    base, _ = fp32_baseline("resnet20", 1, 10000)
    train, val = make_loaders("fashion_mnist", BATCH, train_limit=train_limit, test_limit=1000, seed=0)
    cfg = register_default_init_args(_config([1, 1, 28, 28]), train)
    ctrl, _ = create_compressed_model(copy.deepcopy(base), cfg)
    space = SearchSpace.from_controller(ctrl, keep_ratios=KEEP)
    rng = random.Random(0)
    policies = [Policy.random(space, rng) for _ in range(n)]
    hooks = TrainHooks(train_loader=train, val_loader=val)
    # platform vs hand-written, alternating candidate by candidate
    hand_t, plat_t, diffs = [], [], []
    for p in policies:
        t0 = time.perf_counter()
        a = _handwritten(ctrl, p, train, val, seed=0)
        hand_t.append(time.perf_counter() - t0)
        r = evaluate(ctrl, p, hooks, bn_recalibration_samples=BN_SAMPLES, finetune_steps=STEPS, seed=0)
        plat_t.append(r.seconds)
        diffs.append(abs(r.metric - a))
    res: dict[str, Any] = {
        "candidates": n,
        "handwritten_s": statistics.median(hand_t),
        "evaluate_s": statistics.median(plat_t),
        "overhead": statistics.median(plat_t) / statistics.median(hand_t) - 1.0,
        "handwritten_vs_evaluate_max_metric_diff": max(diffs),
    }
    task = EvalTask(ctrl, hooks, bn_recalibration_samples=BN_SAMPLES, finetune_steps=STEPS, seed=0)
    executors: dict[str, Any] = {"serial": lambda: SerialExecutor(), "process_pool": lambda: ProcessPoolExecutor(2)}
    try:
        from dask.distributed import LocalCluster

        def dask_executor() -> Any:
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
            ex = DaskExecutor(cluster.get_client())
            ex.cluster = cluster  # type: ignore[attr-defined]
            return ex

        executors["dask_local"] = dask_executor
    except ImportError:
        logger.warning("dask.distributed not installed: no Dask arm")
    serial_metrics: list[float] | None = None
    all_metrics: dict[str, list[float]] = {}
    res["executors"] = {}
    for name, make in executors.items():
        t0 = time.perf_counter()
        ex = make()
        done: list[float] = []
        try:
            results = evaluate_many(task, policies, executor=ex, progress=False, on_result=_stamp(done))
        finally:
            ex.shutdown()
            if hasattr(ex, "cluster"):
                ex.cluster.close()
        wall = time.perf_counter() - t0
        metrics = [r.metric for r in results]
        all_metrics[name] = metrics
        serial_metrics = serial_metrics or metrics
        k = min(ex.workers, n - 1)  # after the first round of results every worker is busy: the steady state
        res["executors"][name] = {
            "workers": ex.workers,
            "wall_s": wall,
            "per_minute": 60.0 * n / wall,
            "steady_per_minute": 60.0 * (n - k) / (done[-1] - done[k - 1]) if n > k else float("nan"),
            "first_result_s": done[0] - t0,
            "candidate_s": statistics.median(r.seconds for r in results),
            "max_metric_diff_vs_serial": max(abs(a - b) for a, b in zip(metrics, serial_metrics, strict=True)),
        }
    # the pool's workers run 1 torch thread; the serial arm 2: a 1-thread serial re-run must match them exactly
    torch.set_num_threads(1)
    check = evaluate_many(task, policies[:3], executor=SerialExecutor(), progress=False)
    torch.set_num_threads(2)
    res["one_thread_serial_vs_pool_max_diff"] = max(
        abs(a.metric - b) for a, b in zip(check, all_metrics["process_pool"], strict=False)
    )
    res["metric_mean"] = statistics.mean(serial_metrics or [0.0])
    return res


# ---- cost ---------------------------------------------------------------------------------------------
def _rate(fn: Any, count: int, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return count / statistics.median(times)


def bench_cost(n: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    ctrl, _ = create_compressed_model(create_model("resnet56"), _config([1, 3, 32, 32], first=True))
    t0 = time.perf_counter()
    space = SearchSpace.from_controller(ctrl)
    read_s = time.perf_counter() - t0
    rng = random.Random(0)
    policies = [Policy.random(space, rng) for _ in range(n)]
    dc = DifferentiableCost(space)
    keep, bits = dc.encode(policies[0])
    keep.requires_grad_(True)
    bits.requires_grad_(True)

    def diff() -> None:
        for _ in range(n // 10):
            dc(keep, bits)["bops"].backward()

    return {
        "groups": len(space.groups),
        "quantizers": len(space.quantizers),
        "space_read_s": read_s,
        "cost_per_s": _rate(lambda: [cost(space, p) for p in policies], n),
        "cost_many_per_s": _rate(lambda: cost_many(space, policies), n),
        "differentiable_per_s": _rate(diff, n // 10),
    }


# ---- apply_policy + strip at scale --------------------------------------------------------------------
def bench_apply_strip() -> dict[str, Any]:
    torch.set_num_threads(2)
    model = ResNet50Shaped().eval()
    params = sum(p.numel() for p in model.parameters())
    ctrl, _ = create_compressed_model(model, _config([1, 3, 224, 224]))
    space = SearchSpace.from_controller(ctrl, keep_ratios=KEEP)
    apply_t, strip_t = [], []
    for seed in range(3):
        p = Policy.random(space, seed)
        t0 = time.perf_counter()
        ctrl.apply_policy(p)
        apply_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ctrl.strip()
        strip_t.append(time.perf_counter() - t0)
    return {
        "params": params,
        "groups": len(space.groups),
        "quantizers": len(space.quantizers),
        "apply_policy_s": statistics.median(apply_t),
        "strip_s": statistics.median(strip_t),
        "total_s": statistics.median(a + s for a, s in zip(apply_t, strip_t, strict=True)),
    }


# ---- LeGR: platform reward vs the pre-platform reward -------------------------------------------------
def bench_legr(candidates: int, train_limit: int) -> dict[str, Any]:
    from netsculpt.algorithms.pruning.legr import mutate, transform_scores
    from netsculpt.algorithms.pruning.legr_search import candidate_policy

    torch.set_num_threads(2)
    base, _ = fp32_baseline("resnet20", 1, 10000)
    train, val = make_loaders("fashion_mnist", BATCH, train_limit=train_limit, test_limit=1000, seed=0)
    cfg = _config([1, 1, 28, 28])
    cfg["compression"] = cfg["compression"][:1]
    ctrl, model = create_compressed_model(copy.deepcopy(base), cfg)
    part = ctrl.child_ctrls[0]
    part.selector.all_weights = True
    hooks = TrainHooks(train_loader=train, val_loader=val)
    scores = part.unit_scores()
    rng = random.Random(0)
    identity = tuple((1.0, 0.0) for _ in part.pg.groups)
    rows = []
    for _ in range(candidates):
        coeffs = mutate(identity, rng, 1.0, 1.0)
        policy = candidate_policy(part, scores, coeffs, 0.5)
        t0 = time.perf_counter()
        platform = evaluate(ctrl, policy, hooks, bn_recalibration_samples=0, finetune_steps=STEPS, seed=42).metric
        t_platform = time.perf_counter() - t0
        saved = copy.deepcopy(model.state_dict())
        t0 = time.perf_counter()
        with torch.random.fork_rng():
            torch.manual_seed(42)
            train.generator.manual_seed(42)
            part.mask_at(transform_scores(scores, coeffs), 0.5)
            hooks.train_steps(model, torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9), STEPS)
            reference = hooks.validate(model)
        model.load_state_dict(saved)
        part.set_level(0.0)
        rows.append({"platform": platform, "reference": reference, "platform_s": t_platform,
                     "reference_s": time.perf_counter() - t0})
    return {
        "candidates": candidates,
        "max_reward_diff": max(abs(r["platform"] - r["reference"]) for r in rows),
        "mean_reward": statistics.mean(r["platform"] for r in rows),
        "platform_s": statistics.median(r["platform_s"] for r in rows),
        "reference_s": statistics.median(r["reference_s"] for r in rows),
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=12)
    ap.add_argument("--train-limit", type=int, default=5000)
    ap.add_argument("--quick", action="store_true", help="few candidates and policies (smoke test)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    n = 3 if args.quick else args.candidates
    res: dict[str, Any] = {"machine": machine_info(2)}
    res["evaluate"] = bench_evaluate(n, args.train_limit, args.quick)
    res["cost"] = bench_cost(300 if args.quick else 3000)
    res["apply_strip"] = bench_apply_strip()
    res["legr"] = bench_legr(2 if args.quick else 6, args.train_limit)
    res["machine"]["load_1min_after"] = machine_info(2)["load_1min"]
    out = args.out or OUT / ("search_platform_quick.json" if args.quick else "search_platform.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print("\n".join(_search_platform(res)))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
