"""EKG: ensemble-knowledge-guided sub-network search and memory-bank fine-tuning (Lee & Song, ECCV 2022).

Python API (docs/EKG.md)::

    result = ekg.search(ctrl, train_set, {"pruning_flops_target": 0.5})    # filter_pruning in ctrl's stack
    bank = ekg.build_memory_bank(ctrl, result, train_set)                  # K teachers' logits, float16
    result.apply(ctrl, bn_data=train_loader)                               # the searched network on the model
    config = result.to_config(base_config, ctrl)                           # reproduces it (keep_per_group)
    distiller = ekg.EKGDistiller(bank, temperature=4.0).attach(model)      # loss = CE + distiller.loss()

Pieces: ``search`` (greedy gate narrowing scored by CE + ensemble CE on D_val, candidates on the platform's
executors), ``EKGResult`` / ``HistoryEntry`` (policy, interim sub-networks, losses), ``build_memory_bank`` /
``MemoryBank`` (float16, top-k, memory-mapped on disk), ``EKGDistiller`` / ``IndexedViews`` / ``merge_views``
(the fine-tuning term in the user's loop), ``plot_search``, and the arithmetic (``trimmed_otsu``,
``select_teachers``, ``ekg_kl``, ``RunningEnsemble``...).
"""

from __future__ import annotations

from netsculpt.config.ekg import EKGConfig
from netsculpt.search.ekg._core import (
    RunningEnsemble,
    ahead_mask,
    ekg_kl,
    kl_tau,
    removal_cost,
    select_teachers,
    split_per_class,
    step_size,
    trimmed_otsu,
)
from netsculpt.search.ekg.bank import MemoryBank, build_memory_bank
from netsculpt.search.ekg.finetune import EKGDistiller, IndexedViews, merge_views, shift_flip
from netsculpt.search.ekg.plots import plot_search
from netsculpt.search.ekg.result import EKGResult, HistoryEntry
from netsculpt.search.ekg.search import search

__all__ = [
    "EKGConfig",
    "EKGDistiller",
    "EKGResult",
    "HistoryEntry",
    "IndexedViews",
    "MemoryBank",
    "RunningEnsemble",
    "ahead_mask",
    "build_memory_bank",
    "ekg_kl",
    "kl_tau",
    "merge_views",
    "plot_search",
    "removal_cost",
    "search",
    "select_teachers",
    "shift_flip",
    "split_per_class",
    "step_size",
    "trimmed_otsu",
]
