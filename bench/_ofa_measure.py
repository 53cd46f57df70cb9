"""The cost and deployment measurements of bench/ofa_fmnist.py: step time, subnet search, extract + ONNX export.

``step_times`` is the median time of a plain FP32 training step vs a supernet step (full model only, and the
sandwich of 4 subnets) on the same batch. ``extract_export`` picks a subnet of the trained DεpS supernet
(a short ``search_subnets`` run, or the middle config with ``--search-evals 0``), extracts it, the middle config
and the full model, exports each to ONNX and measures top-1, MACs, parameters, the extraction error and the ONNX
Runtime latency at batch 1. The supernet, loaders and training settings come from bench/_ofa_arms.py.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _ofa_arms import LABEL_SMOOTHING, MOMENTUM, WD, loaders, make_supernet, middle_config, top1

from netsculpt.metrics.macs import count_macs
from netsculpt.models import create_model
from netsculpt.nas import ElasticSupernet
from netsculpt.nas.training import ScheduleParams, SupernetTrainer


# ---- step time --------------------------------------------------------------------------------------------------
def step_times(args: argparse.Namespace) -> dict[str, Any]:
    train, _ = loaders(args, 0)
    x, y = next(iter(train))
    reps, warm = args.step_reps, 2

    def median(fn: Any) -> float:
        ts = []
        for i in range(warm + reps):
            t0 = time.perf_counter()
            fn()
            if i >= warm:
                ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    torch.manual_seed(0)
    plain = create_model("resnet20", in_channels=1, num_classes=10)
    popt = torch.optim.SGD(plain.parameters(), lr=0.01, momentum=MOMENTUM, weight_decay=WD)

    def plain_step() -> None:
        loss = F.cross_entropy(plain(x), y, label_smoothing=LABEL_SMOOTHING)
        popt.zero_grad(set_to_none=True)
        loss.backward()
        popt.step()

    out: dict[str, Any] = {"batch": int(x.shape[0]), "reps": reps, "plain_s": median(plain_step)}
    for name, schedule in (("supernet_full_only_s", "deps"), ("sandwich4_s", "bignas")):
        net = make_supernet(0, args.image_size)
        opt = torch.optim.SGD(net.model.parameters(), lr=0.01, momentum=MOMENTUM, weight_decay=WD)
        p = ScheduleParams(schedule=schedule, epochs=1000, steps_per_epoch=1000, lr=0.01, num_random=2)
        out[name] = median(functools.partial(SupernetTrainer(net, opt, p).train_step, x, y))
    out["sandwich_ratio"] = out["sandwich4_s"] / out["plain_s"]
    out["full_only_ratio"] = out["supernet_full_only_s"] / out["plain_s"]
    return out


# ---- extract + export -------------------------------------------------------------------------------------------
def extract_export(net: ElasticSupernet, args: argparse.Namespace) -> dict[str, Any]:
    from netsculpt.export.onnx import export_onnx
    from netsculpt.metrics.latency import ort_latency
    from netsculpt.nas.search import search_subnets

    train, test = loaders(args, 0)
    _, val = loaders(args, 0, test_limit=args.curve_images)
    out: dict[str, Any] = {}
    if args.search_evals > 0:
        t0 = time.perf_counter()
        res = search_subnets(
            net,
            lambda m: top1(m, val),
            bn_loader=train,
            params={
                "num_evals": args.search_evals,
                "population": args.search_population,
                "acc_delta": 1.0,
                "batchnorm_adaptation": {"num_bn_adaptation_samples": args.bn_batches * args.batch_size},
            },
        )
        cfg = res.best_config
        out.update(
            search_s=time.perf_counter() - t0,
            search_points=len(res.points),
            search_pareto=len(res.pareto),
            search_best_val_top1=res.best_accuracy,
            chosen="search_subnets (acc_delta 1 pt)",
        )
    else:
        cfg, out["chosen"] = middle_config(net), "middle config"
    shape = (1, 1, args.image_size, args.image_size)
    x = torch.zeros(*shape)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, c in (("subnet", cfg), ("middle", middle_config(net)), ("full", net.get_maximum_config())):
            net.activate_subnet_for_config(c)
            net.recalibrate_bn(train, num_batches=args.bn_batches)
            xb = next(iter(test))[0]
            net.model.eval()
            with torch.no_grad():
                ref = net.model(xb)
            sub = net.extract().eval()
            with torch.no_grad():
                err = float((sub(xb) - ref).abs().max() / ref.abs().max())
            net.model.train()
            path = Path(tmp) / f"{name}.onnx"
            export_onnx(sub, (x,), path, check=True)
            lat = ort_latency(path, shape, threads=args.threads, repeats=args.latency_reps, warmup=5)
            rows[name] = {
                "top1": top1(sub, test),
                "macs": int(count_macs(sub, (x,)).total),
                "params": sum(p.numel() for p in sub.parameters()),
                "extract_rel_err": err,
                "onnx_bytes": path.stat().st_size,
                "ort_median_ms": lat["median_s"] * 1e3,
                "ort_p10_ms": lat["p10_s"] * 1e3,
                "ort_p90_ms": lat["p90_s"] * 1e3,
            }
    net.activate_subnet_for_config(net.get_maximum_config())
    out.update(
        config=cfg,
        **rows,
        latency_speedup=rows["full"]["ort_median_ms"] / rows["subnet"]["ort_median_ms"],
        middle_latency_speedup=rows["full"]["ort_median_ms"] / rows["middle"]["ort_median_ms"],
    )
    return out
