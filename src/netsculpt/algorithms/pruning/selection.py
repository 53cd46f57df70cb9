"""Which units to prune at a level, and what that does to FLOPs and parameters (no tensors touched)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from netsculpt.graph.channels import FILTER_ROLES, LayerSpec, PruningGraph

__all__ = ["Cost", "RoundMode", "Selector", "allowed_kept", "kept_count", "kept_for_ratio", "nearest_count"]

RoundMode = Literal["nearest", "up"]


def kept_count(n: int, rate: float, round_to: int = 1, round_mode: RoundMode = "nearest") -> int:
    """Units kept of ``n`` at ``rate``: ``int(n·rate)`` pruned; with ``round_to``, a multiple of it (never 0,
    never more than ``n``), the nearest one or, with ``round_mode="up"``, the next one up; groups narrower than
    ``round_to`` are left whole.

    NNCF 2.19's torch filter pruning always rounds the kept count up to a multiple of 8 (not configurable):
    ``round_to=8, round_mode="up"`` reproduces its counts, so the same nominal level removes as many filters
    as there (ResNet-20 at 0.1: none).

    Example:
        >>> kept_count(64, 0.3, 8), kept_count(64, 0.3, 8, "up"), kept_count(20, 0.1, 8, "up")
        (48, 48, 20)
    """
    if rate <= 0:
        return n
    kept = n - int(n * rate + 1e-9)
    if round_to > 1:
        if n < round_to:
            return n
        blocks = -(-kept // round_to) if round_mode == "up" else round(kept / round_to)
        kept = max(round_to, blocks * round_to)
    return max(1, min(n, kept))


def allowed_kept(n: int, round_to: int = 1) -> tuple[int, ...]:
    """Kept unit counts a group of ``n`` units can have: multiples of ``round_to`` (and ``n`` itself), at least 1.

    Example:
        >>> allowed_kept(20, 8)
        (8, 16, 20)
    """
    if n <= 0:
        return ()
    step = max(1, round_to)
    if n < step:
        return (n,)
    return tuple(sorted({*range(step, n + 1, step), n}))


def nearest_count(options: Sequence[int], want: float) -> int:
    """The value of ascending ``options`` nearest to ``want`` (ties go to the larger)."""
    i = bisect.bisect_left(options, want)
    if i == 0:
        return options[0]
    if i == len(options):
        return options[-1]
    lo, hi = options[i - 1], options[i]
    return lo if want - lo < hi - want else hi


def kept_for_ratio(n: int, keep: float, round_to: int = 1) -> int:
    """The allowed kept count nearest to ``keep · n`` (ties go to the larger count), for a keep ratio in (0, 1]."""
    return nearest_count(allowed_kept(n, round_to), keep * n)


@dataclass(frozen=True)
class Cost:
    """Per-sample MACs and parameters of a selection, next to the unpruned model's."""

    macs: int
    base_macs: int
    params: int
    base_params: int

    @property
    def flops_removed(self) -> float:
        """Fraction of FLOPs removed."""
        return 1.0 - self.macs / self.base_macs if self.base_macs else 0.0


