"""Wrappers around the peer libraries (NNCF 2.19 legacy torch API) for side-by-side benches; ONNX export and
ONNX Runtime helpers are in ``bench/_onnx_peers.py``, training-step timing in ``bench/_step_peers.py``.

Import-safe: importing this module pulls in nothing but the standard library. Every peer import
(torch, nncf, onnx, onnxruntime) happens lazily inside the functions, so bench scripts can import it
from the project venv too and only call the NNCF helpers from the bench venv
(``/work/main/.venv-bench``, see bench/PEERS_NOTES.md).

Functions return numbers/objects and never print; diagnostics go through ``logging``
(logger name ``bench.peers``).

Conventions
-----------
* ``model`` arguments accept either an ``nn.Module`` or a zero-argument factory returning one
  (NNCF rewrites the module it wraps in place, so a factory is the safer choice).
* ``sample_size`` is the full input shape NNCF traces with, batch included, e.g. ``(64, 3, 32, 32)``.
  NNCF 2.19's legacy ONNX export always writes a fixed batch of **1** (it slices ``[0:1]`` of the
  ``input_info`` tensors), whatever ``sample_size`` says, unless ``dynamic_batch=True`` here.
* ``input_shape`` for ``_onnx_peers.ort_latency`` is the per-sample shape (no batch), e.g. ``(3, 32, 32)``.
* ``loader_or_batch`` is a ``DataLoader`` / iterable of ``(x, y)`` batches, or a single ``(x, y)``
  tuple that is reused at every step.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.peers")

_BENCH_DIR = Path(__file__).resolve().parent
_STUBS_DIR = _BENCH_DIR / "_stubs"

ModelLike = Any  # nn.Module | Callable[[], nn.Module]; typed loosely to keep torch out of import time


# --------------------------------------------------------------------------------------------- env


BENCH_PYTHON = _BENCH_DIR.parent / ".venv-bench" / "bin" / "python"
"""The bench venv's interpreter (torch + nncf 2.19 + torch-pruning; netsculpt installed --no-deps)."""


def cli_flags(args: Any, keys: Iterable[str], zero_for_none: Iterable[str] = ()) -> list[str]:
    """``--key value`` for each of ``keys`` of an argparse namespace; ``None`` values are skipped, except for
    the keys in ``zero_for_none``, sent as ``0`` (the scripts' "no limit", not the peer's default)."""
    zero = set(zero_for_none)
    flags: list[str] = []
    for key in keys:
        value = getattr(args, key)
        if value is None and key in zero:
            value = 0
        if value is not None:
            flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags


def run_in_bench_venv(script: str | Path, argv: Sequence[str], what: str = "peer run") -> dict[str, Any]:
    """Run ``script argv --peer-out TMP.json`` with the bench venv's Python and return the JSON it wrote.

    A peer failing is a result, not a crash: ``{"error": ...}`` with the tail of its output.
    """
    import json
    import subprocess
    import tempfile

    if not BENCH_PYTHON.exists():
        return {"error": f"{BENCH_PYTHON} not found (see bench/PEERS_NOTES.md)"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.json"
        cmd = [str(BENCH_PYTHON), str(script), *argv, "--peer-out", str(out)]
        env = {**os.environ, "PYTHONPATH": str(_BENCH_DIR.parent / "src"),
               "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        except OSError as err:
            return {"error": f"could not start {BENCH_PYTHON}: {err}"}
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-15:])
            return {"error": f"{what} failed (exit {proc.returncode}):\n{tail}"}
        return json.loads(out.read_text())  # type: ignore[no-any-return]


