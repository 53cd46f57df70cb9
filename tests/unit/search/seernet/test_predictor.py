"""The MLP predictor: trains in seconds, ranks well, saves and loads; the uncertainty of a constant is zero."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau
from tests.unit.search.seernet._helpers import tiny_space

from netsculpt.search import seernet as sn


def test_uncertainty_of_a_constant_predictor_is_zero() -> None:
    _, _, enc = tiny_space()
    model = sn.MLPPredictor(enc.dim)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.net[-1].bias.fill_(0.7)
    idx = enc.random(64, np.random.default_rng(0))
    assert np.array_equal(sn.uncertainty(model, enc, idx), np.zeros(64))


def test_uncertainty_is_positive_where_the_neighbourhood_differs() -> None:
    _, _, enc = tiny_space()
    model = sn.MLPPredictor(enc.dim)
    idx = np.full((1, enc.dim), 1)
    assert sn.uncertainty(model, enc, idx)[0] > 0
    assert sn.uncertainty(model, enc, np.zeros((1, enc.dim), dtype=np.int64))[0] == 0  # no lower neighbour


def test_fit_ranks_a_smooth_function_and_round_trips(tmp_path: Path) -> None:
    _, _, enc = tiny_space()
    rng = np.random.default_rng(0)
    idx = enc.random(80, rng)
    x = enc.values(idx)
    w = rng.normal(size=enc.dim)
    y = 0.6 + 0.05 * x @ w
    for counterfactual in (False, True):
        model = sn.fit_predictor(x[:60], y[:60], sn.PredictorConfig(epochs=400, counterfactual=counterfactual),
                                 enc, idx[:60])
        assert kendalltau(model.predict(x[60:]), y[60:]).statistic > 0.6
    path = sn.save_predictor(model, tmp_path / "p.pt")
    loaded, meta = sn.load_predictor(path)
    assert meta["dim"] == enc.dim
    assert np.allclose(loaded.predict(x), model.predict(x))


def test_selection_returns_distinct_unlabelled_policies() -> None:
    _, _, enc = tiny_space()
    model = sn.MLPPredictor(enc.dim)
    rng = np.random.default_rng(0)
    cfg = sn.SelectConfig(population=40, parents=20, mutations=8, crossovers=20, generations=3)
    first = sn.select_uncertain(model, enc, 5, rng=rng, config=cfg)
    assert len(first) == 5 and len(set(enc.keys(first))) == 5
    u = sn.uncertainty(model, enc, first)
    assert (np.diff(u) <= 1e-12).all()  # most uncertain first
    again = sn.select_uncertain(model, enc, 5, rng=np.random.default_rng(0), exclude=enc.keys(first), config=cfg)
    assert not set(enc.keys(again)) & set(enc.keys(first))