class Selector:
    """Ranks units (per group, or globally with ``all_weights``) and prices selections."""

    def __init__(
        self,
        pg: PruningGraph,
        node_macs: Sequence[tuple[str, int]],
        params: int,
        param_numel: dict[str, int],
        *,
        round_to: int = 1,
        round_mode: RoundMode = "nearest",
        all_weights: bool = False,
    ) -> None:
        self.pg = pg
        self.node_macs = list(node_macs)  # (layer name or "", per-sample MACs) of every counted op
        self.base_params = params
        self.param_numel = param_numel
        self.round_to = round_to
        self.round_mode: RoundMode = round_mode
        self.all_weights = all_weights
        self.order: list[list[int]] = [list(range(len(g.units))) for g in pg.groups]
        self.scores: list[torch.Tensor] = [torch.zeros(len(g.units)) for g in pg.groups]

    def set_scores(self, scores: list[torch.Tensor]) -> None:
        """Unit scores per group (smallest pruned first); ties keep the lower position."""
        self.scores = scores
        self.order = [torch.sort(s, stable=True).indices.tolist() for s in scores]

    def counts(self, rate: float) -> list[int]:
        """Units pruned per group at ``rate``."""
        if not self.all_weights:
            return [len(o) - kept_count(len(o), rate, self.round_to, self.round_mode) for o in self.order]
        flat = sorted(
            (float(s), gi, rank)
            for gi, (o, sc) in enumerate(zip(self.order, self.scores, strict=True))
            for rank, s in enumerate(sc[o].tolist())
        )
        budget = int(len(flat) * rate + 1e-9)
        counts = [0] * len(self.order)
        for _, gi, _ in flat:  # lowest scores first; every group keeps at least one unit
            if budget <= 0:
                break
            if counts[gi] < len(self.order[gi]) - 1:
                counts[gi] += 1
                budget -= 1
        out = []
        for gi, o in enumerate(self.order):
            n = len(o)
            out.append(n - kept_count(n, counts[gi] / n if n else 0.0, self.round_to, self.round_mode))
        return out

    def select(self, rate: float) -> list[list[int]]:
        """Pruned unit indices per group at ``rate``."""
        return [o[:k] for o, k in zip(self.order, self.counts(rate), strict=True)]

    def removed(self, pruned: list[list[int]]) -> tuple[dict[str, int], dict[str, int]]:
        """Positions removed per layer on the output and input axes."""
        out: dict[str, int] = {}
        inp: dict[str, int] = {}
        for g, idx in zip(self.pg.groups, pruned, strict=True):
            for u in idx:
                unit = g.units[u]
                for name, pos in unit.out:
                    out[name] = out.get(name, 0) + len(pos)
                for name, pos in unit.inp:
                    inp[name] = inp.get(name, 0) + len(pos)
        return out, inp

    def _fractions(self, spec: LayerSpec, out: dict[str, int], inp: dict[str, int]) -> tuple[float, float]:
        fo = 1.0 - out.get(spec.name, 0) / spec.out_size if spec.out_size else 1.0
        fi = 1.0
        if spec.role in FILTER_ROLES and not spec.depthwise and spec.in_size:
            fi = 1.0 - inp.get(spec.name, 0) / spec.in_size
        return fo, fi

    def cost(self, pruned: list[list[int]]) -> Cost:
        """MACs and parameters after removing ``pruned``."""
        out, inp = self.removed(pruned)
        frac = {n: self._fractions(s, out, inp) for n, s in self.pg.layers.items()}
        base = sum(m for _, m in self.node_macs)
        macs = 0.0
        for layer, m in self.node_macs:
            fo, fi = frac.get(layer, (1.0, 1.0))
            macs += m * fo * fi
        params = self.base_params
        for name, (fo, fi) in frac.items():
            w = self.param_numel.get(f"{name}.weight", 0)
            b = self.param_numel.get(f"{name}.bias", 0)
            params -= w + b - round(w * fo * fi) - round(b * fo)
        return Cost(int(round(macs)), base, int(params), self.base_params)

    def _bracket(self, target: float) -> tuple[float, float]:
        """Rates just below and at the smallest uniform rate removing ``target`` of the FLOPs."""
        lo, hi = 0.0, 1.0 - 1e-6
        if self.cost(self.select(hi)).flops_removed < target:
            return hi, hi
        for _ in range(40):
            mid = (lo + hi) / 2
            if self.cost(self.select(mid)).flops_removed >= target:
                hi = mid
            else:
                lo = mid
            if math.isclose(lo, hi, abs_tol=1e-7):
                break
        return lo, hi

    def select_flops(self, target: float) -> list[list[int]]:
        """Pruned units per group removing at least ``target`` of the FLOPs, overshooting by one channel step
        at most: the uniform rate just below the target, plus the least important next steps one at a time."""
        if target <= 0:
            return [[] for _ in self.order]
        lo, hi = self._bracket(target)
        counts, top = self.counts(lo), self.counts(hi)
        step = max(1, self.round_to)
        blocks = []
        for gi, (a, b) in enumerate(zip(counts, top, strict=True)):
            for start in range(a, b, step):
                idx = self.order[gi][start : min(b, start + step)]
                blocks.append((float(self.scores[gi][idx].mean()), gi, start, len(idx)))
        blocks.sort()
        for _, gi, _, size in blocks:
            pruned = [o[:k] for o, k in zip(self.order, counts, strict=True)]
            if self.cost(pruned).flops_removed >= target:
                return pruned
            counts[gi] += size
        return [o[:k] for o, k in zip(self.order, counts, strict=True)]
