"""FP32 ONNX export of the baseline, for the size and latency comparison."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netsculpt.errors import ExportError

__all__ = ["export_fp32_onnx"]

OPSET = 17


def export_fp32_onnx(model: nn.Module, example_inputs: tuple[Any, ...], path: Path) -> Path:
    """Export ``model`` in eval mode with the TorchScript exporter (opset 17, dynamic batch).

    In eval mode the exporter's constant folding folds BatchNorm into the preceding convolutions, so the
    FP32 file is the fair floating-point baseline for the compressed one.

    Raises:
        ExportError: the exporter failed.
    """
    model = model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                tuple(example_inputs),
                str(path),
                dynamo=False,
                opset_version=OPSET,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                do_constant_folding=True,
            )
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise ExportError(f"FP32 ONNX export of {type(model).__name__} failed: {type(err).__name__}: {err}") from err
    return path
