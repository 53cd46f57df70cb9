"""The two libraries behind bench/sparsity_fmnist.py's arms: create a compressed model from the shared
NNCF-dialect config, and measure its sparsity (netsculpt's statistics; NNCF's masks counted from the logits).

Imported in both venvs: NNCF is imported inside the functions (bench venv only), netsculpt's compressed-size
metric too (the script puts ``src/`` on ``sys.path`` for the peer run).
"""

from __future__ import annotations

import copy
from typing import Any

import _peers
import torch
from torch import nn


def netsculpt_create(model: nn.Module, cfg: dict[str, Any], train: Any) -> tuple[Any, nn.Module]:
    """netsculpt's create_compressed_model with the training loader registered for range init."""
    from netsculpt import create_compressed_model, register_default_init_args

    return create_compressed_model(model, register_default_init_args(cfg, train))  # type: ignore[arg-type]


def nncf_create(model: nn.Module, cfg: dict[str, Any], train: Any) -> tuple[Any, nn.Module]:
    """NNCF 2.19's legacy create_compressed_model with the same config and loader."""

    _peers.ensure_nncf_env()
    from nncf import NNCFConfig
    from nncf.torch import create_compressed_model, register_default_init_args

    config = register_default_init_args(NNCFConfig.from_dict(copy.deepcopy(cfg)), train, device="cpu")
    return create_compressed_model(model, config)  # type: ignore[no-any-return]


def netsculpt_measure(ctrl: Any, fp32: nn.Module) -> dict[str, Any]:
    """Measured sparsity and the gzip size of the stripped model's state_dict relative to the FP32 model's."""
    from netsculpt.metrics.sparse_size import compressed_size

    stats = ctrl.statistics().as_dict()
    sparse = next(v for k, v in stats.items() if k.endswith("sparsity"))
    size, dense = compressed_size(ctrl.strip()), compressed_size(fp32)
    return {
        "sparsity": sparse["sparsity_level_for_layers"],
        "gzip_bytes": size.gzip_bytes,
        "fp32_gzip_bytes": dense.gzip_bytes,
        "gzip_vs_fp32": size.gzip_bytes / dense.gzip_bytes,
    }


def nncf_measure(ctrl: Any, fp32: nn.Module) -> dict[str, Any]:
    """Sparsity of the sparsified layers, counted on the masks NNCF's forward applies in eval.

    NNCF's own statistics read a ``binary_mask`` buffer that RB sparsity refreshes only when ``state_dict()`` is
    called (a state-dict hook), so during training they report the level of the last refresh (0 % at first);
    the RB mask in eval is ``[logit > 0]``, computed here from the logits. NNCF's reported value is kept as
    ``nncf_reported_sparsity``.
    """
    del fp32
    stats = ctrl.statistics()
    reported = float("nan")
    for name in ("magnitude_sparsity", "rb_sparsity"):
        algo = getattr(stats, name, None)
        if algo is not None:
            reported = float(algo.model_statistics.sparsity_level_for_layers)
    sparse_ctrl = next(  # a composite controller (sparsity + quantization) holds the sparsity one as a child
        c for c in (ctrl, *getattr(ctrl, "child_ctrls", ())) if hasattr(c, "sparsified_module_info")
    )
    zeros = total = 0
    with torch.no_grad():
        for info in sparse_ctrl.sparsified_module_info:
            op = info.operand
            logits = getattr(op, "_mask", None)
            mask = (logits > 0) if logits is not None else (op.binary_mask != 0)
            zeros += int((~mask).sum())
            total += mask.numel()
    return {"sparsity": zeros / max(total, 1), "nncf_reported_sparsity": reported}


def sparsity_now(ctrl: Any, library: str) -> float:
    """The measured sparsity of the sparsified layers now (masks as they act in eval), without changing anything."""
    if library == "netsculpt":
        stats = ctrl.statistics().as_dict()
        return float(next(v for k, v in stats.items() if k.endswith("sparsity"))["sparsity_level_for_layers"])
    return float(nncf_measure(ctrl, None)["sparsity"])
