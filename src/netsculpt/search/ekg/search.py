"""EKG's sub-network search (Lee & Song, ECCV 2022; ALGORITHMS.md §4.3) as a client of ``netsculpt.search``.

Greedy: every step ranks each gate's channels by first-order Taylor importance against labels plus the running
ensemble of the sub-networks chosen so far, keeps the gates whose next removal is cheap (trimmed Otsu), scores
one candidate per kept gate on the platform's executors (``EKGTask``) and commits the best. The weights never
change after the one-epoch warm-up; every sub-network is masks on them (kernels rescaled to their full norm).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from netsculpt.config.ekg import EKGConfig
from netsculpt.errors import ConfigError
from netsculpt.search.batch import evaluate_many
from netsculpt.search.cost import cost
from netsculpt.search.ekg._core import RunningEnsemble, removal_cost, split_per_class, step_size, trimmed_otsu
from netsculpt.search.ekg._net import Batch, forward_logits, gates_of, subnet, taylor_scores, the_part
from netsculpt.search.ekg._task import EKGTask, val_losses
from netsculpt.search.ekg.result import EKGResult, HistoryEntry
from netsculpt.search.evaluate import cost_space
from netsculpt.search.executors import SearchExecutor, SerialExecutor
from netsculpt.search.log import ResultLog
from netsculpt.search.policy import Policy
from netsculpt.search.space import SearchSpace
from netsculpt.train.hooks import _logits

__all__ = ["labels_of", "search"]

logger = logging.getLogger(__name__)


def labels_of(dataset: Dataset[Any]) -> torch.Tensor:
    """Every label of a ``(input, label)`` dataset (read from a ``TensorDataset`` directly, else item by item)."""
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, tuple) and len(tensors) >= 2:
        return torch.as_tensor(tensors[1]).long()
    n = len(dataset)  # type: ignore[arg-type]
    return torch.tensor([int(dataset[i][1]) for i in range(n)], dtype=torch.long)


def _batches(dataset: Dataset[Any], idx: Sequence[int], batch_size: int) -> list[Batch]:
    loader = DataLoader(Subset(dataset, list(idx)), batch_size=batch_size, shuffle=False)
    return [(x, y) for x, y in loader]


def _warmup(ctrl: Any, dataset: Dataset[Any], idx: Sequence[int], cfg: EKGConfig) -> None:
    """``warmup_epochs`` of SGD (Nesterov 0.9, ``warmup_lr``) on D_subset, batch 128."""
    model = ctrl.model
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    loader = DataLoader(
        Subset(dataset, list(idx)), batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed)
    )
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.warmup_lr, momentum=0.9, nesterov=True)
    model.train()
    for _ in range(cfg.warmup_epochs):
        for x, y in loader:
            loss = F.cross_entropy(_logits(model(x.to(dev))), y.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    for p in params:
        p.grad = None


def _policy(space: SearchSpace, kept: Sequence[int]) -> Policy:
    return Policy({g.name: k / g.units for g, k in zip(space.groups, kept, strict=True)}, {})


def _candidate(space: SearchSpace, kept: list[int], g: int, delta: float, base: int, target: float) -> list[int] | None:
    """Kept counts after gate ``g``'s step ``delta``, or the fine step landing on the target; None: exhausted."""
    gs = space.groups[g]
    below = [k for k in gs.kept if k < kept[g]]
    if not below:
        return None
    want = math.ceil(gs.units * (kept[g] / gs.units - delta) - 1e-9)
    new = max([k for k in below if k <= max(want, below[0])] or [below[0]])
    trial = list(kept)
    trial[g] = new
    if cost(space, _policy(space, trial)).macs / base < 1.0 - target:
        for k in sorted((k for k in below if k > new), reverse=True):  # fine search: largest on or past target
            trial[g] = k
            if cost(space, _policy(space, trial)).macs / base <= 1.0 - target:
                return trial
        trial[g] = new
    return trial


def search(
    ctrl: Any,
    train_set: Dataset[Any],
    config: EKGConfig | dict[str, Any] | None = None,
    *,
    executor: SearchExecutor | None = None,
    log: ResultLog | None = None,
    progress: bool = True,
) -> EKGResult:
    """Run EKG's search on a controller with ``filter_pruning``; the model keeps its warm-up weights, full width.

    Args:
        ctrl: ``create_compressed_model``'s controller (filter pruning in its stack).
        train_set: the training set as ``(input, label)`` items, un-augmented; D_val (last ``val_per_class`` per
            class) and D_subset (first ``subset_per_class``) are carved from it. The test set is never used.
        config: ``EKGConfig`` or its JSON form (validated, errors located under ``ekg.``).
        executor: where candidates are scored (default ``SerialExecutor``; ``ProcessPoolExecutor``/``DaskExecutor``).
        log: result log for candidate scores (a killed search restarted with the same log re-scores only what
            is missing); default in memory.
        progress: a progress bar over the FLOPs removed so far.

    Returns:
        The searched policy, the history of interim sub-networks with their losses, and the warm-up weights
        (``EKGResult.apply`` puts the searched network on the model).

    Raises:
        ConfigError: no filter pruning, a bad config, or a dataset without ``(input, label)`` items.
    """
    cfg = config if isinstance(config, EKGConfig) else EKGConfig.from_dict(config or {})
    the_part(ctrl)
    t0 = time.perf_counter()
    try:
        labels = labels_of(train_set)
    except (TypeError, ValueError, IndexError) as err:
        raise ConfigError(f"ekg.search(train_set=...): items must be (input, label) pairs ({err})") from err
    subset_idx, val_idx = split_per_class(labels, cfg.subset_per_class, cfg.val_per_class)
    if cfg.warmup_epochs > 0 and subset_idx:
        _warmup(ctrl, train_set, subset_idx, cfg)
    warmup_s = time.perf_counter() - t0
    state = _Search(ctrl, cfg, _batches(train_set, val_idx, cfg.batch_size))
    ex = executor if executor is not None else SerialExecutor()
    store = log if log is not None else ResultLog()
    bar = tqdm(total=round(100 * cfg.pruning_flops_target, 1), desc="EKG search", unit="% FLOPs",
               disable=None if progress else True, file=sys.stderr, leave=False)  # fmt: skip
    try:
        while state.ratio > 1.0 - cfg.pruning_flops_target + 1e-12 and (
            cfg.max_steps is None or len(state.history) <= cfg.max_steps
        ):
            before = state.ratio
            if not state.step(ex, store):
                break
            bar.update(round(100 * (before - state.ratio), 1))
    finally:
        bar.close()
    return EKGResult(
        policy=_policy(state.space, state.kept), pruned=state.pruned, history=state.history, weights=state.weights,
        config=cfg, search_s=time.perf_counter() - t0, warmup_s=warmup_s, evaluated=state.evaluated,
        base_macs=state.base, ensemble=state.ensemble.targets, val_indices=list(val_idx),
    )  # fmt: skip


