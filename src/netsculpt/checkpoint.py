"""Reading a checkpoint file the safe way (``torch.load(weights_only=True)``) with errors a user can act on."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from netsculpt.errors import StateError

__all__ = ["read_checkpoint"]


def read_checkpoint(path: str | Path, where: str = "checkpoint") -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``; every failure is a located ``StateError``.

    Args:
        path: the file.
        where: how the user named it in the message (``--checkpoint``, ``resume``...).

    Raises:
        StateError: the file is missing, a directory, empty, truncated or damaged, or holds Python objects that
            ``weights_only=True`` refuses; the message names the file, its size and what to do.
    """
    p = Path(path)
    if not p.exists():
        raise StateError(f"{where}: file not found; got {p}")
    if p.is_dir():
        raise StateError(f"{where}: expected a checkpoint file; got the directory {p}")
    size = p.stat().st_size
    if size == 0:
        raise StateError(f"{where}: {p} is empty (0 bytes). The save was probably interrupted; use an earlier "
                         "checkpoint or save it again")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = " ".join(str(err).split())[:300] or type(err).__name__
        if "weights only" in detail.lower() or "weights_only" in detail:
            raise StateError(
                f"{where}: {p} holds Python objects that torch.load(weights_only=True) refuses to run ({detail}). "
                "Save plain data: torch.save({'state_dict': model.state_dict(), "
                "'compression_state': ctrl.get_compression_state()}, path)"
            ) from err
        raise StateError(f"{where}: {p} ({size} bytes) is damaged or not a PyTorch checkpoint ({detail})") from err
    except Exception as err:  # noqa: BLE001 - whatever torch raises on a damaged file (EOFError, KeyError...)
        detail = " ".join(str(err).split())[:300] or "the file ended early"
        raise StateError(
            f"{where}: {p} ({size} bytes) is truncated or not a PyTorch checkpoint: {type(err).__name__}: {detail}. "
            "Use an earlier checkpoint or save it again"
        ) from err
