"""EKG on Fashion-MNIST ResNet-20 at a 50 % FLOPs target (ALGORITHMS.md §9 E2; issue 16).

Starts from the shared cached FP32 ResNet-20 (``bench/_fp32.py``) and compares, at equal FLOPs target:

(a) sub-network choice, every arm followed by the same plain fine-tune (SGD momentum 0.9, wd 5e-4, cosine per
    step, ``--epochs`` over the first ``--ft-images`` training images, no augmentation, seed per repeat):
    ``ekg`` (EKG search), ``l1`` (netsculpt filter_pruning, uniform per-group L1, ``pruning_flops_target``),
    ``legr`` (netsculpt LeGR: learned global ranking, ``--legr-generations`` candidates of ``--legr-steps``
    SGD steps), ``tp_l1`` / ``nncf_l1_global`` (Torch-Pruning 1.6.1 / NNCF 2.19 in the bench venv
    ``.venv-bench``, bench/_ekg_peers.py: same BN recalibration and fine-tune; an error is recorded without it);
(b) fine-tuning of the EKG-searched network, same budget: ``ce_2view`` (CE on two augmented views per image)
    vs ``ekg_2view`` (the same plus EKG's memory-bank KL term, K teachers, τ = 4). Both see identical batches
    and views, so the difference is the memory bank alone.

Every arm re-estimates BatchNorm statistics on 512 training images after pruning (filter_pruning's BN
adaptation; EKG's ``bn_recalibration_samples``). All arms prune the stem and the stride-2 convs (``prune_first_conv``/``prune_downsample_convs``). The search
runs once (deterministic for a seed); fine-tuning repeats over ``--seeds``. Reported: top-1 of the physically
pruned (stripped) model on ``--test-limit`` test images, MACs, search / bank / fine-tune seconds.

Usage (the full E2 run took 47 min on 2 loaded cores; ``--quick`` is a reduced run of a few minutes):
    OMP_WAIT_POLICY=PASSIVE flock /tmp/netsculpt-cpu.lock .venv/bin/python bench/ekg_fmnist.py --quick
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/ekg_fmnist.py          # E2 sizes, peers in .venv-bench
Prints a markdown table and writes bench/results/ekg_fmnist.json (``--quick``: ekg_fmnist_quick.json) and the
search plot next to it (.png).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _peers  # noqa: E402
from _ekg_peers import PEER_ARMS, run_peer_arms  # noqa: E402
from _fp32 import fp32_baseline  # noqa: E402
from _machine import machine_info  # noqa: E402

from netsculpt import create_compressed_model, register_default_init_args  # noqa: E402
from netsculpt.data import dataset_info, make_loaders  # noqa: E402
from netsculpt.metrics.macs import count_macs  # noqa: E402
from netsculpt.search import ekg  # noqa: E402
from netsculpt.train import cosine_schedule, evaluate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "ekg_fmnist.json"
WD = 5e-4
log = logging.getLogger("bench.ekg_fmnist")


def sample_size() -> list[int]:
    info = dataset_info("fashion_mnist")
    return [1, info.in_channels, *info.image_size]


def pruning_config(target: float, **params: Any) -> dict[str, Any]:
    """filter_pruning at a FLOPs target, masks set at creation and frozen (schedule baseline)."""
    return {
        "input_info": {"sample_size": sample_size()},
        "compression": {
            "algorithm": "filter_pruning", "pruning_init": target,
            "params": {"schedule": "baseline", "pruning_flops_target": target, "filter_importance": "L1",
                       "prune_first_conv": True, "prune_downsample_convs": True, "pruning_steps": 1, **params},
            "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 512}},
        },
    }  # fmt: skip


def _optim(model: nn.Module, steps: int, lr: float) -> tuple[Any, Any]:
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9, weight_decay=WD)
    return opt, cosine_schedule(opt, steps)


def plain_finetune(model: nn.Module, ft_set: Any, args: argparse.Namespace, seed: int) -> float:
    """The shared plain fine-tune of part (a); returns seconds."""
    torch.manual_seed(seed)
    loader = DataLoader(ft_set, batch_size=args.batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    opt, sched = _optim(model, args.epochs * len(loader), args.lr)
    t0 = time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return time.perf_counter() - t0


def views_finetune(ctrl: Any, ft_set: Any, bank: ekg.MemoryBank | None, args: argparse.Namespace, seed: int) -> float:
    """Part (b): two augmented views per image; with ``bank``, EKG's KL term joins ``ctrl.loss()`` (same batches)."""
    model = ctrl.model
    torch.manual_seed(seed)
    loader = DataLoader(
        ekg.IndexedViews(ft_set, ekg.shift_flip),
        batch_size=args.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    opt, sched = _optim(model, args.epochs * len(loader), args.lr)
    distiller = ekg.EKGDistiller(bank, temperature=args.tau).attach(model, ctrl) if bank is not None else None
    t0 = time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        for views, y, idx in loader:
            x, target = ekg.merge_views(views, y)
            if distiller is not None:
                distiller.set_indices(idx)
            out = model(x)
            loss = F.cross_entropy(out, target) + ctrl.loss()  # the EKG term is inside ctrl.loss() when attached
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    if distiller is not None:
        distiller.detach()
    return time.perf_counter() - t0


def measure(ctrl: Any, model: nn.Module, test: Any) -> dict[str, Any]:
    """Top-1 and MACs of the stripped (physically pruned) model."""
    stripped = ctrl.strip(do_copy=True)
    macs = count_macs(stripped, (torch.zeros(*sample_size()),)).total
    params = sum(p.numel() for p in stripped.parameters())
    return {"top1": float(evaluate(stripped, test, progress=False).accuracy), "macs": int(macs), "params": params}


def run_search(fp32: nn.Module, train_set: Any, args: argparse.Namespace) -> tuple[Any, nn.Module, Any, Any]:
    """EKG search (once), its memory bank on the fine-tuning images; returns ctrl, model, result, bank."""
    base = pruning_config(args.flops_target)
    base["compression"]["pruning_init"] = 0.0
    ctrl, model = create_compressed_model(copy.deepcopy(fp32), base)
    cfg = {
        "pruning_flops_target": args.flops_target,
        "val_per_class": args.val_per_class,
        "subset_per_class": args.subset_per_class,
        "num_teachers": args.teachers,
        "temperature": args.tau,
        "seed": 0,
        "bn_recalibration_samples": 512,
    }
    result = ekg.search(ctrl, train_set, cfg, progress=args.progress)
    t0 = time.perf_counter()
    ft_set = Subset(train_set, range(args.ft_images))
    bank = ekg.build_memory_bank(ctrl, result, ft_set, progress=args.progress)
    result.bank_s = time.perf_counter() - t0  # type: ignore[attr-defined]
    return ctrl, model, result, bank


def ekg_network(fp32: nn.Module, result: Any, args: argparse.Namespace, bn_data: Any) -> tuple[Any, nn.Module]:
    """A fresh controller with the searched network applied (the search's weights, masks, rescaled kernels)."""
    base = pruning_config(args.flops_target)
    base["compression"]["pruning_init"] = 0.0
    c2, m2 = create_compressed_model(copy.deepcopy(fp32), base)
    result.apply(c2, bn_data=bn_data)
    return c2, m2


def main() -> None:  # noqa: C901 - one orchestration, read top to bottom
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="reduced sizes that fit ~20 min on 2 shared cores")
    ap.add_argument("--fp32-epochs", type=int, default=3)
    ap.add_argument("--train-limit", type=int, default=10000)
    ap.add_argument("--test-limit", type=int, default=2000)
    ap.add_argument("--ft-images", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--flops-target", type=float, default=0.5)
    ap.add_argument("--val-per-class", type=int, default=32)
    ap.add_argument("--subset-per-class", type=int, default=256)
    ap.add_argument("--teachers", type=int, default=5)
    ap.add_argument("--tau", type=float, default=4.0)
    ap.add_argument("--legr-generations", type=int, default=20)
    ap.add_argument("--legr-steps", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--arms", nargs="+", default=["ekg", "l1", "legr", "tp_l1", "nncf_l1_global", "ce_2view", "ekg_2view"]
    )
    ap.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)  # the bench venv's half (_ekg_peers)
    ap.add_argument("--peer-out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--progress", action="store_true")
    if "--quick" in sys.argv:  # reduced defaults; explicit flags still win
        ap.set_defaults(
            out=OUT.with_name("ekg_fmnist_quick.json"),
            fp32_epochs=1,
            test_limit=1000,
            ft_images=1000,
            epochs=1,
            val_per_class=16,
            subset_per_class=64,
            legr_generations=8,
            legr_steps=2,
            batch_size=64,
        )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    t_all = time.perf_counter()
    fp32, fp32_s = fp32_baseline("resnet20", args.fp32_epochs, args.train_limit, 0)
    train, test = make_loaders("fashion_mnist", 256, train_limit=args.train_limit, test_limit=args.test_limit, seed=0)
    train_set = train.dataset
    ft_set = Subset(train_set, range(args.ft_images))
    bn_data = DataLoader(ft_set, batch_size=128)
    if args.peer:
        peers = run_peer_arms(args.arms, fp32, pruning_config(args.flops_target), (ft_set, bn_data, test),
                              plain_finetune, args, sample_size())  # fmt: skip
        args.peer_out.write_text(json.dumps(peers, default=str))
        return
    res: dict[str, Any] = {
        "quick": args.quick, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine_info(args.threads),
        "fp32": {"top1": float(evaluate(fp32, test, progress=False).accuracy), "train_s": fp32_s,
                 "macs": int(count_macs(fp32, (torch.zeros(*sample_size()),)).total)},
        "arms": {}, "peers": "Torch-Pruning 1.6.1 / NNCF 2.19 in .venv-bench (bench/_ekg_peers.py)",
    }  # fmt: skip
    peer_arms = [a for a in args.arms if a in PEER_ARMS]
    if peer_arms:
        keep = (
            "fp32_epochs",
            "train_limit",
            "test_limit",
            "ft_images",
            "epochs",
            "lr",
            "batch_size",
            "flops_target",
            "seeds",
            "threads",
        )
        argv = ["--peer", *_peers.cli_flags(args, keep), "--arms", *peer_arms]
        peer_res = _peers.run_in_bench_venv(__file__, argv, "EKG bench peers")
        if "error" in peer_res:
            res["peers"] = peer_res["error"]
        for arm, rec in peer_res.items() if "error" not in peer_res else ():
            if "error" in rec:
                res.setdefault("peer_errors", {})[arm] = rec["error"]
            else:
                res["arms"][arm] = rec
    _, _, result, bank = run_search(fp32, train_set, args)
    res["search"] = {"seconds": result.search_s, "warmup_s": result.warmup_s, "bank_s": result.bank_s,
                     "steps": len(result.history) - 1, "candidates": result.evaluated,
                     "flops_ratio": result.flops_ratio, "teachers": result.teachers(),
                     "teacher_losses": bank.teacher_losses, "policy": result.policy.to_dict()["keep"],
                     "history": [h.as_dict() for h in result.history]}  # fmt: skip
    ekg.plot_search(result, args.out.with_suffix(".png"))
    legr_s = None
    for seed in range(args.seeds):
        for arm in [a for a in args.arms if a not in PEER_ARMS]:
            t0 = time.perf_counter()
            if arm in ("ekg", "ce_2view", "ekg_2view"):
                c, m = ekg_network(fp32, result, args, bn_data)
                before = measure(c, m, test)["top1"] if seed == 0 else None
                if arm == "ekg":
                    ft_s = plain_finetune(m, ft_set, args, seed)
                else:
                    ft_s = views_finetune(c, ft_set, bank if arm == "ekg_2view" else None, args, seed)
            else:
                cfg = pruning_config(args.flops_target)
                if arm == "legr":
                    cfg["compression"]["params"].update(
                        interlayer_ranking_type="learned_ranking",
                        legr_params={"generations": args.legr_generations, "train_steps": args.legr_steps,
                                     "max_pruning": args.flops_target, "random_seed": seed})  # fmt: skip
                    val = DataLoader(Subset(train_set, range(len(train_set) - 512, len(train_set))), batch_size=256)
                    cfg = register_default_init_args(
                        cfg, DataLoader(ft_set, batch_size=64, shuffle=True), nn.CrossEntropyLoss(), val_loader=val
                    )
                else:
                    cfg = register_default_init_args(cfg, bn_data, nn.CrossEntropyLoss())
                t1 = time.perf_counter()
                c, m = create_compressed_model(copy.deepcopy(fp32), cfg)
                if arm == "legr":
                    legr_s = time.perf_counter() - t1
                before = measure(c, m, test)["top1"] if seed == 0 else None
                ft_s = plain_finetune(m, ft_set, args, seed)
            out = measure(c, m, test)
            rec = res["arms"].setdefault(arm, {"runs": []})
            rec["runs"].append(
                {"seed": seed, "top1_before_ft": before, **out, "finetune_s": ft_s, "arm_s": time.perf_counter() - t0}
            )
            log.warning("seed %d %s: top-1 %.4f (before FT %s), MACs %d", seed, arm, out["top1"], before, out["macs"])
    if legr_s is not None:
        res["legr_search_s_last_seed"] = legr_s
    for rec in res["arms"].values():
        tops = [r["top1"] for r in rec["runs"]]
        rec.update(
            mean=statistics.mean(tops),
            std=statistics.stdev(tops) if len(tops) > 1 else 0.0,
            flops_removed=1 - rec["runs"][0]["macs"] / res["fp32"]["macs"],
        )
    arms = res["arms"]
    if "ekg_2view" in arms and "ce_2view" in arms:
        diffs = [
            a["top1"] - b["top1"] for a, b in zip(arms["ekg_2view"]["runs"], arms["ce_2view"]["runs"], strict=True)
        ]
        res["ekg_ft_minus_ce_ft"] = {
            "mean_pt": 100 * statistics.mean(diffs),
            "per_seed_pt": [100 * d for d in diffs],
            "target_pt": 0.3,
        }
    res["total_s"] = time.perf_counter() - t_all
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1, default=str))
    print_table(res)
    print(f"wrote {args.out}")


