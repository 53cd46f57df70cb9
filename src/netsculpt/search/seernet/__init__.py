"""SeerNet: a performance predictor learned from few, actively chosen labels; policies by barrier search.

Joint per-layer pruning ratios and weight/activation bits (Wang et al., IJCV 2023, "Learning Accurate Performance
Predictors for Ultrafast Automated Model Compression"; spec: ALGORITHMS.md §5). Built on ``netsculpt.search``:

- ``PolicyEncoding``: policies of a ``SearchSpace`` as vectors in [0, 1] (pruned fraction, min-max bits);
- ``label``: ``evaluate`` on any executor, recorded in the ``ResultLog`` (resume, no label measured twice);
- ``fit``: the ELU MLP predictor (optionally counterfactual-weighted MSE);
- ``select``: evolutionary search for the policies of largest neighbourhood uncertainty;
- ``search``: log predicted metric + log-barrier on the differentiable BOPs/MACs, rounding, repair (always
  within budget), in about a second;
- ``run`` (all of it), ``export`` (policy, netsculpt config, ONNX). Details: docs/SEERNET.md.
"""

from __future__ import annotations

from netsculpt.search.seernet.api import (
    SeerNetConfig,
    SeerNetRun,
    export,
    fit,
    make_space,
    random_policies,
    reference_cost,
    run,
    search,
    select,
)
from netsculpt.search.seernet.barrier import BarrierConfig, SearchResult, barrier_search, repair
from netsculpt.search.seernet.encoding import Coordinate, PolicyEncoding
from netsculpt.search.seernet.labels import dataset, label, logged_results
from netsculpt.search.seernet.predictor import (
    MLPPredictor,
    PredictorConfig,
    fit_predictor,
    load_predictor,
    save_predictor,
    uncertainty,
)
from netsculpt.search.seernet.select import SelectConfig, select_uncertain

__all__ = [
    "BarrierConfig",
    "Coordinate",
    "MLPPredictor",
    "PolicyEncoding",
    "PredictorConfig",
    "SearchResult",
    "SeerNetConfig",
    "SeerNetRun",
    "SelectConfig",
    "barrier_search",
    "dataset",
    "export",
    "fit",
    "fit_predictor",
    "label",
    "load_predictor",
    "logged_results",
    "make_space",
    "random_policies",
    "reference_cost",
    "repair",
    "run",
    "save_predictor",
    "search",
    "select",
    "select_uncertain",
    "uncertainty",
]
