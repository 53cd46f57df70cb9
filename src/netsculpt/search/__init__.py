"""Automated compression platform: search spaces, policies, one cost model, candidate evaluation, executors.

Every search method (LeGR, EKG, SeerNet, subnet search) repeats one step: set a per-layer policy on a model,
price it, recalibrate BatchNorm, maybe train a few steps, measure, restore. This package is that step, once:

- ``SearchSpace.from_controller(ctrl)``: channel groups (kept counts allowed by ``round_to``) and quantizers
  (allowed bits) of a compressed model;
- ``Policy``: keep ratio per group, bits per quantizer; JSON round trip; ``to_config`` reproduces it through
  ``create_compressed_model``;
- ``ctrl.apply_policy`` / ``ctrl.current_policy`` / ``ctrl.set_pruning_level``: on the live model;
- ``cost``: MACs, params, BOPs, bit complexity and size by arithmetic (``DifferentiableCost`` in torch);
- ``evaluate``: snapshot, apply, BN recalibration, training steps, metric, bit-exact restore;
- ``evaluate_many`` on ``SerialExecutor``, ``ProcessPoolExecutor`` or ``DaskExecutor`` with a ``ResultLog``.
"""

from __future__ import annotations

from netsculpt.search.apply import apply_policy, current_policy, set_pruning_level
from netsculpt.search.batch import evaluate_many
from netsculpt.search.cost import Cost, DifferentiableCost, cost
from netsculpt.search.evaluate import EvalResult, Snapshot, evaluate
from netsculpt.search.executors import DaskExecutor, EvalTask, ProcessPoolExecutor, SearchExecutor, SerialExecutor
from netsculpt.search.log import ResultLog, fingerprint
from netsculpt.search.policy import Policy
from netsculpt.search.space import GroupSpace, QuantizerSpace, SearchSpace
from netsculpt.train.hooks import TrainHooks

__all__ = [
    "Cost",
    "DaskExecutor",
    "DifferentiableCost",
    "EvalResult",
    "EvalTask",
    "GroupSpace",
    "Policy",
    "ProcessPoolExecutor",
    "QuantizerSpace",
    "ResultLog",
    "SearchExecutor",
    "SearchSpace",
    "SerialExecutor",
    "Snapshot",
    "TrainHooks",
    "apply_policy",
    "cost",
    "current_policy",
    "evaluate",
    "evaluate_many",
    "fingerprint",
    "set_pruning_level",
]