def print_table(res: dict[str, Any]) -> None:
    """Markdown table of the arms (mean ± std over seeds)."""
    a = res["args"]
    s = res["search"]
    print(
        f"{'QUICK (reduced) run; ' if res['quick'] else ''}FP32 ResNet-20: top-1 {100 * res['fp32']['top1']:.2f} % "
        f"on {a['test_limit']} test images; fine-tune {a['epochs']} epoch(s) on {a['ft_images']} images, "
        f"{a['seeds']} seeds"
    )
    print(
        f"EKG search: {s['steps']} steps, {s['candidates']} candidates, {s['seconds']:.0f} s (warm-up "
        f"{s['warmup_s']:.0f} s); memory bank ({len(s['teachers'])} teachers x {a['ft_images']} images) "
        f"{s['bank_s']:.0f} s; kept FLOPs {100 * s['flops_ratio']:.1f} %"
    )
    print("| arm | FLOPs removed | top-1 after FT (mean ± std) | per seed | top-1 before FT | FT s/seed |")
    print("|---|---|---|---|---|---|")
    for arm, r in res["arms"].items():
        per = ", ".join(f"{100 * x['top1']:.2f}" for x in r["runs"])
        before = r["runs"][0]["top1_before_ft"]
        ft = statistics.mean(x["finetune_s"] for x in r["runs"])
        print(
            f"| {arm} | {100 * r['flops_removed']:.1f} % | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} | {per} "
            f"| {100 * before:.2f} | {ft:.0f} |"
        )
    if "ekg_ft_minus_ce_ft" in res:
        d = res["ekg_ft_minus_ce_ft"]
        print(
            f"EKG fine-tune - CE fine-tune (2 views each): {d['mean_pt']:+.2f} pt (target +0.3; per seed "
            f"{', '.join(f'{v:+.2f}' for v in d['per_seed_pt'])})"
        )
    print(f"peers: {res['peers']}")
    print(f"total {res['total_s']:.0f} s ({res['machine']['threads']} threads, load {res['machine']['load_1min']:.1f})")


if __name__ == "__main__":
    main()
