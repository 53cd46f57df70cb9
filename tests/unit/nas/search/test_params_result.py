"""SearchParams (NNCF keys and defaults, located errors) and SearchResult (NNCF's choice rule, front, JSON, plot)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netsculpt.errors import ConfigError, NotSupportedYetError
from netsculpt.nas.search import SearchParams, SearchPoint, SearchResult, choose_best, pareto_front


def test_defaults_are_nncf_code_defaults() -> None:
    p = SearchParams.from_dict({"algorithm": "NSGA2"})
    assert (p.num_evals, p.population, p.crossover_prob, p.crossover_eta) == (3000, 40, 0.9, 10.0)
    assert (p.mutation_prob, p.mutation_eta, p.acc_delta, p.ref_acc, p.seed) == (0.02, 3.0, 1.0, -1.0, 0)
    assert p.num_bn_adaptation_samples == 2000 and p.generations == 75
    assert SearchParams() == p
    assert SearchParams.from_dict({"num_evals": 130, "population": 50}).generations == 2  # rounded down
    section = {
        "algorithm": "NSGA2",
        "num_evals": 100,
        "population": 20,
        "crossover_prob": 0.8,
        "mutation_eta": 5.0,
        "acc_delta": 0.5,
        "ref_acc": 92.0,
        "seed": 3,
        "batchnorm_adaptation": {"num_bn_adaptation_samples": 1500},
        "cost_metric": "bops",
        "bits": 4,
    }
    q = SearchParams.from_dict(section)
    assert q.num_bn_adaptation_samples == 1500 and q.cost_metric == "bops" and q.bits == 4
    assert SearchParams.from_dict(q.as_dict()) == q


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"population": 1}, "search.population: must be >= 2; got 1"),
        ({"crossover_prob": 1.5}, "search.crossover_prob: must be in [0, 1]; got 1.5"),
        ({"mutation_prob": -0.1}, "search.mutation_prob: must be in [0, 1]; got -0.1"),
        ({"cost_metric": "flops"}, "search.cost_metric: must be one of macs, bops, latency; got 'flops'"),
        ({"num_evals": 10}, "search.num_evals: must be >= population (40); got 10"),
        ({"algorithm": "GA"}, "search.algorithm: must be one of NSGA2, PREDICTOR; got 'GA'"),
        ({"population": "40"}, "search.population: must be an integer; got '40'"),
        ({"popsize": 40}, "search.popsize: unknown key"),
        (
            {"batchnorm_adaptation": {"num_bn_adaptation_samples": -1}},
            "search.batchnorm_adaptation.num_bn_adaptation_samples: must be >= 0; got -1",
        ),
        ({"algorithm": "PREDICTOR", "predictor_samples": 0}, "search.predictor_samples: must be >= 1; got 0"),
        ({"verify": -2}, "search.verify: must be >= 0 (0: population); got -2"),
        ({"acc_delta": -1}, "search.acc_delta: must be a finite number >= 0; got -1.0"),
    ],
)
def test_located_errors(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        SearchParams.from_dict(section)
    assert str(err.value).startswith(message)


def test_rnsga2_is_not_supported_yet() -> None:
    with pytest.raises(NotSupportedYetError, match=r"^search.algorithm: 'RNSGA2'"):
        SearchParams.from_dict({"algorithm": "RNSGA2", "aspiration_points": [[0, 0]]})


def _cfg(w: int) -> dict[str, object]:
    return {"width": {"g": w}, "depth": [], "kernel": {}}


# ref_acc 90, acc_delta 1: the bar is accuracy > 89 (strict, as NNCF)
POINTS = [
    SearchPoint(_cfg(8), 90.0, 100.0),  # the full model
    SearchPoint(_cfg(6), 89.5, 50.0),  # qualifies: the answer
    SearchPoint(_cfg(4), 88.9, 10.0),  # cheaper but outside acc_delta: must not be chosen
    SearchPoint(_cfg(2), 89.0, 5.0),  # exactly on the bar: outside (strict)
    SearchPoint(_cfg(5), 89.7, 50.0),  # as cheap as the answer, found later: not chosen
]


def test_best_rule_hand_case_with_negative_controls() -> None:
    assert choose_best(POINTS, 90.0, 1.0) == 1
    assert choose_best(POINTS, 90.0, 1.05) == 3  # a wider tolerance admits the cheapest one
    assert choose_best(POINTS[:3], 90.0, 1.2) == 2
    assert choose_best(POINTS, 95.0, 1.0) is None  # nothing qualifies: NNCF returns the maximum subnet


def test_pareto_front_hand_case() -> None:
    front = pareto_front(POINTS)
    assert [(p.accuracy, p.cost) for p in front] == [(89.0, 5.0), (89.7, 50.0), (90.0, 100.0)]
    dominated = SearchPoint(_cfg(1), 80.0, 200.0)
    assert dominated not in pareto_front([*POINTS, dominated])


def test_result_json_round_trip_and_plot(tmp_path: Path) -> None:
    r = SearchResult(
        POINTS,
        _cfg(6),
        89.5,
        50.0,
        ref_acc=90.0,
        acc_delta=1.0,
        cost_metric="macs",
        details=[{"macs": int(p.cost)} for p in POINTS],
        generations=[-1, 0, 0, 1, 1],
        params=SearchParams().as_dict(),
    )
    text = json.dumps(r.to_dict())
    back = SearchResult.from_dict(json.loads(text))
    assert back.to_dict() == r.to_dict()
    assert back.pareto == r.pareto and back.best_config == _cfg(6)
    assert SearchResult.load(r.save(tmp_path / "r.json")).to_dict() == r.to_dict()
    png = r.plot(tmp_path / "front.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
