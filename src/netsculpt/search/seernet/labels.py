"""Labels for SeerNet: policies measured by the platform's ``evaluate`` on any executor, kept in the result log.

A label is the metric ``evaluate`` returns for a policy (apply on the live model, BatchNorm recalibration, a few
training steps, validation metric, bit-exact restore), with the settings of the ``EvalTask``. ``evaluate_many``
records each one in the ``ResultLog`` as it completes, so a killed run resumes where it stopped, a policy is
never measured twice, and every budget (and every later run on the same model and settings) reuses the labels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np

from netsculpt.errors import ConfigError
from netsculpt.search.batch import evaluate_many
from netsculpt.search.evaluate import EvalResult
from netsculpt.search.executors import EvalTask, SearchExecutor
from netsculpt.search.log import ResultLog
from netsculpt.search.policy import Policy
from netsculpt.search.seernet.encoding import PolicyEncoding

__all__ = ["dataset", "label", "logged_results"]

logger = logging.getLogger(__name__)


def label(
    task: EvalTask,
    policies: Sequence[Policy],
    *,
    executor: SearchExecutor | None = None,
    log: ResultLog | None = None,
    progress: bool = True,
) -> list[EvalResult]:
    """Measure ``policies`` (those already in ``log`` for this model and settings are not measured again).

    Args:
        task: the controller, the training hooks and the evaluation settings.
        policies: the policies to label.
        executor: where to run them (default: serially in this process).
        log: the result log (default: in memory only).
        progress: show a progress bar.

    Returns:
        One result per policy, in order.
    """
    return evaluate_many(task, policies, executor=executor, log=log, progress=progress)


def logged_results(task: EvalTask, log: ResultLog) -> list[EvalResult]:
    """Every result ``log`` holds for ``task``'s model and settings (labels from earlier runs or budgets)."""
    return list(log.results(task.fingerprint))


def dataset(encoding: PolicyEncoding, results: Iterable[EvalResult]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(level indices (N, D), vectors (N, D), labels (N,))`` of the results whose policy lies in the encoding's
    space (others, e.g. measured with bits this space does not allow, are skipped with a debug message).

    Raises:
        ConfigError: a label that is not a finite number.
    """
    rows: list[np.ndarray] = []
    labels: list[float] = []
    for r in results:
        logged = Policy.from_dict(r.policy)
        try:
            row = encoding.indices(logged)
        except ConfigError as err:
            logger.debug("seernet: skipping a logged policy outside the space (%s)", err)
            continue
        if encoding.policy(row).key() != logged.key():
            logger.debug("seernet: skipping a logged policy whose ratios are not levels of the space")
            continue
        if not np.isfinite(r.metric):
            raise ConfigError(f"seernet: a label is not a finite number; got {r.metric!r} for {r.policy}")
        rows.append(row)
        labels.append(float(r.metric))
    idx = np.array(rows, dtype=np.int64).reshape(-1, encoding.dim)
    return idx, encoding.values(idx), np.array(labels, dtype=np.float64)
