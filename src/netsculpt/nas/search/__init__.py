"""Subnet search over an elastic supernet (issue 15 item 5): NSGA-II with NNCF BootstrapNAS's defaults.

``search_subnets(supernet, validate_fn, params=...)`` returns a ``SearchResult`` with every evaluated subnet,
the accuracy / cost Pareto front, NNCF's chosen subnet (``best_config``: the cheapest within ``acc_delta`` of
``ref_acc``), JSON and a plot. ``algorithm: "PREDICTOR"`` evolves over an accuracy predictor fitted on measured
subnets instead (OFA's pipeline). See docs/SUPERNET.md, "Search".
"""

from __future__ import annotations

from netsculpt.nas.search.nsga2 import (
    crowding_distance,
    non_dominated_sort,
    polynomial_mutation,
    sbx_crossover,
)
from netsculpt.nas.search.params import SearchParams
from netsculpt.nas.search.predictor import AccuracyPredictor
from netsculpt.nas.search.result import SearchPoint, SearchResult, choose_best, pareto_front
from netsculpt.nas.search.search import search_subnets
from netsculpt.nas.search.task import Encoding, SubnetTask, subnet_cost

__all__ = [
    "AccuracyPredictor",
    "Encoding",
    "SearchParams",
    "SearchPoint",
    "SearchResult",
    "SubnetTask",
    "choose_best",
    "crowding_distance",
    "non_dominated_sort",
    "pareto_front",
    "polynomial_mutation",
    "sbx_crossover",
    "search_subnets",
    "subnet_cost",
]