def ensure_nncf_env() -> None:
    """Sets the env NNCF 2.19 needs on torch 2.13 and makes the torchvision stub importable if needed.

    * ``NNCF_TORCH_LEGACY_TRACING=1``: without it ``create_compressed_model`` refuses to run.
    * ``NNCF_EXTENSION_LOAD_TIMEOUT=0``: the first use JIT-compiles a C++ extension that takes longer
      than NNCF's default 60 s timeout on this 2-core machine.
    * ``bench/_stubs`` appended (last) to ``sys.path`` only when no real torchvision is importable:
      ``nncf.torch.accuracy_aware_training.runner`` imports ``torchvision.transforms.ToTensor``.
    Existing values of the env vars are kept.
    """
    os.environ.setdefault("NNCF_TORCH_LEGACY_TRACING", "1")
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "0")
    if importlib.util.find_spec("torchvision") is None and str(_STUBS_DIR) not in sys.path:
        sys.path.append(str(_STUBS_DIR))
        log.debug("torchvision not installed: using stub from %s", _STUBS_DIR)


def nncf_build_extension() -> float:
    """Forces NNCF's CPU C++ extension to be built/loaded now; returns the seconds it took.

    Call once before timing :func:`nncf_qat_wrap` so the JIT build (60-125 s cold, ~1-3 s when
    cached in ``~/.cache/torch_extensions``) is not counted as wrap time.
    """
    ensure_nncf_env()
    import nncf.torch

    t0 = time.perf_counter()
    nncf.torch.force_build_cpu_extensions()
    return time.perf_counter() - t0


def make_timer(clock: str) -> Callable[[], float]:
    if clock == "wall":
        return time.perf_counter
    if clock == "cpu":
        return time.process_time
    raise ValueError("clock must be 'wall' or 'cpu'")


def materialize(model: ModelLike) -> Any:
    import torch.nn as nn

    if isinstance(model, nn.Module):
        return model
    if callable(model):
        built = model()
        if not isinstance(built, nn.Module):
            raise TypeError(f"model factory returned {type(built).__name__}, expected nn.Module")
        return built
    raise TypeError(f"expected nn.Module or a factory, got {type(model).__name__}")


