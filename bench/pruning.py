"""Filter pruning at ~50% FLOPs removed: netsculpt vs Torch-Pruning 1.6.1 vs NNCF 2.19, then ONNX Runtime.

For ResNet-56, ResNet-18-CIFAR and MobileNetV2-CIFAR (``netsculpt.models``), with and without ``round_to=8``:
time to prune, params and FLOPs (counted on the model that is actually exported), and ONNX Runtime latency
before/after at batch 1 and 64 with 2 threads. All ONNX files are timed in this process, interleaved in
rounds, so machine load hits every model alike (see bench/_peers.py). The peers run in the bench venv
(/work/main/.venv-bench) through a subprocess of this same file (``--peer``) that only prunes and exports.

    .venv/bin/python bench/pruning.py                    # full run (long: others measure timings; ask first)
    .venv/bin/python bench/pruning.py --smoke            # resnet20 only, few repeats, seconds of ORT time

Writes bench/results/pruning[_smoke].json and a markdown table next to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench" / "bin" / "python"
SHAPE = (3, 32, 32)
FLOPS_TARGET = 0.5
TP_RATIO = 0.293  # Torch-Pruning has no FLOPs target; 1 - sqrt(0.5) of the channels ~ halves conv FLOPs
log = logging.getLogger("bench.pruning")


def _model(name: str) -> Any:
    import torch

    from netsculpt.models import create_model

    torch.manual_seed(0)
    return create_model(name).eval()


def _count(model: Any) -> dict[str, int]:
    import torch

    from netsculpt.metrics.macs import count_macs

    r = count_macs(model, (torch.randn(1, *SHAPE),))
    return {"macs": r.total, "params": sum(p.numel() for n, p in model.named_parameters() if "_netsculpt" not in n)}


def _export_fp32(model: Any, path: Path) -> str:
    import torch

    with torch.no_grad():
        torch.onnx.export(
            model.eval(), (torch.randn(1, *SHAPE),), str(path), input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17, dynamo=False,
        )  # fmt: skip
    return str(path)


# ---- netsculpt (project venv) ----------------------------------------------------------------------------
def netsculpt_run(name: str, round_to: int, out: Path) -> dict[str, Any]:
    """Prune to the FLOPs target at creation, strip (physical removal), export FP32 ONNX."""
    from netsculpt import create_compressed_model

    cfg = {
        "input_info": {"sample_size": [1, *SHAPE]},
        "compression": {
            "algorithm": "filter_pruning",
            "pruning_init": FLOPS_TARGET,
            "params": {
                "pruning_flops_target": FLOPS_TARGET,
                "prune_first_conv": True,
                "prune_downsample_convs": True,
                "round_to": round_to,
                "filter_importance": "L2",
            },
        },
    }
    times = []
    for _ in range(2):  # best of two: the first run also pays one-time import/allocation costs
        model = _model(name)
        t0 = time.perf_counter()
        ctrl, _ = create_compressed_model(model, cfg)
        stripped = ctrl.strip()
        times.append(time.perf_counter() - t0)
    seconds = min(times)
    path = ctrl.export_model(out / f"netsculpt_{name}_r{round_to}.onnx")
    return {
        "seconds": seconds,
        **_count(stripped),
        "onnx": str(path),
        "strip_rel_error": ctrl.child_ctrls[0].last_strip_error,
    }


# ---- peers (bench venv) ----------------------------------------------------------------------------------
def tp_run(name: str, round_to: int, out: Path) -> dict[str, Any]:
    """Torch-Pruning 1.6.1 MetaPruner, L2 group magnitude, uniform ratio, classifier ignored."""
    import torch
    import torch_pruning as tp

    x = torch.randn(1, *SHAPE)
    times = []
    for _ in range(2):  # best of two, as for netsculpt
        model = _model(name)
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1:]
        t0 = time.perf_counter()
        pruner = tp.pruner.MetaPruner(
            model, x, importance=tp.importance.GroupMagnitudeImportance(p=2), pruning_ratio=TP_RATIO,
            ignored_layers=last, round_to=round_to if round_to > 1 else None,
        )  # fmt: skip
        pruner.step()
        times.append(time.perf_counter() - t0)
    seconds = min(times)
    return {"seconds": seconds, **_count(model), "onnx": _export_fp32(model, out / f"tp_{name}_r{round_to}.onnx")}


def nncf_run(name: str, out: Path) -> dict[str, Any]:
    """NNCF 2.19 filter_pruning at the FLOPs target (masks: the export keeps every filter, zeroed)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import _onnx_peers
    import _peers

    cfg = {
        "input_info": {"sample_size": [1, *SHAPE]},
        "compression": {
            "algorithm": "filter_pruning",
            "pruning_init": FLOPS_TARGET,
            "params": {"pruning_flops_target": FLOPS_TARGET, "prune_first_conv": True, "prune_downsample_convs": True,
                       "num_init_steps": 0, "pruning_steps": 1},
            "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
        },
    }  # fmt: skip
    _peers.nncf_build_extension()  # the one-time C++ build is not pruning time
    runs = [_peers._nncf_create(lambda: _model(name), cfg, None) for _ in range(2)]
    ctrl, _, _ = runs[-1]
    seconds = min(r[2] for r in runs)
    stats = _peers.nncf_pruning_stats(ctrl)
    path = _onnx_peers.nncf_export_onnx(ctrl, out / f"nncf_{name}.onnx", dynamic_batch=True)
    # the table shows what is exported (every filter kept, zeroed); NNCF's own FLOPs claim stays in the JSON
    return {"seconds": seconds, **_count(_model(name)), "onnx": path, "claimed": stats}


