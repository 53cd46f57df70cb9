"""The machine a benchmark ran on: CPU model, the SIMD flags int8 speed depends on, threads and load."""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Any

import torch

__all__ = ["machine_info"]

_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def machine_info(threads: int) -> dict[str, Any]:
    """``lscpu`` model name, SIMD flags, cores, torch threads, torch version and the 1-min load average now."""
    model, flags = "unknown", set()
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False, timeout=10).stdout
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
            elif key.strip() == "Flags":
                flags = set(value.split())
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": model,
        "flags": [f for f in _FLAGS if f in flags],
        "cores": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "host": platform.node(),
        "load_1min": os.getloadavg()[0],
    }
