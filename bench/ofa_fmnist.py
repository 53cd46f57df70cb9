"""DεpS vs BigNAS vs OFA progressive shrinking vs DεpS without the ε ramp on Fashion-MNIST (ALGORITHMS.md §9 E1;
issue 15's benchmark).

One ResNet-20-class elastic supernet (``netsculpt.models`` resnet20 on 1-channel images,
``netsculpt.nas.ElasticSupernet``): elastic depth {1, 2, 3} blocks per stage (the 2nd and 3rd block of each stage
are skippable, named explicitly) and elastic width from ``width_multipliers`` (1.0, 0.75, 0.5) with ``min_width``
8. Deviation (ElasticSupernet follows NNCF's ``_generate_width_list``: multiplied widths round *down* to multiples
of 8): the 16-channel groups of stage 1 get {16, 8} (0.75·16 = 12 rounds to 8), stage 2 {32, 24, 16}, stage 3
{64, 48, 32}. Kernels are 3x3 with padding 1, so no kernel choice exists. Every arm trains the same number of
epochs on the same batches (``make_loaders`` with the run's seed), SGD momentum 0.9, wd 5e-4, label smoothing 0.1,
one optimizer over the supernet, ``netsculpt.nas.training.SupernetTrainer``:

- ``deps``: ``schedule="deps"`` (full model alone for ``round(0.5·N)`` epochs, then the sandwich full + smallest +
  2 random with in-place KD, β ramped over ``ramp_epochs`` (default max(1, round(0.02·N)) = 1 epoch), ``sum``).
- ``deps_no_eps``: the same run without the ε ramp. ``ScheduleParams`` has no switch for it and refuses
  ``ramp_epochs=0`` (must be >= 1), so the arm is composed from the existing schedules without changing them:
  the ``deps`` trainer for the warm-up steps, then a ``bignas`` trainer started at the switch step (same
  one-cosine LR over N epochs, same sandwich seeded by (seed, step)), i.e. β = 1 from the switch's first step.
- ``bignas``: ``schedule="bignas"`` from step 0.
- ``ofa``: the full model trained alone for ``N//2`` epochs (a ``deps`` schedule of that length with
  ``warmup_fraction`` 1: the one cosine LR over those epochs), then NNCF stages ``depth`` (2 subnets per step,
  ``(N - N//2)//3`` epochs) and ``depth+width`` (4 subnets per step, channel reorganisation and BN adaptation at
  its start, the rest of the epochs), subnets on CE + KD from the (no longer trained) full model; each stage's
  cosine starts at ``--ofa-lr`` (default: the one-cosine LR at the DεpS switch, lr0/2).

Reported per arm (mean ± std over seeds): top-1 of the smallest, middle (each group at the choice nearest 0.75 of
its maximum, the larger on a tie; the last block of each stage skipped) and largest subnet after BN recalibration
(``recalibrate_bn`` on ``--bn-batches`` training batches) on the test subset, and the measured training seconds
(forward/backward/step only; the curve evaluations are excluded). For the two DεpS arms the full model's top-1 is
measured every tenth of an epoch in the epochs around the switch (BN recalibrated on ``--curve-bn-batches``
training batches, running statistics restored afterwards so training is unaffected; ``--curve-images`` test
images). Also: the median step time of a plain FP32 step vs a supernet sandwich step (4 subnets) at the same
batch, and extract + ONNX export of one subnet (the choice of a short ``search_subnets`` run on the DεpS
supernet of the first seed, or the middle config with ``--search-evals 0``) with its ONNX Runtime latency (batch 1)
vs the extracted full model.

Usage:
    OMP_WAIT_POLICY=PASSIVE flock /tmp/netsculpt-cpu.lock .venv/bin/python bench/ofa_fmnist.py --quick
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/ofa_fmnist.py          # E1 sizes (10k images, 12 epochs)
    .venv/bin/python bench/ofa_fmnist.py --smoke                            # seconds; writes under /tmp
Prints a markdown table and writes bench/results/ofa_fmnist.json (``--quick``: ofa_fmnist_quick.json) and the
switch plot next to it (.png; drawn with ``.venv-bench``'s matplotlib when the main venv has none).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info  # noqa: E402

from netsculpt.data import make_loaders  # noqa: E402
from netsculpt.metrics.macs import count_macs  # noqa: E402
from netsculpt.models import create_model  # noqa: E402
from netsculpt.nas import DepthParams, ElasticityParams, ElasticSupernet, WidthParams  # noqa: E402
from netsculpt.nas.training import ScheduleParams, StageParams, SupernetTrainer  # noqa: E402
from netsculpt.train import evaluate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
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


# ---- report -----------------------------------------------------------------------------------------------------
def ms(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for arm in ARMS:
        rs = [r for r in runs if r["arm"] == arm]
        if not rs:
            continue
        s: dict[str, Any] = {}
        for k in ("smallest", "middle", "largest"):
            s[k] = ms([r["top1"][k] for r in rs])
        s["train_s"] = ms([r["train_s"] for r in rs])
        if rs[0]["curve"]:
            sw = rs[0]["switch_epoch"]
            dips, befores = [], []
            for r in rs:
                before = [p["top1"] for p in r["curve"] if p["epoch"] <= sw + 1e-9]
                after = [p["top1"] for p in r["curve"] if sw < p["epoch"] <= sw + 1 + 1e-9]
                if before and after:
                    befores.append(before[-1])
                    dips.append(before[-1] - min(after))
            s["acc_at_switch"] = ms(befores) if befores else None
            s["max_drop_first_shrink_epoch"] = ms(dips) if dips else None
        full = [e for r in rs for e, ph in zip(r["epoch_s"], r["epoch_phase"], strict=True) if ph == "warmup"]
        shrink = [e for r in rs for e, ph in zip(r["epoch_s"], r["epoch_phase"], strict=True) if ph == "shrink"]
        if full and shrink:
            s["shrink_vs_full_epoch"] = statistics.fmean(shrink) / statistics.fmean(full)
        summary[arm] = s
    return summary


def targets(summary: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = {}
    d, n, b, o = (summary.get(a) for a in ("deps", "deps_no_eps", "bignas", "ofa"))
    if d and b:
        gap = d["smallest"][0] - b["smallest"][0]
        t["a_smallest_deps_ge_bignas_plus_1"] = {"gap_pts": gap, "met": gap >= 1.0}
    if d and o:
        t["b_deps_ge_ofa_smallest_middle_at_le_time"] = {
            "smallest_gap": d["smallest"][0] - o["smallest"][0],
            "middle_gap": d["middle"][0] - o["middle"][0],
            "time_ratio_deps_over_ofa": d["train_s"][0] / o["train_s"][0],
            "met": d["smallest"][0] >= o["smallest"][0]
            and d["middle"][0] >= o["middle"][0]
            and d["train_s"][0] <= o["train_s"][0],
        }
    if d and n and d.get("max_drop_first_shrink_epoch") and n.get("max_drop_first_shrink_epoch"):
        t["c_no_eps_dip"] = {
            "drop_deps": d["max_drop_first_shrink_epoch"][0],
            "drop_no_eps": n["max_drop_first_shrink_epoch"][0],
            "largest_gap_deps_minus_no_eps": d["largest"][0] - n["largest"][0],
            "met": n["max_drop_first_shrink_epoch"][0] > d["max_drop_first_shrink_epoch"][0],
        }
    if d and "shrink_vs_full_epoch" in d:
        t["d_shrink_epoch_cost_x"] = {"ratio": d["shrink_vs_full_epoch"], "paper": 3.0}
    return t


def _pm(v: Any, nd: int = 2) -> str:
    return "–" if not v else f"{v[0]:.{nd}f} ± {v[1]:.{nd}f}"


def table(result: dict[str, Any]) -> str:
    a = result["args"]
    lines = [
        f"Supernet E1 ({'quick' if a['quick'] else 'smoke' if a['smoke'] else 'full'} run: "
        f"{a['train_images']} train / {a['test_images']} test images at {a['image_size']}x{a['image_size']}, "
        f"{a['epochs']} epochs, batch {a['batch_size']}, seeds {a['seeds']}, {a['threads']} threads)",
        "",
        "| Arm | smallest top-1 | middle top-1 | largest top-1 | train s | full-model drop after switch |",
        "|---|---|---|---|---|---|",
    ]
    for arm, s in result["summary"].items():
        lines.append(
            f"| {arm} | {_pm(s['smallest'])} | {_pm(s['middle'])} | {_pm(s['largest'])} | "
            f"{_pm(s['train_s'], 0)} | {_pm(s.get('max_drop_first_shrink_epoch'))} |"
        )
    st = result.get("step_time")
    if st:
        lines += [
            "",
            f"Step time (batch {st['batch']}, median of {st['reps']}): plain FP32 {st['plain_s'] * 1e3:.0f} ms, "
            f"supernet full-only {st['supernet_full_only_s'] * 1e3:.0f} ms ({st['full_only_ratio']:.2f}x), "
            f"sandwich of 4 {st['sandwich4_s'] * 1e3:.0f} ms ({st['sandwich_ratio']:.2f}x; target <= 3.5x)",
        ]
    ex = result.get("export")
    if ex:
        s, mid, fl = ex["subnet"], ex["middle"], ex["full"]
        lines += [
            "",
            f"Extract + ONNX ({ex['chosen']}): subnet {s['macs'] / 1e6:.2f} MMACs, {s['top1']:.2f} %, "
            f"ORT {s['ort_median_ms']:.3f} ms vs full {fl['macs'] / 1e6:.2f} MMACs, {fl['top1']:.2f} %, "
            f"{fl['ort_median_ms']:.3f} ms ({ex['latency_speedup']:.2f}x faster; batch 1, "
            f"{a['threads']} threads); middle config {mid['macs'] / 1e6:.2f} MMACs, {mid['top1']:.2f} %, "
            f"{mid['ort_median_ms']:.3f} ms ({ex['middle_latency_speedup']:.2f}x); extract rel. err "
            f"{max(r['extract_rel_err'] for r in (s, mid, fl)):.1e}",
        ]
    for k, v in result["targets"].items():
        lines.append(
            f"- {k}: " + ", ".join(f"{kk}={vv:.2f}" if isinstance(vv, float) else f"{kk}={vv}" for kk, vv in v.items())
        )
    return "\n".join(lines)


def plot(json_path: Path) -> Path | None:
    """The full model's top-1 around the switch, per DεpS arm and seed, the switch marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        bench_py = ROOT / ".venv-bench" / "bin" / "python"
        if bench_py.exists() and Path(sys.executable).resolve() != bench_py.resolve():
            subprocess.run([str(bench_py), __file__, "--plot-only", str(json_path)], check=False)
            png = json_path.with_suffix(".png")
            return png if png.exists() else None
        log.warning("matplotlib is not installed; no plot written")
        return None
    result = json.loads(json_path.read_text())
    fig, ax = plt.subplots(figsize=(7, 4))
    colours = {"deps": "tab:blue", "deps_no_eps": "tab:red"}
    switch = None
    for r in result["runs"]:
        if not r["curve"]:
            continue
        switch = r["switch_epoch"]
        ax.plot(
            [p["epoch"] for p in r["curve"]],
            [p["top1"] for p in r["curve"]],
            "o-",
            ms=3,
            color=colours.get(r["arm"], "k"),
            alpha=0.5 + 0.5 * (r["seed"] == result["args"]["seeds"][0]),
            label=f"{r['arm']} seed {r['seed']}",
        )
    if switch is not None:
        ax.axvline(switch, color="grey", ls="--", label="switch (subnets join)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("full model top-1 (%), BN recalibrated")
    a = result["args"]
    ax.set_title(
        f"E1 {'quick' if a['quick'] else 'smoke' if a['smoke'] else 'full'}: full model around the DεpS switch"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = json_path.with_suffix(".png")
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


# ---- main -------------------------------------------------------------------------------------------------------
def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="reduced run (5k images at 16x16, 6 epochs, 2 seeds): ~9 min on 2 cores"
    )
    ap.add_argument("--smoke", action="store_true", help="a few steps per arm (seconds); writes under /tmp")
    ap.add_argument("--plot-only", type=Path, help="redraw the plot of a result JSON and exit")
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    ap.add_argument("--seeds", type=int, nargs="+")
    ap.add_argument("--train-images", type=int)
    ap.add_argument("--test-images", type=int)
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--ramp-epochs", type=int, default=None, help="DεpS ε ramp (default max(1, round(0.02 N)))")
    ap.add_argument("--ofa-lr", type=float, default=None, help="OFA stages' initial LR (default lr/2)")
    ap.add_argument("--bn-batches", type=int)
    ap.add_argument("--curve-images", type=int)
    ap.add_argument("--curve-bn-batches", type=int)
    ap.add_argument("--curve-before", type=int, default=1, help="epochs before the switch in the curve")
    ap.add_argument("--curve-after", type=int, default=1, help="epochs after the switch in the curve")
    ap.add_argument("--step-reps", type=int)
    ap.add_argument("--search-evals", type=int)
    ap.add_argument("--search-population", type=int)
    ap.add_argument("--latency-reps", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    preset = (
        dict(
            seeds=[0],
            train_images=384,
            test_images=128,
            image_size=16,
            epochs=4,
            bn_batches=1,
            curve_images=64,
            curve_bn_batches=1,
            step_reps=2,
            search_evals=4,
            search_population=2,
            latency_reps=5,
            out=Path(tempfile.gettempdir()) / "ofa_fmnist_smoke.json",
        )
        if args.smoke
        else dict(
            seeds=[0, 1],
            train_images=5000,
            test_images=1000,
            image_size=16,
            epochs=6,
            bn_batches=4,
            curve_images=500,
            curve_bn_batches=2,
            step_reps=8,
            search_evals=40,
            search_population=10,
            latency_reps=50,
            out=RESULTS / "ofa_fmnist_quick.json",
        )
        if args.quick
        else dict(
            seeds=[0, 1],
            train_images=10000,
            test_images=2000,
            image_size=28,
            epochs=12,
            bn_batches=8,
            curve_images=1000,
            curve_bn_batches=4,
            step_reps=10,
            search_evals=200,
            search_population=20,
            latency_reps=100,
            out=RESULTS / "ofa_fmnist.json",
        )
    )
    for k, v in preset.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return args


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = parse(argv)
    if args.plot_only:
        print(plot(args.plot_only))
        return
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    machine_before = machine_info(args.threads)
    runs, keep = [], None
    for seed in args.seeds:
        for arm in args.arms:
            r, net = run_arm(arm, seed, args)
            runs.append(r)
            if arm == "deps" and seed == args.seeds[0]:
                keep = net
    step = step_times(args)
    log.info("step times %s", step)
    export = extract_export(keep, args) if keep is not None else None
    summary = summarise(runs)
    result = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "conditions": {
            "dataset": "fashion_mnist",
            "model": "resnet20 (1 channel) elastic supernet",
            "skippable_blocks": list(SKIPPABLE),
            "width_multipliers": [1.0, 0.75, 0.5],
            "min_width": 8,
            "optimizer": f"SGD momentum {MOMENTUM}, wd {WD}",
            "label_smoothing": LABEL_SMOOTHING,
            "curve_on": f"first {args.curve_images} test images",
            "top1_on": f"first {args.test_images} test images",
        },
        "machine_before": machine_before,
        "machine_after": machine_info(args.threads),
        "wall_s": time.perf_counter() - t_start,
        "summary": summary,
        "targets": targets(summary),
        "step_time": step,
        "export": export,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    png = plot(args.out)
    print(table(result))
    print(f"\nwall {result['wall_s']:.0f} s; JSON {args.out}; plot {png}")


if __name__ == "__main__":
    main()
