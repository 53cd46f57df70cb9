"""EKG's memory bank: the logits of K interim sub-networks on every training image, computed once.

Storage is ``[N, K, C]`` in float16 by default (``bank_dtype``); with ``top_k`` only the k largest logits per
teacher and image are kept (values and class indices), the others read back as the k-th largest value (an upper
bound: the tail is flattened, never inflated above the stored logits). With ``bank_path`` the arrays live in
memory-mapped ``.npy`` files (``<path>``, ``<path>.idx.npy`` for top-k, ``<path>.json`` for the metadata), so a
bank larger than RAM works; ``MemoryBank.load`` maps them again.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from netsculpt.errors import ConfigError
from netsculpt.search.ekg._net import forward_logits, subnet
from netsculpt.search.ekg.result import EKGResult
from netsculpt.search.evaluate import Snapshot

__all__ = ["MemoryBank", "build_memory_bank"]

logger = logging.getLogger(__name__)


@dataclass
class MemoryBank:
    """Teacher logits per training image: ``values[N, K, C]`` (or ``[N, K, k]`` with ``indices`` for top-k).

    Attributes:
        values: logits (float16/float32 numpy array, possibly memory-mapped).
        indices: class index of each stored logit (top-k banks), else ``None``.
        num_classes: C.
        teacher_steps: the search step of each teacher (teacher 0 has the lowest loss).
        teacher_losses: their D_val losses.
    """

    values: np.ndarray
    indices: np.ndarray | None
    num_classes: int
    teacher_steps: list[int]
    teacher_losses: list[float]

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def num_teachers(self) -> int:
        """K."""
        return int(self.values.shape[1])

    def lookup(self, index: torch.Tensor | np.ndarray | list[int]) -> torch.Tensor:
        """Teacher logits ``[B, K, C]`` (float32) of the samples ``index``."""
        idx = np.asarray(torch.as_tensor(index).cpu().numpy(), dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ConfigError(
                f"MemoryBank.lookup: sample indices must be in [0, {len(self)}); got {idx.min()}..{idx.max()}"
            )
        vals = torch.from_numpy(np.asarray(self.values[idx], dtype=np.float32))
        if self.indices is None:
            return vals
        full = vals[..., -1:].expand(*vals.shape[:-1], self.num_classes).clone()
        full.scatter_(-1, torch.from_numpy(np.asarray(self.indices[idx], dtype=np.int64)), vals)
        return full

    def _meta(self) -> dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "teacher_steps": self.teacher_steps,
            "teacher_losses": self.teacher_losses,
            "top_k": self.indices is not None,
            "shape": list(self.values.shape),
            "dtype": str(self.values.dtype),
        }

    def save(self, path: str | Path) -> None:
        """Write ``<path>`` (values, .npy), ``<path>.idx.npy`` (top-k) and ``<path>.json``."""
        p = Path(path)
        np.save(p, np.asarray(self.values), allow_pickle=False)
        if self.indices is not None:
            np.save(Path(f"{p}.idx.npy"), np.asarray(self.indices), allow_pickle=False)
        Path(f"{p}.json").write_text(json.dumps(self._meta()))
        if p.suffix != ".npy" and Path(f"{p}.npy").exists():  # np.save appends .npy: keep the name asked for
            Path(f"{p}.npy").replace(p)

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = True) -> MemoryBank:
        """Read a saved bank (memory-mapped by default)."""
        p = Path(path)
        meta_path = Path(f"{p}.json")
        if not p.exists() or not meta_path.exists():
            raise ConfigError(f"MemoryBank.load: {p} (and {meta_path}) not found; write it with MemoryBank.save")
        meta = json.loads(meta_path.read_text())
        mode: Literal["r"] | None = "r" if mmap else None
        values = np.load(p, mmap_mode=mode, allow_pickle=False)
        indices = np.load(Path(f"{p}.idx.npy"), mmap_mode=mode, allow_pickle=False) if meta["top_k"] else None
        return cls(
            values,
            indices,
            int(meta["num_classes"]),
            list(meta["teacher_steps"]),
            [float(v) for v in meta["teacher_losses"]],
        )


def _alloc(shape: tuple[int, ...], dtype: Any, path: Path | None) -> np.ndarray:
    if path is None:
        return np.zeros(shape, dtype=dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)


def build_memory_bank(
    ctrl: Any,
    result: EKGResult,
    train_set: Dataset[Any],
    *,
    batch_size: int = 256,
    teachers: list[int] | None = None,
    progress: bool = True,
) -> MemoryBank:
    """Logits of the K teachers (``result.teachers()``) on every item of ``train_set`` (in index order, no
    augmentation, BN in training mode), on the search's weights; the model is restored afterwards.

    Raises:
        ConfigError: ``teachers`` names no history entry.
    """
    cfg = result.config
    chosen = result.teachers() if teachers is None else list(teachers)
    bad = [t for t in chosen if not 0 <= t < len(result.history)]
    if bad or not chosen:
        raise ConfigError(
            f"build_memory_bank(teachers=...): indices into the {len(result.history)}-entry history "
            f"needed; got {chosen}"
        )
    t0 = time.perf_counter()
    n = len(train_set)  # type: ignore[arg-type]
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=False)
    path = Path(cfg.bank_path) if cfg.bank_path else None
    dtype = np.float16 if cfg.bank_dtype == "float16" else np.float32
    values: np.ndarray | None = None
    indices: np.ndarray | None = None
    snap = Snapshot(ctrl)
    bar = tqdm(
        total=len(chosen) * len(loader),
        desc="EKG memory bank",
        disable=None if progress else True,
        file=sys.stderr,
        leave=False,
    )
    try:
        live = ctrl.model.state_dict()
        for k, v in result.weights.items():
            live[k].copy_(v)
        for j, t in enumerate(chosen):
            start = 0
            with subnet(ctrl, result.history[t].pruned):
                for x, y in loader:
                    logits = forward_logits(ctrl.model, [(x, y)])
                    if values is None:
                        c = logits.shape[1]
                        width = c if cfg.top_k is None else min(cfg.top_k, c)
                        values = _alloc((n, len(chosen), width), dtype, path)
                        if cfg.top_k is not None:
                            indices = _alloc(
                                (n, len(chosen), width), np.int32, None if path is None else Path(f"{path}.idx.npy")
                            )
                    if cfg.top_k is None:
                        values[start : start + len(x), j] = logits.numpy().astype(dtype)
                    else:
                        top = torch.topk(logits, values.shape[2], dim=1)
                        values[start : start + len(x), j] = top.values.numpy().astype(dtype)
                        assert indices is not None
                        indices[start : start + len(x), j] = top.indices.numpy().astype(np.int32)
                    start += len(x)
                    bar.update(1)
    finally:
        bar.close()
        snap.restore()
    assert values is not None
    if isinstance(values, np.memmap):
        values.flush()
    bank = MemoryBank(
        values,
        indices,
        int(logits.shape[1]),
        [result.history[t].step for t in chosen],
        [result.history[t].loss for t in chosen],
    )
    if path is not None:
        Path(f"{path}.json").write_text(json.dumps(bank._meta()))
    logger.info("ekg: memory bank of %d teachers x %d images built in %.1f s", len(chosen), n, time.perf_counter() - t0)
    return bank