def _peer_main(args: argparse.Namespace) -> None:
    out = Path(args.out_dir)
    res: dict[str, Any] = {}
    for name in args.models:
        for r in (1, 8):
            try:
                res[f"tp/{name}/r{r}"] = tp_run(name, r, out)
            except Exception as err:  # noqa: BLE001 - a peer failing is a result
                res[f"tp/{name}/r{r}"] = {"error": f"{type(err).__name__}: {err}"}
        if not args.skip_nncf:
            try:
                res[f"nncf/{name}"] = nncf_run(name, out)
            except Exception as err:  # noqa: BLE001
                res[f"nncf/{name}"] = {"error": f"{type(err).__name__}: {err}"}
    Path(args.peer_json).write_text(json.dumps(res, indent=1))


# ---- orchestration ---------------------------------------------------------------------------------------
def _latencies(paths: dict[str, str], repeats: int, rounds: int) -> dict[str, dict[str, float]]:
    sys.path.insert(0, str(ROOT / "bench"))
    import _onnx_peers

    lat: dict[str, dict[str, float]] = {k: {} for k in paths}
    for batch in (1, 64):
        times = _onnx_peers.ort_latency_interleaved(paths, SHAPE, threads=2, batch=batch, repeats=repeats, rounds=rounds)
        for k, v in times.items():
            lat[k][f"b{batch}"] = v
    return lat


def _table(res: dict[str, Any]) -> str:
    lines = [
        "| model | method | prune s | params | MACs (M) | FLOPs removed | ORT b1 speed-up | ORT b64 speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in res["models"].items():
        base = rows["fp32"]
        for key, r in rows.items():
            if "error" in r:
                lines.append(f"| {name} | {key} | failed: {r['error'][:80]} | | | | | |")
                continue
            lat = r.get("latency", {})
            sp = [base["latency"][b] / lat[b] if b in lat else float("nan") for b in ("b1", "b64")]
            removed = 1 - r["macs"] / base["macs"]
            lines.append(
                f"| {name} | {key} | {r.get('seconds', 0):.2f} | {r['params']:,} | {r['macs'] / 1e6:.1f} | "
                f"{removed:.1%} | {sp[0]:.2f}x | {sp[1]:.2f}x |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="resnet20 only, few ORT repeats")
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--skip-nncf", action="store_true")
    ap.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--peer-json", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.peer:
        _peer_main(args)
        return
    models = args.models or (["resnet20"] if args.smoke else ["resnet56", "resnet18_cifar", "mobilenetv2_cifar"])
    repeats = args.repeats or (5 if args.smoke else 10)
    rounds = 2 if args.smoke else 5
    import torch

    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp(prefix="bench_pruning_"))
    res: dict[str, Any] = {
        "torch": torch.__version__,
        "loadavg_before": os.getloadavg(),
        "models": {},
        "flops_target": FLOPS_TARGET,
    }
    paths: dict[str, str] = {}
    for name in models:
        rows: dict[str, Any] = {
            "fp32": {**_count(_model(name)), "onnx": _export_fp32(_model(name), tmp / f"{name}.onnx")}
        }
        for r in (1, 8):
            rows[f"netsculpt r{r}"] = netsculpt_run(name, r, tmp)
        res["models"][name] = rows
    if not args.skip_peers and BENCH_VENV.exists():
        peer_json = tmp / "peers.json"
        cmd = [
            str(BENCH_VENV),
            __file__,
            "--peer",
            "--out-dir",
            str(tmp),
            "--peer-json",
            str(peer_json),
            "--models",
            *models,
        ]
        cmd += ["--skip-nncf"] if args.skip_nncf else []
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_WAIT_POLICY": "PASSIVE"}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            log.warning("peers failed: %s", proc.stderr[-2000:])
        else:
            for key, r in json.loads(peer_json.read_text()).items():
                lib, name, *rest = key.split("/")
                label = "torch-pruning" + (f" {rest[0]}" if rest else "") if lib == "tp" else "nncf 2.19 (masks)"
                res["models"][name][label] = r
    for name, rows in res["models"].items():
        for key, r in rows.items():
            if "onnx" in r:
                paths[f"{name}|{key}"] = r["onnx"]
    for k, v in _latencies(paths, repeats, rounds).items():
        name, key = k.split("|")
        res["models"][name][key]["latency"] = v
    res["loadavg_after"] = os.getloadavg()
    stem = "pruning_smoke" if args.smoke else "pruning"
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1, default=str))
    table = _table(res)
    (out / f"{stem}.md").write_text(table + "\n")
    print(table)  # noqa: T201 - bench scripts print their table


if __name__ == "__main__":
    main()
