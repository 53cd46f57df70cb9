"""The PREDICTOR mode: the one-hot MLP learns a known accuracy function (and not shuffled labels); the mode
measures samples + the verified predicted front only, and NNCF's rule picks among measured subnets."""

from __future__ import annotations

import json

import numpy as np
import torch

from netsculpt.nas.search import SearchParams, SearchResult, choose_best, search_subnets
from netsculpt.nas.search.predictor import AccuracyPredictor, one_hot

from ._tiny import batches, fidelity_for, tiny_supernet

UPPER = np.array([2, 2, 2, 1, 1, 1, 1])
W = np.array([3.0, 2.0, 1.0, 4.0, 2.0, 1.0, 0.5])


def _acc(X: np.ndarray) -> np.ndarray:
    return 80.0 - (X * W).sum(axis=1) - 2.0 * X[:, 0] * X[:, 3]  # additive plus one interaction


def test_one_hot_blocks() -> None:
    h = one_hot(np.array([[0, 2, 1, 0, 1, 0, 1]]), UPPER)
    assert h.shape == (1, 3 + 3 + 3 + 2 + 2 + 2 + 2) and h.sum() == 7
    assert torch.nonzero(h[0]).flatten().tolist() == [0, 5, 7, 9, 12, 13, 16]


def test_predictor_learns_a_known_function_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    X, Xt = rng.integers(0, UPPER + 1, size=(100, 7)), rng.integers(0, UPPER + 1, size=(200, 7))
    p = AccuracyPredictor(UPPER, hidden=64, seed=0)
    p.fit(X, _acc(X), epochs=300, lr=3e-3)
    assert np.corrcoef(p.predict(Xt), _acc(Xt))[0, 1] > 0.95
    again = AccuracyPredictor(UPPER, hidden=64, seed=0)
    again.fit(X, _acc(X), epochs=300, lr=3e-3)
    assert np.array_equal(again.predict(Xt), p.predict(Xt))  # seeded
    noise = AccuracyPredictor(UPPER, hidden=64, seed=0)
    noise.fit(X, rng.permutation(_acc(X)), epochs=300, lr=3e-3)
    assert abs(np.corrcoef(noise.predict(Xt), _acc(Xt))[0, 1]) < 0.5  # negative control: shuffled labels


def test_predictor_mode_end_to_end() -> None:
    net = tiny_supernet()
    validate = fidelity_for(net)
    params = {
        "algorithm": "predictor",
        "num_evals": 200,
        "population": 20,
        "predictor_samples": 30,
        "predictor_hidden": 64,
        "predictor_epochs": 200,
        "verify": 6,
        "acc_delta": 15.0,
        "seed": 1,
        "batchnorm_adaptation": {"num_bn_adaptation_samples": 16},
    }
    assert SearchParams.from_dict(params).algorithm == "PREDICTOR"
    r = search_subnets(net, validate, params=params, bn_loader=batches())
    info = r.info
    assert info["predictor_samples"] == 31 and 1 <= info["verified"] <= 6
    assert len(r.points) <= 1 + 30 + info["verified"]  # only measured subnets are points
    assert r.generations.count(0) == 30 and set(r.generations) <= {-1, 0, 1}
    assert r.best_config == r.points[choose_best(r.points, r.ref_acc, r.acc_delta) or 0].config
    measured = {json.dumps(p.config, sort_keys=True): p.accuracy for p in r.points}
    for row in info["predicted_front"]:
        assert measured[json.dumps(row["config"], sort_keys=True)] == row["measured"]
    assert SearchResult.from_dict(json.loads(json.dumps(r.to_dict()))).info == info