def _deep_merge(base: dict, overrides: Mapping | None) -> dict:
    out = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _as_init_loader(loader_or_batch: Any) -> Any:
    """NNCF's init wants a real DataLoader (it reads ``.batch_size``) yielding ``(x, y)``."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    if isinstance(loader_or_batch, DataLoader):
        return loader_or_batch
    if (
        isinstance(loader_or_batch, (tuple, list))
        and len(loader_or_batch) == 2
        and all(isinstance(t, torch.Tensor) for t in loader_or_batch)
    ):
        x, y = loader_or_batch
        return DataLoader(TensorDataset(x, y), batch_size=x.shape[0], shuffle=False)
    raise TypeError("init_loader must be a torch DataLoader or an (x, y) tuple of tensors")


def _nncf_create(model: ModelLike, config_dict: dict, init_loader: Any, clock: str = "wall") -> tuple[Any, Any, float]:
    ensure_nncf_env()
    from nncf import NNCFConfig
    from nncf.torch import create_compressed_model, register_default_init_args

    module = materialize(model)
    config_dict = dict(config_dict)
    # NNCF writes original_graph.dot / compressed_graph.dot and debug logs into log_dir (default:
    # the cwd, i.e. the repo root); keep them out of the tree.
    config_dict.setdefault("log_dir", str(_nncf_log_dir()))
    timer = make_timer(clock)
    t0 = timer()
    config = NNCFConfig.from_dict(config_dict)
    if init_loader is not None:
        config = register_default_init_args(config, _as_init_loader(init_loader), device="cpu")
    ctrl, wrapped = create_compressed_model(module, config, dump_graphs=False)
    seconds = timer() - t0
    log.info("NNCF %s wrap: %.2f s (%s)", [a.get("algorithm") for a in _algos(config_dict)], seconds, clock)
    return ctrl, wrapped, seconds


def _nncf_log_dir() -> Path:
    import tempfile

    d = Path(tempfile.gettempdir()) / "netsculpt-bench-nncf"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _algos(config_dict: dict) -> list[dict]:
    comp = config_dict.get("compression", [])
    return [comp] if isinstance(comp, dict) else list(comp)


class OrderDigest:
    """The training loader, hashing the labels of the batches it yields: equal digests, equal data order."""

    def __init__(self, loader: Any) -> None:
        self.loader, self.digest = loader, ""

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Any:
        h = hashlib.sha1()
        for x, y in self.loader:
            h.update(y.numpy().tobytes())
            yield x, y
        self.digest = h.hexdigest()[:12]


# -------------------------------------------------------------------------------------- NNCF QAT


def nncf_quantization_config(
    sample_size: Sequence[int],
    *,
    num_init_samples: int | None = None,
    num_bn_adaptation_samples: int = 0,
    export_standard_ops: bool = True,
) -> dict:
    """The 8-bit QAT config the benches use (before overrides).

    Symmetric, per-tensor, 8 bits for weights and activations (NNCF's own default for weights is
    also per-tensor under ``target_device: ANY``; spelled out here). ``num_init_samples`` adds
    ``initializer.range`` (min-max over that many samples, needs a loader); ``None`` leaves the
    section out. Batch-norm adaptation is off unless ``num_bn_adaptation_samples > 0`` (NNCF's
    default would run 2000 samples through the net whenever a loader is registered).
    ``export_standard_ops`` makes the legacy export emit ONNX QuantizeLinear/DequantizeLinear pairs
    instead of NNCF's custom ``FakeQuantize`` op, which ONNX Runtime cannot run (deprecated option,
    still honoured by 2.19).
    """
    quant: dict[str, Any] = {
        "algorithm": "quantization",
        "weights": {"mode": "symmetric", "bits": 8, "per_channel": False},
        "activations": {"mode": "symmetric", "bits": 8, "per_channel": False},
        "export_to_onnx_standard_ops": bool(export_standard_ops),
        "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": int(num_bn_adaptation_samples)}},
    }
    if num_init_samples is not None:
        quant["initializer"]["range"] = {"num_init_samples": int(num_init_samples)}
    return {
        "input_info": {"sample_size": [int(s) for s in sample_size]},
        "target_device": "ANY",
        "compression": quant,
    }


def nncf_qat_wrap(
    model: ModelLike,
    sample_size: tuple[int, ...],
    config_overrides: dict | None = None,
    *,
    init_loader: Any = None,
    num_init_samples: int | None = None,
    num_bn_adaptation_samples: int = 0,
    export_standard_ops: bool = True,
    clock: str = "wall",
) -> tuple[Any, Any, float]:
    """Wraps ``model`` for 8-bit QAT with NNCF 2.19's legacy API.

    Returns ``(compression_ctrl, compressed_model, seconds_to_wrap)``; the seconds cover
    ``NNCFConfig.from_dict`` + ``register_default_init_args`` + ``create_compressed_model``
    (tracing, quantizer insertion, range init). Call :func:`nncf_build_extension` first, or the
    one-off JIT build lands in this number.

    ``config_overrides`` is deep-merged into the whole config (e.g.
    ``{"compression": {"weights": {"per_channel": True}}}``). With ``init_loader`` (a DataLoader of
    ``(x, y)`` or one ``(x, y)`` batch) range init runs on ``num_init_samples`` samples (default:
    one batch' worth); without it no range init runs and quantizer scales keep NNCF's defaults.
    ``clock="cpu"`` reports process CPU seconds instead of wall seconds (robust to a loaded machine).
    """
    if init_loader is not None and num_init_samples is None:
        num_init_samples = int(sample_size[0])
    cfg = nncf_quantization_config(
        sample_size,
        num_init_samples=num_init_samples if init_loader is not None else None,
        num_bn_adaptation_samples=num_bn_adaptation_samples,
        export_standard_ops=export_standard_ops,
    )
    cfg = _deep_merge(cfg, config_overrides)
    return _nncf_create(model, cfg, init_loader, clock)


# -------------------------------------------------------------------- pruning / sparsity (minimal)


def nncf_filter_pruning(
    model: ModelLike,
    sample_size: tuple[int, ...],
    pruning_target: float = 0.5,
    config_overrides: dict | None = None,
    *,
    init_loader: Any = None,
    clock: str = "wall",
) -> tuple[Any, Any, float]:
    """NNCF 2.19 ``filter_pruning`` with the target applied at creation (``pruning_init`` = target).

    NNCF defaults kept otherwise (L2 filter importance, first conv and downsample convs not pruned);
    pruned filters are zeroed by masks, not removed. Returns ``(ctrl, model, seconds_to_wrap)``;
    see :func:`nncf_pruning_stats`.
    """
    cfg = {
        "input_info": {"sample_size": [int(s) for s in sample_size]},
        "compression": {
            "algorithm": "filter_pruning",
            "pruning_init": float(pruning_target),
            "params": {"pruning_target": float(pruning_target), "num_init_steps": 0, "pruning_steps": 1},
            "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
        },
    }
    return _nncf_create(model, _deep_merge(cfg, config_overrides), init_loader, clock)


def nncf_magnitude_sparsity(
    model: ModelLike,
    sample_size: tuple[int, ...],
    sparsity_target: float = 0.5,
    config_overrides: dict | None = None,
    *,
    init_loader: Any = None,
    clock: str = "wall",
) -> tuple[Any, Any, float]:
    """NNCF 2.19 ``magnitude_sparsity`` with ``sparsity_init`` = target (unstructured weight masks).

    Returns ``(ctrl, model, seconds_to_wrap)``; see :func:`nncf_sparsity_level`.
    """
    cfg = {
        "input_info": {"sample_size": [int(s) for s in sample_size]},
        "compression": {
            "algorithm": "magnitude_sparsity",
            "sparsity_init": float(sparsity_target),
            "params": {"sparsity_target": float(sparsity_target), "sparsity_target_epoch": 1},
            "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
        },
    }
    return _nncf_create(model, _deep_merge(cfg, config_overrides), init_loader, clock)


def nncf_pruning_stats(ctrl: Any) -> dict[str, float]:
    """What NNCF reports for filter pruning: pruning level, FLOPs/params before & after."""
    st = ctrl.statistics().filter_pruning
    ms = st.model_statistics
    return {
        "pruning_level": float(st.current_pruning_level),
        "full_filters": float(ms.full_filters_num),
        "current_filters": float(ms.current_filters_num),
        "filter_pruning_level": float(ms.filter_pruning_level),
        "full_flops": float(ms.full_flops),
        "current_flops": float(ms.current_flops),
        "flops_pruning_level": float(ms.flops_pruning_level),
        "full_params": float(ms.full_params_num),
        "current_params": float(ms.current_params_num),
        "params_pruning_level": float(ms.params_pruning_level),
    }


def nncf_sparsity_level(ctrl: Any) -> float:
    """Sparsity level of the sparsified layers' weights as NNCF reports it."""
    st = ctrl.statistics().magnitude_sparsity
    return float(st.model_statistics.sparsity_level_for_layers)


def zero_filter_fraction(model: Any) -> float:
    """Fraction of Conv2d output filters whose effective (masked) weights are all zero, measured on
    the module itself rather than taken from NNCF's statistics."""
    import torch

    total = zero = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                w = m.weight
                # NNCF applies masks in pre-ops; materialize via the pre-op if there is one.
                for op in getattr(m, "pre_ops", {}).values():
                    if hasattr(op, "operand") and hasattr(op.operand, "binary_filter_pruning_mask"):
                        mask = op.operand.binary_filter_pruning_mask
                        w = w * mask.view(-1, *([1] * (w.dim() - 1)))
                flat = w.reshape(w.shape[0], -1)
                total += flat.shape[0]
                zero += int((flat.abs().sum(dim=1) == 0).sum())
    return zero / total if total else 0.0
