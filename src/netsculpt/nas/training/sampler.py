"""Subnet sampling seeded by ``(seed, global step, slot)``: every process draws the same subnets.

Nothing rank-dependent enters: the random generator of step ``g``'s ``j``-th slot is a fresh ``random.Random``
seeded from the text ``"{seed}:{g}:{j}"`` (string seeds are hashed with SHA-512 by Python, independent of
``PYTHONHASHSEED``), so a resumed run or another rank replays the same sequence without carrying generator state.

OFA stages restrict sampling to the enabled dimensions and NNCF's indicators (:class:`Restriction`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from netsculpt.errors import StateError
from netsculpt.nas.config import SubnetConfig, config_to_json
from netsculpt.nas.params import DIMS
from netsculpt.nas.supernet import ElasticSupernet

__all__ = ["Restriction", "SubnetSampler", "step_rng"]

_REDRAWS = 8  # attempts to make the random members of a sandwich distinct


def step_rng(seed: int, step: int, slot: int) -> random.Random:
    """The generator of one sampling slot of one optimizer step."""
    return random.Random(f"netsculpt.nas:{seed}:{step}:{slot}")


@dataclass(frozen=True)
class Restriction:
    """What an OFA stage may vary: ``dims`` (others stay at their maximum), widths among each group's
    ``width_indicator`` largest choices and depth under ``depth_indicator`` (-1: no limit; see ``StageParams``)."""

    dims: tuple[str, ...] = DIMS
    width_indicator: int = -1
    depth_indicator: int = -1


class SubnetSampler:
    """Draws subnet configs of ``supernet`` for a global step; unrestricted (``restriction`` None) it uses the
    supernet's own uniform ``get_random_config`` and its minimum config."""

    def __init__(self, supernet: ElasticSupernet, seed: int = 0, restriction: Restriction | None = None) -> None:
        self.supernet = supernet
        self.seed = int(seed)
        self.restriction = restriction
        space = supernet.search_space
        groups: dict[str, list[str]] = {}
        for block in space.depth:  # runs of blocks: the ones sharing a parent module, in model order
            groups.setdefault(block.rpartition(".")[0], []).append(block)
        self._depth_groups = list(groups.values())

    # ---- configs -------------------------------------------------------------------------------------
    def maximum_config(self) -> SubnetConfig:
        """The full model."""
        return self.supernet.get_maximum_config()

    def minimum_config(self) -> SubnetConfig:
        """The smallest subnet the restriction allows."""
        r = self.restriction
        if r is None:
            return self.supernet.get_minimum_config()
        s = self.supernet.search_space
        return s.validate(
            {
                "width": {g: _allowed(c, r.width_indicator)[-1] for g, c in s.width.items()}
                if "width" in r.dims
                else {},
                "kernel": {n: c[-1] for n, c in s.kernel.items()} if "kernel" in r.dims else {},
                "depth": [b for grp in self._depth_groups for b in _tail(grp, r.depth_indicator)]
                if "depth" in r.dims
                else [],
            }
        )

    def random_config(self, step: int, slot: int = 0) -> SubnetConfig:
        """The subnet of slot ``slot`` of step ``step`` (the same in every process and after a resume)."""
        return self._draw(step_rng(self.seed, step, slot))

    def sandwich(self, step: int, num_random: int) -> list[SubnetConfig]:
        """Largest, smallest and ``num_random`` random subnets; random ones that repeat an earlier member are redrawn
        (a few times, deterministically) so the step trains distinct subnets where the space allows."""
        out = [self.maximum_config(), self.minimum_config()]
        seen = {config_to_json(c) for c in out}
        for j in range(num_random):
            rng = step_rng(self.seed, step, j + 2)
            cfg = self._draw(rng)
            for _ in range(_REDRAWS):
                if config_to_json(cfg) not in seen:
                    break
                cfg = self._draw(rng)
            seen.add(config_to_json(cfg))
            out.append(cfg)
        return out

    def _draw(self, rng: random.Random) -> SubnetConfig:
        r = self.restriction
        if r is None:
            return self.supernet.get_random_config(rng)
        s = self.supernet.search_space
        width = {g: rng.choice(_allowed(c, r.width_indicator)) for g, c in s.width.items()}
        kernel = {n: rng.choice(c) for n, c in s.kernel.items()}
        drawn = {b for b in s.depth if rng.random() < 0.5}  # NNCF: one bit per block, then its progressive rule
        depth = [b for grp in self._depth_groups for b in _progressive(grp, drawn, r.depth_indicator)]
        return s.validate(
            {
                "width": width if "width" in r.dims else {},
                "kernel": kernel if "kernel" in r.dims else {},
                "depth": depth if "depth" in r.dims else [],
            }
        )

    # ---- state ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain data (the generators are derived from the seed and the step, so the seed is all there is)."""
        r = self.restriction
        return {
            "seed": self.seed,
            "restriction": None
            if r is None
            else {"dims": list(r.dims), "width_indicator": r.width_indicator, "depth_indicator": r.depth_indicator},
        }

    def load_state_dict(self, state: dict[str, Any], where: str = "trainer_state.sampler") -> None:
        """Restore ``state_dict()``'s output."""
        seed = state.get("seed") if isinstance(state, dict) else None
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise StateError(f"{where}.seed: must be an integer; got {seed!r}")
        r = state.get("restriction")
        if r is not None and not (isinstance(r, dict) and {"dims", "width_indicator", "depth_indicator"} <= set(r)):
            raise StateError(f"{where}.restriction: must be null or hold dims, width_indicator, depth_indicator")
        self.seed = seed
        self.restriction = (
            None if r is None else Restriction(tuple(r["dims"]), int(r["width_indicator"]), int(r["depth_indicator"]))
        )


def _allowed(choices: list[int], indicator: int) -> list[int]:
    """The ``indicator`` largest choices (-1: all)."""
    return choices if indicator == -1 else choices[: max(1, indicator)]


def _tail(group: list[str], indicator: int) -> list[str]:
    """The blocks of a run that may be skipped: its last ``indicator`` (-1: all)."""
    return group if indicator == -1 else group[max(0, len(group) - indicator) :]


def _progressive(group: list[str], drawn: set[str], indicator: int) -> list[str]:
    """Skipped blocks of one run: a drawn block in the allowed tail stays skipped only if every later block of the
    run is skipped too (NNCF's progressive-shrinking rule)."""
    allowed = _tail(group, indicator)
    keep: list[str] = []
    for i, b in enumerate(group):
        if b in drawn and b in allowed and all(later in drawn for later in group[i + 1 :]):
            keep.append(b)
    return keep
