"""Fashion-MNIST, ALGORITHMS.md §9 E3: SeerNet (active labels + barrier search) vs random labels and baselines.

ResNet-20 (FP32 baseline from ``bench/_fp32.py``), filter pruning of the block-internal convs (keep 25/50/75/100 %)
+ quantization (weight bits 2/4/6/8, activation bits 4/6/8; the first conv and the input stay at 8 bits).
Label = top-1 on a 1,000-image validation split carved from the training set after BatchNorm recalibration
(512 images) and 10 SGD steps (batch 32), through the platform's ``evaluate`` and ``ResultLog``.

Per seed: ``--initial`` random labels (spread over the cost range, ``PolicyEncoding.random(spread=True)``;
``--uniform``: uniform levels), then ``--rounds`` x ``--per-round`` more, either actively selected
(neighbourhood uncertainty, 50 generations) or random (the same sampler). (a) Kendall tau and MSE of both predictors on
``--heldout`` random policies (the same policies for every seed). (b) At BOPs budgets of 30/40/60 % of the
8/8-bit model: SeerNet's policy (active predictor) vs the best-labelled of as many random feasible policies as
SeerNet had labels (drawn from the random policies already labelled: spread, random-arm and held-out ones,
topped up by uniform rejection sampling) vs
uniform pruning + uniform bits (the most expensive uniform policy within budget); each arm then gets the same
fine-tune (BN recalibration + ``--ft-steps`` SGD steps) and top-1 on ``--test-limit`` test images. (c) Search
seconds per budget on one torch thread. HAWQ: Hutchinson traces of the FP32 model, monotone weight-bit sequences
along ascending trace, the least-Omega one within the BOPs budget (no pruning), activation bits by NNCF's liberal
rule (the smallest allowed bits among the weights each activation feeds, else the smallest allowed).

Usage (about 15 min on 2 idle cores; ``--quick``: fewer labels and a shorter fine-tune, a few minutes):
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/seernet_fmnist.py [--seeds 0 1 2] [--quick]
Prints a table and writes bench/results/seernet_fmnist.json (``--quick``: seernet_fmnist_quick.json).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fp32 import fp32_baseline  # noqa: E402
from _machine import machine_info  # noqa: E402

from netsculpt import create_compressed_model, register_default_init_args  # noqa: E402
from netsculpt.algorithms.quantization.precision.hessian import Batch, hutchinson_traces  # noqa: E402
from netsculpt.algorithms.quantization.precision.layers import perturbations  # noqa: E402
from netsculpt.algorithms.quantization.precision.search import monotone_configs  # noqa: E402
from netsculpt.data import load_dataset  # noqa: E402
from netsculpt.search import EvalTask, Policy, ResultLog, TrainHooks, evaluate_many  # noqa: E402
from netsculpt.search import seernet as sn  # noqa: E402
from netsculpt.search.seernet.plots import save_plots  # noqa: E402
from netsculpt.search.space import quantization_part  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
BUDGETS = (0.3, 0.4, 0.6)
logger = logging.getLogger("bench.seernet")


def _config() -> dict[str, Any]:
    return {
        "input_info": {"sample_size": [1, 1, 28, 28]},
        "compression": [
            {"algorithm": "filter_pruning", "params": {"prune_first_conv": False, "prune_downsample_convs": False}},
            {
                "algorithm": "quantization",
                "weights": {"per_channel": True},
                "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
            },
        ],
    }


def _data(args: argparse.Namespace) -> tuple[DataLoader[Any], DataLoader[Any], DataLoader[Any]]:
    """Train subset, a validation split carved from the remaining training images, and test images."""
    full = load_dataset("fashion_mnist", "train", limit=args.train_limit + args.val_limit)
    train = Subset(full, range(args.train_limit))
    val = Subset(full, range(args.train_limit, args.train_limit + args.val_limit))
    test = load_dataset("fashion_mnist", "test", limit=args.test_limit)
    gen = torch.Generator().manual_seed(0)
    return (DataLoader(train, batch_size=32, shuffle=True, generator=gen), DataLoader(val, batch_size=250),
            DataLoader(test, batch_size=250))


def _fit(enc: sn.PolicyEncoding, results: list[Any], seed: int, epochs: int) -> sn.MLPPredictor:
    return sn.fit(enc, results, sn.PredictorConfig(seed=seed, epochs=epochs))


def _quality(pred: sn.MLPPredictor, enc: sn.PolicyEncoding, held: list[Any]) -> dict[str, float]:
    _, x, y = sn.dataset(enc, held)
    p = pred.predict(x)
    tau = kendalltau(p, y).statistic
    return {"kendall_tau": float(tau), "mse": float(np.mean((p - y) ** 2))}


def _uniform(enc: sn.PolicyEncoding, space: Any, budget: float) -> Policy:
    """The most expensive uniform policy (one keep ratio, one weight bits, one activation bits) within budget."""
    best: tuple[float, Policy] | None = None
    for keep in (1.0, 0.75, 0.5, 0.25):
        for wb in (8, 6, 4, 2):
            for ab in (8, 6, 4):
                bits = {q.name: (wb if q.group == "weights" else ab) if len(q.bits) > 1 else q.bits[0]
                        for q in space.quantizers}
                p = Policy({g.name: keep for g in space.groups}, bits).validate(space)
                c = float(enc.exact_cost(enc.indices(p)[None])[0])
                if c <= budget and (best is None or c > best[0]):
                    best = (c, p)
    assert best is not None
    return best[1]


def _hawq_setup(base: torch.nn.Module, ctrl: Any, enc: sn.PolicyEncoding, train: Any) -> dict[str, Any]:
    """Hutchinson traces (FP32 model, 128 images, <= 20 iterations) and quantization perturbations of every
    searchable weight, and for each activation quantizer the weights it feeds (NNCF's liberal rule, §6.5)."""
    space = enc.space
    quant = quantization_part(ctrl)
    infos = {str(i.target): i for i in quant.infos if i.group == "weights"}
    coords = [c for c in enc.coords if c.kind == "bits" and c.name in infos]
    params = dict(base.named_parameters())
    batches = []
    for x, y in train:
        batches.append(Batch((x,), {}, y, len(x)))
        if len(batches) == 4:
            break
    model = copy.deepcopy(base)
    mparams = dict(model.named_parameters())
    tr = hutchinson_traces(model, {c.name: mparams[c.name] for c in coords}, batches, torch.nn.functional.cross_entropy,
                           iter_number=20, tolerance=1e-3, seed=0)
    bits = sorted({int(b) for c in coords for b in c.levels})
    pert = perturbations([infos[c.name] for c in coords], [params[c.name] for c in coords], bits, lambda _l, b: b)
    t = space.tables
    assert t is not None
    q_index = {q.name: j for j, q in enumerate(space.quantizers)}
    feeds: dict[int, list[int]] = {}
    for mi, wq in enumerate(t.module_weight):
        for aq in t.module_acts[mi]:
            if aq < len(space.quantizers) and wq < len(space.quantizers):
                feeds.setdefault(int(aq), []).append(int(wq))
    return {"coords": coords, "traces": [tr.traces[c.name] for c in coords], "pert": pert, "bits": bits,
            "feeds": feeds, "q_index": q_index}


def _hawq(enc: sn.PolicyEncoding, h: dict[str, Any], budget: float) -> Policy:
    """HAWQ-v2 at a BOPs budget: monotone bit sequences along ascending trace, least Omega within budget."""
    space = enc.space
    configs = monotone_configs(len(h["coords"]), h["bits"])
    order = np.argsort(np.asarray(h["traces"]), kind="stable")
    w_bits = np.empty_like(configs)
    w_bits[:, order] = configs
    col = np.searchsorted(np.asarray(h["bits"]), w_bits)
    omega = (np.asarray(h["traces"])[None] * np.take_along_axis(h["pert"][None], col[:, :, None], 2)[:, :, 0]).sum(1)
    base = Policy({}, {}).validate(space)
    rows = []
    for cfg_bits in w_bits:
        bits = dict(base.bits)
        by_q = {h["q_index"][c.name]: int(b) for c, b in zip(h["coords"], cfg_bits, strict=True)}
        for c in h["coords"]:
            bits[c.name] = by_q[h["q_index"][c.name]]
        for aq, ws in h["feeds"].items():
            q = space.quantizers[aq]
            if len(q.bits) > 1:
                group = {by_q.get(w, space.quantizers[w].bits[0]) for w in ws}
                both = sorted(set(q.bits) & group)
                bits[q.name] = both[0] if both else q.bits[0]
        rows.append(enc.indices(Policy(base.keep, bits)))
    costs = enc.exact_cost(np.array(rows))
    ok = np.flatnonzero(costs <= budget)
    best = ok[np.lexsort((-costs[ok], omega[ok]))[0]]
    return enc.policy(rows[best])


def _random_feasible(enc: sn.PolicyEncoding, pool: list[Any], n: int, budget: float,
                     rng: np.random.Generator) -> list[Policy]:
    """``n`` uniformly random policies within budget: labelled random ones first, then rejection sampling."""
    out = [Policy.from_dict(r.policy) for r in pool if r.cost.bops <= budget][:n]
    seen = {p.key() for p in out}
    while len(out) < n:
        row = enc.random(1, rng)
        if enc.exact_cost(row)[0] <= budget:
            p = enc.policy(row[0])
            if p.key() not in seen:
                seen.add(p.key())
                out.append(p)
    return out


def run_seed(seed: int, args: argparse.Namespace, ctx: dict[str, Any]) -> tuple[dict[str, Any], sn.SeerNetRun]:
    enc, space, task, log, ref = ctx["enc"], ctx["space"], ctx["task"], ctx["log"], ctx["ref"]
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    spread = not args.uniform
    init = sn.label(task, sn.random_policies(enc, args.initial, rng, spread=spread), log=log, progress=False)
    random_extra = sn.label(task, sn.random_policies(enc, args.rounds * args.per_round, rng, spread=spread,
                                                     exclude=enc.keys(sn.dataset(enc, init)[0])),
                            log=log, progress=False)
    active = list(init)
    pred = _fit(enc, active, seed, args.epochs)
    for r in range(args.rounds):
        new = sn.select(pred, enc, args.per_round, labelled=active, seed=1000 * seed + r,
                        config=sn.SelectConfig(generations=args.generations))
        active += sn.label(task, new, log=log, progress=False)
        pred = _fit(enc, active, seed, args.epochs)
    labels_s = time.perf_counter() - t0
    logger.info("seed %d: %d active labels in %.0f s", seed, len(active), labels_s)
    pred_random = _fit(enc, init + random_extra, seed, args.epochs)
    quality = {"active": _quality(pred, enc, ctx["held"]), "random": _quality(pred_random, enc, ctx["held"])}
    pool = init + random_extra + ctx["held"]
    budgets = []
    torch.set_num_threads(1)
    try:
        searches = [sn.search(pred, enc, f * ref) for f in BUDGETS]
    finally:
        torch.set_num_threads(args.threads)
    for frac, found in zip(BUDGETS, searches, strict=True):
        cands = _random_feasible(enc, pool, len(active), frac * ref, rng)
        labelled = sn.label(task, cands, log=log, progress=False)
        best_random = max(labelled, key=lambda r: r.metric)
        arms = {"seernet": found.policy, "random_best": Policy.from_dict(best_random.policy),
                "uniform": _uniform(enc, space, frac * ref), "hawq": _hawq(enc, ctx["hawq"], frac * ref)}
        final = evaluate_many(ctx["final_task"], list(arms.values()), log=log, progress=False)
        measured = {a: round(r.metric, 4) for a, r in zip(arms, final, strict=True)}
        logger.info("seed %d, budget %.0f %%: %s", seed, 100 * frac, measured)
        budgets.append({
            "budget": frac,
            "search_s": found.seconds,
            "seernet_predicted": found.predicted,
            "random_candidates": len(cands),
            "arms": {name: {"bops_fraction": r.cost.bops / ref, "top1": r.metric,
                            "label": next((x.metric for x in [*active, *labelled] if x.policy == r.policy), None)}
                     for name, r in zip(arms, final, strict=True)},
        })
    row = {"seed": seed, "labels": len(active), "labels_s": labels_s, "quality": quality, "budgets": budgets}
    return row, sn.SeerNetRun(enc, pred, active, searches)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--initial", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--per-round", type=int, default=8)
    ap.add_argument("--heldout", type=int, default=24)
    ap.add_argument("--generations", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=2000, help="predictor training epochs")
    ap.add_argument("--ft-steps", type=int, default=60, help="SGD steps of the final fine-tune of every arm")
    ap.add_argument("--train-limit", type=int, default=10000)
    ap.add_argument("--val-limit", type=int, default=1000)
    ap.add_argument("--test-limit", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log", type=Path, default=None, help="result log to resume from (default: a fresh one)")
    ap.add_argument("--uniform", action="store_true",
                    help="draw the random labels with uniform levels instead of spread over the cost range")
    ap.add_argument("--quick", action="store_true", help="reduced run: fewer labels, shorter fine-tune")
    args = ap.parse_args()
    if args.quick:
        args.initial, args.rounds, args.per_round, args.heldout = 10, 1, 8, 16
        args.ft_steps, args.test_limit, args.val_limit, args.epochs = 30, 1000, 500, 1000
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    start = time.perf_counter()
    base, _ = fp32_baseline("resnet20", 1, 10000)
    train, val, test = _data(args)
    ctrl, _ = create_compressed_model(copy.deepcopy(base), register_default_init_args(_config(), train))
    space = sn.make_space(ctrl)
    enc = sn.PolicyEncoding(space)
    hooks = TrainHooks(train_loader=train, val_loader=val)
    task = EvalTask(ctrl, hooks, bn_recalibration_samples=512, finetune_steps=10, seed=0)
    final_task = EvalTask(ctrl, TrainHooks(train_loader=train, val_loader=test), bn_recalibration_samples=512,
                          finetune_steps=args.ft_steps, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        log = ResultLog(args.log if args.log is not None else Path(tmp) / "labels.jsonl")
        held = sn.label(task, sn.random_policies(enc, args.heldout, np.random.default_rng(10_000)), log=log,
                        progress=False)
        ctx: dict[str, Any] = {"hawq": _hawq_setup(base, ctrl, enc, train), "enc": enc, "space": space, "task": task,
                               "final_task": final_task, "log": log, "held": held, "ref": sn.reference_cost(space)}
        runs = [run_seed(s, args, ctx) for s in args.seeds]
        seeds = [r[0] for r in runs]
        plots = save_plots(OUT / ("seernet_fmnist_quick" if args.quick else "seernet_fmnist"), runs[0][1], held,
                           ctx["ref"])
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    res = {"quick": args.quick, "settings": settings, "plots": [str(p.relative_to(OUT.parent)) for p in plots],
           "space_dim": enc.dim, "reference_bops_8x8": ctx["ref"], "seeds": seeds,
           "wall_s": time.perf_counter() - start, "machine": machine_info(args.threads)}
    OUT.mkdir(parents=True, exist_ok=True)
    name = "seernet_fmnist_quick.json" if args.quick else "seernet_fmnist.json"
    (OUT / name).write_text(json.dumps(res, indent=2))
    _print(res)


def _print(res: dict[str, Any]) -> None:
    seeds = res["seeds"]
    mean = statistics.mean
    print(f"SeerNet E3{' (QUICK, reduced)' if res['quick'] else ''}: ResNet-20 / Fashion-MNIST, "
          f"dim {res['space_dim']}, {len(seeds)} seeds, {res['wall_s'] / 60:.1f} min")
    print("| predictor (same labels) | Kendall tau (mean) | MSE (mean) |")
    print("|---|---|---|")
    for arm in ("active", "random"):
        print(f"| {arm} | {mean(s['quality'][arm]['kendall_tau'] for s in seeds):.3f} "
              f"| {mean(s['quality'][arm]['mse'] for s in seeds):.2e} |")
    print("| BOPs budget | arm | BOPs / 8x8 (mean) | top-1 after fine-tune (mean) | per seed | search s |")
    print("|---|---|---|---|---|---|")
    for i, frac in enumerate(BUDGETS):
        for arm in ("seernet", "random_best", "hawq", "uniform"):
            rows = [s["budgets"][i] for s in seeds]
            accs = [r["arms"][arm]["top1"] for r in rows]
            secs = f"{mean(r['search_s'] for r in rows):.2f}" if arm == "seernet" else ""
            print(f"| {int(frac * 100)} % | {arm} | {mean(r['arms'][arm]['bops_fraction'] for r in rows):.3f} "
                  f"| {100 * mean(accs):.2f} | {' / '.join(f'{100 * a:.2f}' for a in accs)} | {secs} |")


if __name__ == "__main__":
    main()
