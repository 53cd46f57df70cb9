"""Smoke-checks the peer wrappers in bench/_peers.py, bench/_onnx_peers.py and bench/_step_peers.py on an inline
CIFAR ResNet-20 and random data.

Self-contained (does not import netsculpt). Run from the bench venv:

    OMP_WAIT_POLICY=PASSIVE /work/main/.venv-bench/bin/python bench/_check_peers.py [--quick]

Prints a small table: NNCF wrap time, NNCF QAT step / FP32 step ratio, ONNX Runtime latency of
FP32 vs NNCF INT8 export vs ORT quantize_static INT8 (batch 1 and 64, 2 threads), plus output
agreement and the op counts that explain the latencies. Takes a few minutes on 2 cores (more on
the very first run: NNCF JIT-builds its C++ extension, 60-125 s).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _onnx_peers  # noqa: E402
import _peers  # noqa: E402
import _step_peers  # noqa: E402

_peers.ensure_nncf_env()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

# ----------------------------------------------------------------- tiny CIFAR ResNet-20 (check only)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:  # option B: 1x1 conv projection
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self, num_classes: int = 10, n: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers: list[nn.Module] = []
        cin = 16
        for i, cout in enumerate((16, 32, 64)):
            for j in range(n):
                layers.append(_Block(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return ResNet20()


# ----------------------------------------------------------------------------------------- main


def _loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer steps/repeats")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bench.peers").setLevel(logging.INFO)

    threads = args.threads
    torch.set_num_threads(threads)
    steps, rounds, repeats64, repeats1, ort_rounds = (4, 2, 2, 20, 3) if args.quick else (8, 3, 4, 40, 6)
    bs = 64
    sample = (bs, 3, 32, 32)
    res: dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "loadavg_start": _loadavg(),
    }
    import nncf
    import onnxruntime

    res["nncf"] = nncf.__version__
    res["onnxruntime"] = onnxruntime.__version__

    g = torch.Generator().manual_seed(0)
    xs = torch.randn(4 * bs, 3, 32, 32, generator=g)
    ys = torch.randint(0, 10, (4 * bs,), generator=g)
    loader = DataLoader(TensorDataset(xs, ys), batch_size=bs, shuffle=False)
    batch = (xs[:bs], ys[:bs])

    res["nncf_extension_load_s"] = _peers.nncf_build_extension()

    # --- wrap ---------------------------------------------------------------------------------
    _, _, wrap_first = _peers.nncf_qat_wrap(make_model, sample)  # first call pays one-off costs
    _, _, wrap_noinit = _peers.nncf_qat_wrap(make_model, sample)
    res["nncf_wrap_s_first_call"] = wrap_first
    ctrl, qmodel, wrap_init = _peers.nncf_qat_wrap(make_model, sample, init_loader=loader, num_init_samples=4 * bs)
    res["nncf_wrap_s_no_init"] = wrap_noinit
    res["nncf_wrap_s_range_init_256"] = wrap_init
    res["nncf_num_quantizers"] = len(ctrl.all_quantizations)
    _, _, wrap_cpu = _peers.nncf_qat_wrap(make_model, sample, clock="cpu")
    res["nncf_wrap_cpu_s_no_init"] = wrap_cpu

    # --- train steps: alternate rounds so load drift hits both -------------------------------
    fp32 = make_model()
    fp32_t: list[float] = []
    nncf_t: list[float] = []
    for _ in range(rounds):
        fp32_t.append(_step_peers.fp32_train_step_time(fp32, batch, steps=steps, warmup=2))
        nncf_t.append(_step_peers.nncf_train_step_time(qmodel, batch, steps=steps, warmup=2, ctrl=ctrl))
    fp32_step, nncf_step = statistics.median(fp32_t), statistics.median(nncf_t)
    # CPU seconds (all threads) per step: less sensitive to other processes taking the cores
    fp32_cpu = _step_peers.fp32_train_step_time(fp32, batch, steps=steps, warmup=1, clock="cpu")
    nncf_cpu = _step_peers.nncf_train_step_time(qmodel, batch, steps=steps, warmup=1, ctrl=ctrl, clock="cpu")
    res.update(
        fp32_step_s=fp32_step,
        nncf_qat_step_s=nncf_step,
        qat_over_fp32_step=nncf_step / fp32_step,
        fp32_step_cpu_s=fp32_cpu,
        nncf_qat_step_cpu_s=nncf_cpu,
        qat_over_fp32_step_cpu=nncf_cpu / fp32_cpu,
    )

    # --- ONNX ------------------------------------------------------------------------------------
    tmp = Path(tempfile.mkdtemp(prefix="peers_check_"))
    ref = make_model(1)  # fresh FP32 net with BN statistics from a few batches
    ref.train()
    with torch.no_grad():
        for i in range(0, 4 * bs, bs):
            ref(xs[i : i + bs])
    ref.eval()
    fp32_onnx = _onnx_peers.fp32_export_onnx(ref, tmp / "fp32.onnx", (3, 32, 32))
    nncf_fixed = _onnx_peers.nncf_export_onnx(ctrl, tmp / "nncf_int8_fixed.onnx")
    nncf_dyn = _onnx_peers.nncf_export_onnx(ctrl, tmp / "nncf_int8_dyn.onnx", dynamic_batch=True)
    import onnxruntime as ort

    sess = ort.InferenceSession(nncf_fixed, providers=["CPUExecutionProvider"])
    res["nncf_export_input_shape"] = sess.get_inputs()[0].shape
    calib = [xs[i : i + bs] for i in range(0, 4 * bs, bs)]
    ortq = _onnx_peers.ort_quantize_static(fp32_onnx, tmp / "ortq_int8.onnx", calib)

    x1, x64 = xs[:1], torch.randn(bs, 3, 32, 32, generator=g)
    res["maxabs_fp32_vs_torch_b64"] = _onnx_peers.onnx_max_abs_diff(fp32_onnx, ref, x64)
    res["maxabs_nncf_fixed_vs_torch_b1"] = _onnx_peers.onnx_max_abs_diff(nncf_fixed, qmodel, x1)
    res["maxabs_nncf_dyn_vs_torch_b1"] = _onnx_peers.onnx_max_abs_diff(nncf_dyn, qmodel, x1)
    res["maxabs_nncf_dyn_vs_torch_b64"] = _onnx_peers.onnx_max_abs_diff(nncf_dyn, qmodel, x64)
    with torch.no_grad():
        want = ref(x64).numpy()
    got = _onnx_peers.ort_run(ortq, x64)
    res["ortq_vs_fp32_rel_rms"] = float(np.sqrt(((got - want) ** 2).mean() / (want**2).mean()))
    res["ortq_vs_fp32_argmax_agree"] = float((got.argmax(1) == want.argmax(1)).mean())
    res["ops_nncf_export"] = _onnx_peers.onnx_op_counts(nncf_fixed)
    res["ops_nncf_export_ort_optimized"] = _onnx_peers.ort_optimized_op_counts(nncf_fixed, threads)
    res["ops_ortq_ort_optimized"] = _onnx_peers.ort_optimized_op_counts(ortq, threads)
    res["ops_fp32_ort_optimized"] = _onnx_peers.ort_optimized_op_counts(fp32_onnx, threads)

    # models alternate inside each call, so load drift is shared
    paths = {"fp32": fp32_onnx, "nncf_int8": nncf_dyn, "ortq_int8": ortq}
    lat: dict[str, dict[int, float]] = {n: {} for n in paths}
    cpu1: dict[str, dict[int, float]] = {n: {} for n in paths}
    for b, rep in ((1, repeats1), (64, repeats64)):
        for n, v in _onnx_peers.ort_latency_interleaved(paths, (3, 32, 32), threads, b, rep, ort_rounds).items():
            lat[n][b] = v
        for n, v in _onnx_peers.ort_latency_interleaved(paths, (3, 32, 32), 1, b, rep, ort_rounds, clock="cpu").items():
            cpu1[n][b] = v
    res["ort_latency_s"] = lat
    res["ort_cpu_s_1thread"] = cpu1
    res["ort_nncf_fixed_b1_s"] = _onnx_peers.ort_latency(nncf_fixed, (3, 32, 32), threads=threads, batch=1, repeats=repeats1)

    # --- pruning / sparsity wrappers (smoke) -----------------------------------------------------
    pctrl, pmodel, pwrap = _peers.nncf_filter_pruning(make_model, sample, 0.5)
    res["nncf_filter_pruning_wrap_s"] = pwrap
    res["nncf_filter_pruning_stats"] = _peers.nncf_pruning_stats(pctrl)
    res["nncf_filter_pruning_zero_filters_measured"] = _peers.zero_filter_fraction(pmodel)
    sctrl, _, swrap = _peers.nncf_magnitude_sparsity(make_model, sample, 0.5)
    res["nncf_magnitude_sparsity_wrap_s"] = swrap
    res["nncf_magnitude_sparsity_level"] = _peers.nncf_sparsity_level(sctrl)
    res["loadavg_end"] = _loadavg()

    # --- table -------------------------------------------------------------------------------------
    out = sys.stdout
    out.write(
        f"\npeers check  nncf {res['nncf']}  torch {res['torch']}  onnxruntime {res['onnxruntime']}  "
        f"threads {threads}  OMP_WAIT_POLICY={res['omp_wait_policy'] or '-'}  "
        f"load {res['loadavg_start']} -> {res['loadavg_end']}\n"
    )
    out.write(f"NNCF extension load (cached after first build)   {res['nncf_extension_load_s']:8.2f} s\n")
    out.write(f"NNCF 8-bit QAT wrap, no init (1st call / 2nd)     {wrap_first:8.2f} s / {wrap_noinit:.2f} s wall")
    out.write(f", {wrap_cpu:.2f} s CPU\n")
    nq = res["nncf_num_quantizers"]
    out.write(f"NNCF 8-bit QAT wrap, range init 256 samples       {wrap_init:8.2f} s   ({nq} quantizers)\n")
    out.write(
        f"train step b64 wall: FP32 {fp32_step * 1e3:7.1f} ms  NNCF QAT {nncf_step * 1e3:7.1f} ms"
        f"  ratio {res['qat_over_fp32_step']:.2f}x\n"
    )
    out.write(
        f"train step b64 CPU : FP32 {fp32_cpu * 1e3:7.1f} ms  NNCF QAT {nncf_cpu * 1e3:7.1f} ms"
        f"  ratio {res['qat_over_fp32_step_cpu']:.2f}x\n"
    )
    shape = res["nncf_export_input_shape"]
    out.write(f"NNCF legacy export input shape: {shape} (fixed; wrapped with {list(sample)})\n\n")
    out.write(
        f"{'ORT (ms, median)':20s}{f'wall {threads}t b1':>12s}{'b64':>9s}{'speed b64':>11s}"
        f"{'cpu 1t b1':>11s}{'b64':>9s}{'speed b64':>11s}\n"
    )
    for n in paths:
        out.write(
            f"{n:20s}{lat[n][1] * 1e3:12.3f}{lat[n][64] * 1e3:9.2f}{lat['fp32'][64] / lat[n][64]:10.2f}x"
            f"{cpu1[n][1] * 1e3:11.3f}{cpu1[n][64] * 1e3:9.2f}{cpu1['fp32'][64] / cpu1[n][64]:10.2f}x\n"
        )
    out.write(f"{'nncf (as exported)':20s}{res['ort_nncf_fixed_b1_s'] * 1e3:12.3f}{'-':>9s}\n\n")
    out.write(
        "max|ORT - torch|: fp32 {:.2e}, nncf as-exported b1 {:.2e}, nncf dyn b1 {:.2e} / b64 {:.2e}; "
        "ortq vs fp32 torch: rel RMS {:.1%}, argmax agree {:.0%}\n".format(
            res["maxabs_fp32_vs_torch_b64"],
            res["maxabs_nncf_fixed_vs_torch_b1"],
            res["maxabs_nncf_dyn_vs_torch_b1"],
            res["maxabs_nncf_dyn_vs_torch_b64"],
            res["ortq_vs_fp32_rel_rms"],
            res["ortq_vs_fp32_argmax_agree"],
        )
    )

    def _pick(d: dict, keys: tuple[str, ...]) -> str:
        return ", ".join(f"{k} {d.get(k, 0)}" for k in keys)

    keys = ("Conv", "QLinearConv", "BatchNormalization", "QuantizeLinear", "DequantizeLinear")
    out.write("ORT-optimized ops  nncf: " + _pick(res["ops_nncf_export_ort_optimized"], keys) + "\n")
    out.write("ORT-optimized ops  ortq: " + _pick(res["ops_ortq_ort_optimized"], keys) + "\n")
    ps = res["nncf_filter_pruning_stats"]
    out.write(
        f"filter_pruning 0.5: wrap {pwrap:.2f} s, NNCF says filters -{ps['filter_pruning_level']:.1%} "
        f"FLOPs -{ps['flops_pruning_level']:.1%} params -{ps['params_pruning_level']:.1%}; "
        f"zero filters measured {res['nncf_filter_pruning_zero_filters_measured']:.1%}\n"
    )
    slevel = res["nncf_magnitude_sparsity_level"]
    out.write(f"magnitude_sparsity 0.5: wrap {swrap:.2f} s, sparsity of layers {slevel:.1%}\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    rc = main()
    sys.stdout.write(f"total {time.perf_counter() - t0:.0f} s\n")
    raise SystemExit(rc)
