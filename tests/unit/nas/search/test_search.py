"""search_subnets end to end on a tiny supernet: NNCF's choice, the front, extraction, executors, errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from netsculpt.errors import ConfigError
from netsculpt.metrics.macs import count_macs
from netsculpt.nas.search import Encoding, SearchResult, SubnetTask, choose_best, search_subnets
from netsculpt.nas.search.task import config_key
from netsculpt.search.executors import ProcessPoolExecutor

from ._tiny import batches, fidelity_for, tiny_supernet

PARAMS = {
    "num_evals": 60,
    "population": 12,
    "acc_delta": 15.0,
    "seed": 1,
    "batchnorm_adaptation": {"num_bn_adaptation_samples": 16},
}


def _bn_stats(net: Any) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.model.state_dict().items() if "running" in k}


@pytest.fixture(scope="module")
def searched() -> tuple[Any, SearchResult, dict[str, Any]]:
    net = tiny_supernet()
    validate = fidelity_for(net)
    before_stats = _bn_stats(net)
    net.activate_subnet_for_config(net.get_random_config(3))
    active = net.get_active_config()
    result = search_subnets(net, validate, params=PARAMS, bn_loader=batches())
    return net, result, {"validate": validate, "active": active, "stats": before_stats}


def test_search_leaves_the_supernet_as_it_was(searched: tuple[Any, SearchResult, dict[str, Any]]) -> None:
    net, _, ctx = searched
    assert net.get_active_config() == ctx["active"]
    after = _bn_stats(net)
    assert all(torch.equal(after[k], v) for k, v in ctx["stats"].items())


def test_points_front_and_nncf_choice(searched: tuple[Any, SearchResult, dict[str, Any]]) -> None:
    net, r, _ = searched
    assert r.points[0].config == net.get_maximum_config() and r.generations[0] == -1
    keys = [config_key(p.config) for p in r.points]
    assert len(keys) == len(set(keys))  # each subnet evaluated once
    assert 40 <= len(r.points) <= 61  # the full model + up to num_evals candidates
    assert r.ref_acc == r.points[0].accuracy  # ref_acc -1: the full model's
    assert r.best_config == r.points[choose_best(r.points, r.ref_acc, r.acc_delta) or 0].config
    assert r.best_accuracy > r.ref_acc - r.acc_delta
    cheaper = [p for p in r.points if p.cost < r.best_cost]
    assert cheaper and all(p.accuracy <= r.ref_acc - r.acc_delta for p in cheaper)  # none of those qualifies
    for p in r.pareto:  # nothing dominates a front point; every other point is dominated by (or equals) one
        assert not any(
            q.cost <= p.cost and q.accuracy >= p.accuracy and q != p and (q.cost, q.accuracy) != (p.cost, p.accuracy)
            for q in r.points
        )
    for q in r.points:
        assert any(p.cost <= q.cost and p.accuracy >= q.accuracy for p in r.pareto)
    costs = [p.cost for p in r.pareto]
    assert costs == sorted(costs) and len(r.pareto) >= 3


def test_costs_are_the_extracted_subnets_macs(searched: tuple[Any, SearchResult, dict[str, Any]]) -> None:
    net, r, _ = searched
    for i in (0, len(r.points) // 2, len(r.points) - 1):
        sub = net.extract(r.points[i].config)
        report = count_macs(sub, net.example[0])
        assert r.points[i].cost == report.total == r.details[i]["macs"]
        assert r.details[i]["params"] == report.params
        assert r.details[i]["bops"] == report.total * 8 * 8  # BOPs at the default 8 bits
    assert r.points[0].cost > r.best_cost


def test_extracted_best_equals_the_supernet_in_that_config(searched: tuple[Any, SearchResult, dict[str, Any]]) -> None:
    net, r, _ = searched
    before = net.get_active_config()
    sub = net.extract(r.best_config).eval()
    net.activate_subnet_for_config(r.best_config)
    net.model.eval()
    x = batches(1, 4, seed=11)[0][0]
    with torch.no_grad():
        got, ref = sub(x), net.model(x)
    net.activate_subnet_for_config(before)
    assert (got - ref).abs().max() <= 1e-5 * ref.abs().max()
    assert not hasattr(sub, "_netsculpt")


def test_seeded_and_order_independent(searched: tuple[Any, SearchResult, dict[str, Any]]) -> None:
    net, r, ctx = searched
    again = search_subnets(net, ctx["validate"], params=PARAMS, bn_loader=batches())
    assert again.to_dict()["points"] == r.to_dict()["points"]
    other = search_subnets(net, ctx["validate"], params={**PARAMS, "seed": 2}, bn_loader=batches())
    assert [p.config for p in other.points] != [p.config for p in r.points]
    # a subnet measured alone (after no other candidate) gives the accuracy recorded during the search
    task = SubnetTask(net, ctx["validate"], bn_loader=batches(), bn_batches=2, seed=PARAMS["seed"])
    for point in (r.points[-1], r.points[len(r.points) // 2]):
        assert task.run(point.config).metric == point.accuracy


def test_nothing_within_acc_delta_returns_the_maximum(searched: tuple[Any, SearchResult, dict[str, Any]]) -> None:
    net, _, ctx = searched
    r = search_subnets(
        net, ctx["validate"], params={**PARAMS, "num_evals": 24, "ref_acc": 1e6, "acc_delta": 0.0}, bn_loader=batches()
    )
    assert r.best_config == net.get_maximum_config() and r.best_cost == r.points[0].cost


def test_encoding_round_trip() -> None:
    net = tiny_supernet()
    enc = Encoding(net.search_space)
    assert len(enc.genes) == 3 + 2 + 2 and enc.upper.tolist() == [2, 2, 2, 1, 1, 1, 1]
    assert enc.encode(net.get_maximum_config()).tolist() == [0] * 7
    assert enc.encode(net.get_minimum_config()).tolist() == enc.upper.tolist()
    for seed in range(5):
        cfg = net.get_random_config(seed)
        assert enc.decode(enc.encode(cfg)) == cfg
    assert enc.size == 27 * 4 * 4


def test_process_pool_gives_the_serial_results(searched: tuple[Any, SearchResult, dict[str, Any]]) -> None:
    net, _, ctx = searched
    params = {**PARAMS, "num_evals": 16, "population": 8}
    serial = search_subnets(net, ctx["validate"], params=params, bn_loader=batches())
    with ProcessPoolExecutor(workers=2) as pool:
        pooled = search_subnets(net, ctx["validate"], params=params, bn_loader=batches(), executor=pool)
    assert [(p.config, p.cost) for p in pooled.points] == [(p.config, p.cost) for p in serial.points]
    assert np.allclose([p.accuracy for p in pooled.points], [p.accuracy for p in serial.points], atol=1e-6)
    assert all(d["worker"] != os.getpid() for d in pooled.details[1:])  # run in the workers


def test_val_loader_top1_and_nncf_two_argument_validate() -> None:
    net = tiny_supernet()
    data = batches(2, 8)
    params = {"num_evals": 4, "population": 2, "batchnorm_adaptation": {"num_bn_adaptation_samples": 0}}
    r = search_subnets(net, None, params=params, val_loader=data)
    assert all(0.0 <= p.accuracy <= 100.0 for p in r.points)
    calls: list[int] = []

    def validate(model: torch.nn.Module, loader: Any) -> tuple[float, float, float]:
        calls.append(len(loader))
        return (50.0, 0.0, 1.0)  # NNCF's (top1, top5, loss): the first counts

    r2 = search_subnets(net, validate, params=params, val_loader=data)
    assert calls and set(calls) == {2} and {p.accuracy for p in r2.points} == {50.0}


def test_located_errors() -> None:
    net = tiny_supernet()
    with pytest.raises(ConfigError, match=r"^search.population: must be >= 2; got 1"):
        search_subnets(net, lambda m: 1.0, params={"population": 1})
    with pytest.raises(ConfigError, match=r"^search.crossover_prob: must be in \[0, 1\]"):
        search_subnets(net, lambda m: 1.0, params={"crossover_prob": 2})
    with pytest.raises(ConfigError, match=r"^search.cost_metric: must be one of macs, bops, latency; got 'ms'"):
        search_subnets(net, lambda m: 1.0, params={"cost_metric": "ms"})
    with pytest.raises(ConfigError, match=r"^search_subnets: give validate_fn"):
        search_subnets(net, None)
    with pytest.raises(ConfigError, match=r"^search_subnets.val_loader"):
        search_subnets(net, lambda model, loader: 1.0)
    with pytest.raises(ConfigError, match=r"^validate_fn: must return the metric as a number"):
        search_subnets(net, lambda m: "good", params={"num_evals": 2, "population": 2})
    assert net.get_active_config() == net.get_maximum_config()  # a failing evaluation restored the supernet


def test_latency_metric(tmp_path: Path) -> None:
    net = tiny_supernet()
    r = search_subnets(
        net,
        fidelity_for(net),
        params={
            "num_evals": 2,
            "population": 2,
            "cost_metric": "latency",
            "batchnorm_adaptation": {"num_bn_adaptation_samples": 0},
        },
    )
    assert all(p.cost > 0 and p.cost == d["latency_ms"] for p, d in zip(r.points, r.details))
    assert r.plot(tmp_path / "latency.png") is not None


def test_best_subnet_compresses_to_int8_and_exports(
    searched: tuple[Any, SearchResult, dict[str, Any]], tmp_path: Path
) -> None:
    from netsculpt import create_compressed_model, register_default_init_args
    from netsculpt.export import check_onnx

    net, r, _ = searched
    sub = net.extract(r.best_config)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(*[torch.cat(t) for t in zip(*batches(4))]), batch_size=8
    )
    cfg = register_default_init_args(
        {"input_info": {"sample_size": [1, 1, 16, 16]}, "compression": {"algorithm": "quantization"}}, loader
    )
    ctrl, qmodel = create_compressed_model(sub, cfg)
    qmodel.eval()
    path = ctrl.export_model(tmp_path / "best_int8.onnx")
    x = batches(1, 16, seed=5)[0][0]
    res = check_onnx(path, qmodel, (x,))
    assert res.top1_agreement >= 0.9, res
    assert res.max_abs_diff <= 0.05 * res.output_max, res
