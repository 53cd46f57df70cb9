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

The parts live next to this script: bench/_ofa_arms.py (data, the supernet, the four arms' training),
bench/_ofa_measure.py (step time, subnet search, extract + ONNX export) and bench/_ofa_report.py (summary,
targets, the printed table, the plot); this file holds the command line and runs the whole.

Usage:
    OMP_WAIT_POLICY=PASSIVE flock /tmp/netsculpt-cpu.lock .venv/bin/python bench/ofa_fmnist.py --quick
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/ofa_fmnist.py          # E1 sizes (10k images, 12 epochs)
    .venv/bin/python bench/ofa_fmnist.py --smoke                            # seconds; writes under /tmp
Prints a markdown table and writes bench/results/ofa_fmnist.json (``--quick``: ofa_fmnist_quick.json) and the
switch plot next to it (.png; drawn with ``.venv-bench``'s matplotlib when the main venv has none).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info  # noqa: E402
from _ofa_arms import ARMS, LABEL_SMOOTHING, MOMENTUM, SKIPPABLE, WD, run_arm  # noqa: E402
from _ofa_measure import extract_export, step_times  # noqa: E402
from _ofa_report import ROOT, plot, summarise, table, targets  # noqa: E402

RESULTS = ROOT / "bench" / "results"
log = logging.getLogger("bench.ofa_fmnist")


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
