"""Evaluate many policies on any executor, skipping those already in the result log, with a progress bar."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import sys
from collections.abc import Callable, Sequence

from tqdm import tqdm

from netsculpt.search.evaluate import EvalResult
from netsculpt.search.executors import EvalTask, SearchExecutor, SerialExecutor
from netsculpt.search.log import ResultLog
from netsculpt.search.policy import Policy

__all__ = ["evaluate_many"]

logger = logging.getLogger(__name__)


def evaluate_many(
    task: EvalTask,
    policies: Sequence[Policy],
    *,
    executor: SearchExecutor | None = None,
    log: ResultLog | None = None,
    progress: bool = True,
    on_result: Callable[[EvalResult], None] | None = None,
) -> list[EvalResult]:
    """Evaluate ``policies`` (duplicates and logged ones once), recording each result as it completes.

    Args:
        task: the controller, hooks and settings (``EvalTask``).
        policies: candidates, in any order.
        executor: where to run them (default: ``SerialExecutor``); started here, not shut down.
        log: the result log; policies it already holds for this model and settings are not evaluated again.
        progress: show a progress bar with ETA on stderr.
        on_result: called with each new result as it completes (after it is logged).

    Returns:
        One result per input policy, in input order.
    """
    ex = executor if executor is not None else SerialExecutor()
    store = log if log is not None else ResultLog()
    model = task.fingerprint
    keys = [p.key() for p in policies]
    todo: dict[str, Policy] = {}
    for key, p in zip(keys, policies, strict=True):
        if key not in todo and store.get(model, p) is None:
            todo[key] = p
    reused = len(set(keys)) - len(todo)
    if reused:
        logger.info("search: %d of %d policies already in the log; evaluating %d", reused, len(set(keys)), len(todo))
    bar = tqdm(total=len(todo), desc="evaluate", unit="policy", disable=None if progress else True, file=sys.stderr)
    try:
        if todo:
            ex.start(task)
            pending: dict[cf.Future[EvalResult], str] = {}
            for key, p in todo.items():
                pending[ex.submit(p.to_dict())] = key
                if isinstance(ex, SerialExecutor):  # already done: record before the next one runs
                    _collect(pending, store, model, bar, on_result)
            _collect(pending, store, model, bar, on_result)
    finally:
        bar.close()
    out = []
    for p in policies:
        r = store.get(model, p)
        assert r is not None  # every policy was evaluated or logged
        out.append(r)
    return out


def _collect(
    pending: dict[cf.Future[EvalResult], str],
    store: ResultLog,
    model: str,
    bar: tqdm,  # type: ignore[type-arg]
    on_result: Callable[[EvalResult], None] | None,
) -> None:
    """Log every completed result; the first failure is raised after the others are logged."""
    error: BaseException | None = None
    try:
        for future in cf.as_completed(list(pending)):
            exc = future.exception()
            if exc is not None:
                error = error or exc
                continue
            result = future.result()
            store.append(model, result)
            bar.update(1)
            if on_result is not None:
                on_result(result)
    finally:
        pending.clear()
    if error is not None:
        raise error
