"""SeerNet's accuracy predictor: a small ELU MLP on the policy vector, and its neighbourhood uncertainty.

``f(x) = Linear(H, 1)(ELU(Linear(H, H)(ELU(Linear(D, H)(x)))))`` with ``H = 15`` predicts the label (the metric
``evaluate`` measured, e.g. top-1 in [0, 1]). Training is full-batch Adam (lr 1e-3, cosine decay, 2 000 epochs)
with the best weights on a 10 % hold-out kept (early stopping). With ``counterfactual=True`` a second round
re-weights the MSE per sample by how wrong the first round is on the sample's counterfactual neighbours (one
coordinate one level down), so samples whose neighbourhood the predictor gets wrong count more.

``uncertainty(x) = mean over neighbours x' of (f(x') − f(x))²`` is the fitness active selection maximises; it is
exactly zero for a constant predictor.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from netsculpt.checkpoint import read_checkpoint
from netsculpt.errors import ConfigError, StateError
from netsculpt.search.seernet._threads import one_thread
from netsculpt.search.seernet.encoding import PolicyEncoding

__all__ = ["MLPPredictor", "PredictorConfig", "fit_predictor", "load_predictor", "save_predictor", "uncertainty"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PredictorConfig:
    """How the predictor is trained.

    Args:
        hidden: hidden width H.
        epochs: full-batch Adam epochs.
        lr: Adam learning rate (cosine-decayed to 0).
        weight_decay: Adam weight decay.
        val_fraction: hold-out share for early stopping (used when there are at least 20 samples).
        counterfactual: re-weight the MSE by the counterfactual-neighbour error (a second training round).
        seed: torch seed of the initialisation and the hold-out split.
    """

    hidden: int = 15
    epochs: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    counterfactual: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.epochs < 1:
            raise ConfigError(f"seernet.predictor: hidden and epochs must be >= 1; got {self.hidden}, {self.epochs}")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ConfigError(f"seernet.predictor.val_fraction: must be in [0, 0.5); got {self.val_fraction}")
        if not self.lr > 0:
            raise ConfigError(f"seernet.predictor.lr: must be > 0; got {self.lr}")


class MLPPredictor(nn.Module):
    """``dim → H → H → 1`` with ELU, predicting the metric of a policy vector.

    The MLP works on standardised labels: ``f(x) = y_mean + y_scale · net(x)`` (``fit_predictor`` sets both
    from the training labels), so its random initial function does not swamp label differences of a few points.
    """

    y_mean: torch.Tensor
    y_scale: torch.Tensor

    def __init__(self, dim: int, hidden: int = 15) -> None:
        super().__init__()
        self.dim, self.hidden = dim, hidden
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                                 nn.Linear(hidden, 1))
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_scale", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions ``(N,)`` of vectors ``(N, dim)``."""
        out: torch.Tensor = self.y_mean + self.y_scale * self.net(x).squeeze(-1)
        return out

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions of numpy vectors ``(N, dim)``."""
        t = torch.as_tensor(np.atleast_2d(x), dtype=torch.float32)
        return np.asarray(self(t).double().numpy())


def fit_predictor(
    x: np.ndarray,
    y: np.ndarray,
    config: PredictorConfig | None = None,
    encoding: PolicyEncoding | None = None,
    idx: np.ndarray | None = None,
) -> MLPPredictor:
    """Train a predictor on vectors ``x`` ``(N, D)`` and labels ``y`` ``(N,)``.

    Args:
        x: encoded policies.
        y: their labels.
        config: training settings.
        encoding: needed with ``config.counterfactual`` (the neighbours of each sample).
        idx: level indices of ``x`` (needed with ``config.counterfactual``).

    Raises:
        ConfigError: fewer than 2 samples, mismatched shapes, or counterfactual weighting without ``encoding``.
    """
    with one_thread():
        return _fit(x, y, config or PredictorConfig(), encoding, idx)


def _fit(x: np.ndarray, y: np.ndarray, cfg: PredictorConfig, encoding: PolicyEncoding | None,
         idx: np.ndarray | None) -> MLPPredictor:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y) or len(x) < 2:
        raise ConfigError(f"seernet.fit: need >= 2 samples with x (N, D) and y (N,); got {x.shape} and {y.shape}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(x))
    n_val = int(round(cfg.val_fraction * len(x))) if len(x) >= 20 else 0
    val, train = order[:n_val], order[n_val:]
    model = MLPPredictor(x.shape[1], cfg.hidden)
    weights = np.ones(len(x))
    model = _train(model, x, y, weights, train, val, cfg)
    if cfg.counterfactual:
        if encoding is None or idx is None:
            raise ConfigError("seernet.fit: counterfactual weighting needs the encoding and the level indices")
        weights = _counterfactual_weights(model, encoding, idx, y)
        model = _train(MLPPredictor(x.shape[1], cfg.hidden), x, y, weights, train, val, cfg)
    return model


def _train(model: MLPPredictor, x: np.ndarray, y: np.ndarray, w: np.ndarray, train: np.ndarray, val: np.ndarray,
           cfg: PredictorConfig) -> MLPPredictor:
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    wt = torch.as_tensor(w, dtype=torch.float32)
    tr, va = torch.as_tensor(train), torch.as_tensor(val)
    with torch.no_grad():  # standardised labels: the MLP only has to learn the differences
        model.y_mean.fill_(float(yt[tr].mean()))
        model.y_scale.fill_(max(float(yt[tr].std()) if len(tr) > 1 else 0.0, 1e-3))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best, best_loss = copy.deepcopy(model.state_dict()), math.inf
    for epoch in range(cfg.epochs):
        for group in opt.param_groups:
            group["lr"] = 0.5 * cfg.lr * (1 + math.cos(math.pi * epoch / cfg.epochs))
        loss = (wt[tr] * (model(xt[tr]) - yt[tr]) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if len(va) and (epoch % 25 == 24 or epoch == cfg.epochs - 1):
            with torch.no_grad():
                v = float(((model(xt[va]) - yt[va]) ** 2).mean())
            if v < best_loss:
                best, best_loss = copy.deepcopy(model.state_dict()), v
    if len(va):
        model.load_state_dict(best)
    model.eval()
    logger.debug("seernet: predictor trained on %d samples (hold-out MSE %.3g)", len(train), best_loss)
    return model


def _counterfactual_weights(
    model: MLPPredictor, encoding: PolicyEncoding, idx: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """RMS of ``f(x') − y_i`` over the counterfactual neighbours of each sample, divided by the std over samples."""
    nb, valid = encoding.neighbours_down(idx)
    pred = model.predict(encoding.values(nb.reshape(-1, encoding.dim))).reshape(valid.shape)
    err = np.where(valid, (pred - y[:, None]) ** 2, 0.0)
    count = np.maximum(valid.sum(axis=1), 1)
    w = np.sqrt(err.sum(axis=1) / count)
    std = float(w.std())
    if not std > 1e-12:
        return np.ones(len(y))
    return np.asarray(np.clip(w / std, 1e-3, None))


def uncertainty(model: nn.Module, encoding: PolicyEncoding, idx: np.ndarray) -> np.ndarray:
    """``mean_{x' ∈ N(x)} (f(x') − f(x))²`` per policy ``idx`` ``(P, D)``, over the one-level-down neighbours
    (0 for a policy with none)."""
    idx = np.atleast_2d(idx)
    nb, valid = encoding.neighbours_down(idx)
    with torch.no_grad():
        fx = model(torch.as_tensor(encoding.values(idx), dtype=torch.float32)).double().numpy()
        fn = model(torch.as_tensor(encoding.values(nb.reshape(-1, encoding.dim)), dtype=torch.float32))
    fn_np = fn.double().numpy().reshape(valid.shape)
    sq = np.where(valid, (fn_np - fx[:, None]) ** 2, 0.0)
    return np.asarray(sq.sum(axis=1) / np.maximum(valid.sum(axis=1), 1))


def save_predictor(model: MLPPredictor, path: str | Path, config: PredictorConfig | None = None,
                   extra: dict[str, Any] | None = None) -> Path:
    """Write the predictor's weights and settings (``load_predictor`` reads them with ``weights_only=True``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = {"dim": model.dim, "hidden": model.hidden, "config": asdict(config or PredictorConfig()),
            **(extra or {})}
    torch.save({"state_dict": model.state_dict(), "meta": meta}, p)
    return p


def load_predictor(path: str | Path) -> tuple[MLPPredictor, dict[str, Any]]:
    """Inverse of ``save_predictor``: the predictor and its metadata.

    Raises:
        StateError: the file is not a saved predictor.
    """
    data = read_checkpoint(path, "seernet predictor")
    if not isinstance(data, dict) or "state_dict" not in data or "meta" not in data:
        raise StateError(f"seernet: {path} is not a saved SeerNet predictor (no 'state_dict'/'meta')")
    meta = dict(data["meta"])
    model = MLPPredictor(int(meta["dim"]), int(meta["hidden"]))
    model.load_state_dict(data["state_dict"])
    model.eval()
    return model, meta
