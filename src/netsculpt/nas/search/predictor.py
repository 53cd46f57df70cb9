"""Accuracy predictor for the ``PREDICTOR`` search mode (OFA, ALGORITHMS.md §2.6).

An MLP on the one-hot encoding of a subnet's genes: 3 hidden layers of ``hidden`` (OFA: 400) ReLU units and a
scalar output added to a frozen bias, the mean measured accuracy (OFA's ``base_acc``). Trained with Adam on the
mean squared error of (encoding, BN-recalibrated accuracy) pairs, full batch, on a seeded generator.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["AccuracyPredictor", "one_hot"]


def one_hot(X: np.ndarray, upper: np.ndarray) -> torch.Tensor:
    """One-hot rows (one block of ``upper[i] + 1`` entries per gene) of integer gene rows ``X``."""
    X = np.atleast_2d(np.asarray(X, dtype=np.int64))
    offsets = np.concatenate([[0], np.cumsum(upper + 1)[:-1]]).astype(np.int64)
    out = torch.zeros(len(X), int((upper + 1).sum()))
    if X.shape[1]:
        cols = torch.from_numpy(X + offsets[None, :])
        out.scatter_(1, cols, 1.0)
    return out


class AccuracyPredictor:
    """Predicts accuracy from integer genes with bounds ``0..upper``."""

    def __init__(self, upper: np.ndarray, hidden: int = 400, seed: int = 0) -> None:
        self.upper = np.asarray(upper, dtype=np.int64)
        g = torch.Generator().manual_seed(seed)
        width = int((self.upper + 1).sum())
        layers: list[nn.Module] = []
        for n_in in (width, hidden, hidden):
            layers += [nn.Linear(n_in, hidden), nn.ReLU()]
        layers.append(nn.Linear(hidden, 1))
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            for p in self.net.parameters():  # seeded init independent of the global torch RNG
                bound = 1.0 / max(p.shape[-1], 1) ** 0.5
                p.uniform_(-bound, bound, generator=g)
        self.base = 0.0
        self.scale = 1.0
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray, epochs: int = 500, lr: float = 1e-3) -> float:
        """Train on gene rows ``X`` and accuracies ``y``; returns the final training RMSE (in ``y``'s units)."""
        y_arr = np.asarray(y, dtype=np.float64)
        self.base = float(y_arr.mean())
        self.scale = float(y_arr.std()) or 1.0
        inputs = one_hot(X, self.upper)
        target = torch.tensor((y_arr - self.base) / self.scale, dtype=torch.float32)[:, None]
        opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.net.train()
        loss = torch.zeros(())
        with torch.enable_grad():
            for _ in range(epochs):
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.mse_loss(self.net(inputs), target)
                torch.autograd.backward(loss)
                opt.step()
        self.net.eval()
        return float(loss.detach().sqrt()) * self.scale

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted accuracies of gene rows ``X``."""
        with torch.no_grad():
            out = self.net(one_hot(X, self.upper))[:, 0].double().numpy()
        pred: np.ndarray = out * self.scale + self.base
        return pred
