"""The append-only result log: one JSON line per evaluated policy, keyed by (model fingerprint, policy).

A killed search restarted with the same log path skips every policy already measured for the same model and
settings; two searches (or budgets) over the same model share labels. Lines are flushed as they are written,
and a torn last line (the process died mid-write) is ignored with a warning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from netsculpt.rollback import fingerprint
from netsculpt.search.evaluate import EvalResult
from netsculpt.search.policy import Policy

__all__ = ["ResultLog", "fingerprint"]

logger = logging.getLogger(__name__)


class ResultLog:
    """JSON-lines file of ``EvalResult`` records; ``None`` path keeps them in memory only."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._results: dict[tuple[str, str], EvalResult] = {}
        if self.path is not None and self.path.exists():
            self._load(self.path)

    def _load(self, path: Path) -> None:
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                result = EvalResult.from_dict(rec["result"])
                self._results[(str(rec["model"]), str(rec["policy_key"]))] = result
            except (ValueError, KeyError, TypeError) as err:
                if n == len(lines):  # the process died mid-write: drop the fragment so appends stay parseable
                    logger.warning("search log %s: dropping a torn last line (%s)", path, err)
                    path.write_text("".join(x + "\n" for x in lines[:-1]))
                else:
                    raise ValueError(f"search log {path}:{n}: not a result record ({err})") from err
        logger.info("search log %s: %d results loaded", path, len(self._results))

    def __len__(self) -> int:
        return len(self._results)

    def __contains__(self, key: tuple[str, Policy]) -> bool:
        model, policy = key
        return (model, policy.key()) in self._results

    def get(self, model: str, policy: Policy) -> EvalResult | None:
        """The recorded result of ``policy`` on ``model`` (a fingerprint), or ``None``."""
        return self._results.get((model, policy.key()))

    def append(self, model: str, result: EvalResult) -> None:
        """Record a result (written and flushed at once when the log has a path)."""
        key = Policy.from_dict(result.policy).key()
        self._results[(model, key)] = result
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps({"model": model, "policy_key": key, "result": result.as_dict()}, sort_keys=True)
            with self.path.open("a") as f:
                f.write(line + "\n")
                f.flush()

    def results(self, model: str | None = None) -> Iterator[EvalResult]:
        """Every result (of one model when given), in insertion order."""
        for (m, _), r in self._results.items():
            if model is None or m == model:
                yield r
