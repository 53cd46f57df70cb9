"""Deployment: BN folding and QDQ ONNX export checked in ONNX Runtime."""

from __future__ import annotations

from netsculpt.export.onnx import OnnxCheck, check_onnx, export_onnx

__all__ = ["OnnxCheck", "check_onnx", "export_onnx"]
