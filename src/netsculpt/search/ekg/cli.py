"""``netsculpt compress CONFIG.json --ekg EKG.json``: EKG search, memory bank and fine-tuning in the CLI pipeline.

``prepare_ekg`` runs after ``create_compressed_model`` (the config must prune filters): it searches, builds the
bank on the training set, puts the searched network on the model, writes ``ekg.json`` (policy, history, times)
and ``ekg.png`` (trajectory) under the output directory, and returns the loader and criterion the pipeline's
own fine-tuning loop then uses: batches of two augmented views per image, ``CE + EKG KL``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from netsculpt.config.ekg import EKGConfig
from netsculpt.errors import ConfigError
from netsculpt.search.ekg.bank import MemoryBank, build_memory_bank
from netsculpt.search.ekg.finetune import EKGDistiller, IndexedViews, merge_views, shift_flip
from netsculpt.search.ekg.plots import plot_search
from netsculpt.search.ekg.result import EKGResult
from netsculpt.search.ekg.search import search

__all__ = ["EKGCriterion", "EKGRun", "EKGTrainLoader", "check_ekg", "load_ekg_config", "prepare_ekg", "shift_flip"]

logger = logging.getLogger(__name__)


class EKGTrainLoader:
    """Batches ``(B·V inputs, B·V labels)`` of ``IndexedViews``; tells the distiller each batch's bank rows."""

    def __init__(
        self,
        dataset: Any,
        distiller: EKGDistiller,
        batch_size: int,
        *,
        seed: int = 0,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = shift_flip,
    ) -> None:
        self.distiller = distiller
        self.loader = DataLoader(
            IndexedViews(dataset, augment),
            batch_size=batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
        )

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for views, y, idx in self.loader:
            self.distiller.set_indices(idx)
            yield merge_views(views, y)


class EKGCriterion:
    """``CE(output, target) + distiller.loss(output)`` (the fine-tuning loss of ALGORITHMS.md §4.4)."""

    def __init__(self, distiller: EKGDistiller) -> None:
        self.distiller = distiller

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target) + self.distiller.loss(output)


@dataclass
class EKGRun:
    """What the pipeline fine-tunes with, and what the search found."""

    result: EKGResult
    bank: MemoryBank
    loader: EKGTrainLoader
    criterion: EKGCriterion


def load_ekg_config(path: str | Path) -> EKGConfig:
    """Read and validate an EKG settings file (errors name the file and the key)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: EKG settings file not found") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{p}: not valid JSON: {err}") from None
    return EKGConfig.from_dict(data, path=f"{p}: ekg")


def prepare_ekg(
    path: str | Path,
    ctrl: Any,
    train_loader: Any,
    out: Path,
    *,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    seed: int = 0,
) -> EKGRun:
    """Search, build the bank, apply the searched network; return the fine-tuning loader and criterion."""
    cfg = load_ekg_config(path)
    say = echo or logger.info
    dataset = getattr(train_loader, "dataset", None)
    if dataset is None:
        raise ConfigError("--ekg: the training loader has no dataset to carve D_val from and to index the bank")
    t0 = time.perf_counter()
    result = search(ctrl, dataset, cfg, progress=progress)
    bank = build_memory_bank(ctrl, result, dataset, progress=progress)
    bank_s = time.perf_counter() - t0 - result.search_s
    result.apply(ctrl, bn_data=train_loader)
    data = {**result.as_dict(), "bank_s": bank_s}
    (out / "ekg.json").write_text(json.dumps(data, indent=1))
    plot_search(result, out / "ekg.png")
    say(
        f"EKG: {len(result.history) - 1} search steps, {result.evaluated} candidates in {result.search_s:.0f} s; "
        f"kept FLOPs {100 * result.flops_ratio:.1f} %; memory bank of {bank.num_teachers} teachers x {len(bank)} "
        f"images in {bank_s:.0f} s (written to {out / 'ekg.json'})"
    )
    distiller = EKGDistiller(bank, cfg.temperature).attach(ctrl.model)
    batch = int(getattr(train_loader, "batch_size", None) or 128)
    return EKGRun(result, bank, EKGTrainLoader(dataset, distiller, batch, seed=seed), EKGCriterion(distiller))


def check_ekg(path: str | Path, config: Any) -> EKGConfig:
    """Before any training: the settings file parses and the config prunes filters (located errors)."""
    from netsculpt.config.pruning import FilterPruningConfig

    cfg = load_ekg_config(path)
    if not any(getattr(a, "NAME", None) == FilterPruningConfig.NAME for a in getattr(config, "algorithms", ())):
        raise ConfigError(
            f"--ekg {path}: EKG searches the channels of filter_pruning, but the config has no "
            '"filter_pruning" algorithm; add {"algorithm": "filter_pruning"} to its compression list'
        )
    return cfg