class _Search:
    """The search's state between steps: kept counts, exact pruned units, ensemble, history."""

    def __init__(self, ctrl: Any, cfg: EKGConfig, val: list[Batch]) -> None:
        self.ctrl, self.cfg, self.val = ctrl, cfg, val
        self.part = the_part(ctrl)
        self.weights = {k: v.detach().clone() for k, v in ctrl.model.state_dict().items()}
        self.space = cost_space(ctrl)
        self.gates = gates_of(self.part)
        self.steps = [step_size(g.channels, g.num_call, cfg.search_step) for g in self.gates]
        self.kept = [g.units for g in self.space.groups]
        self.base = cost(self.space, _policy(self.space, self.kept)).macs
        self.pruned: list[list[int]] = [[] for _ in self.gates]
        self.ratio, self.evaluated = 1.0, 0
        with subnet(ctrl, self.pruned):
            logits = forward_logits(ctrl.model, val)
        self.ensemble = RunningEnsemble(logits)
        first = val_losses(logits, torch.cat([y for _, y in val]), self.ensemble.targets)
        keep = _policy(self.space, self.kept).to_dict()["keep"]
        score = first["ce"] + first["ensemble_ce"]
        self.history = [HistoryEntry(0, keep, self.pruned, first["ce"], score, first["top1"], 1.0, None, 0)]

    def candidates(self, scores: list[torch.Tensor]) -> tuple[dict[int, list[int]], int]:
        """Kept counts per candidate gate (trimmed-Otsu pre-filter), and how many gates could still narrow."""
        costs = {}
        for g, (gs, s) in enumerate(zip(self.space.groups, scores, strict=True)):
            if any(k < self.kept[g] for k in gs.kept):
                costs[g] = removal_cost(s, self.kept[g], self.steps[g])
        if not costs:
            return {}, 0
        threshold = trimmed_otsu(list(costs.values()), self.cfg.otsu_trim)
        chosen = [g for g, c in costs.items() if c <= threshold] or list(costs)
        target = self.cfg.pruning_flops_target
        trials = {}
        for g in chosen:
            t = _candidate(self.space, self.kept, g, self.steps[g], self.base, target)
            if t is not None:
                trials[g] = t
        return trials, len(costs)

    def step(self, ex: SearchExecutor, store: ResultLog) -> bool:
        """Score the candidates of one step on ``ex`` and commit the best; False when no gate can narrow."""
        with subnet(self.ctrl, self.pruned):
            scores = taylor_scores(self.ctrl, self.val, self.ensemble.targets)
        trials, active = self.candidates(scores)
        if not trials:
            logger.warning("ekg: every gate is at its minimum width; FLOPs ratio %.4f stays above the target",
                           self.ratio)  # fmt: skip
            return False
        n = len(self.history)
        task = EKGTask(self.ctrl, self.val, self.ensemble.targets, scores, step=n, seed=self.cfg.seed)
        results = evaluate_many(task, [_policy(self.space, t) for t in trials.values()], executor=ex, log=store,
                                progress=False)  # fmt: skip
        self.evaluated += len(results)
        best = max(range(len(results)), key=lambda i: (results[i].metric, -i))
        g = list(trials)[best]
        self.kept = trials[g]
        counts = [gs.units - k for gs, k in zip(self.space.groups, self.kept, strict=True)]
        with subnet(self.ctrl, counts=counts, scores=scores):
            self.pruned = [list(p) for p in self.part.selection_state()["pruned"]]
            logits = forward_logits(self.ctrl.model, self.val)
        self.ensemble.add(logits)
        self.ratio = cost(self.space, _policy(self.space, self.kept)).macs / self.base
        r, score = results[best].extra, -results[best].metric
        keep = _policy(self.space, self.kept).to_dict()["keep"]
        name = self.gates[g].name
        self.history.append(HistoryEntry(n, keep, self.pruned, float(r["ce"]), score, float(r["top1"]), self.ratio,
                                         name, len(results)))  # fmt: skip
        logger.info("ekg: step %d: gate %s kept %d/%d, FLOPs %.4f, val CE %.4f, J %.4f (%d candidates of %d gates)",
                    n, name, self.kept[g], self.gates[g].channels, self.ratio, r["ce"], score, len(results),
                    active)  # fmt: skip
        return True
