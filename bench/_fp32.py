"""One FP32 Fashion-MNIST baseline shared by the accuracy benchmarks, trained once and cached on disk.

Every bench script that compresses a pre-trained model starts from ``fp32_baseline(...)``: the same
architecture, data subset, batch size (128), epochs, LR and seed give the same weights, so the sparsity,
binarization, HAWQ and accuracy-aware benchmarks compare algorithms on one starting point and a re-run
skips the FP32 training. The cache lives in ``bench/results/cache/`` (git-ignored); ``--no-cache`` in the
scripts (``use_cache=False``) retrains.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch
from torch import nn

from netsculpt.data import dataset_info, make_loaders
from netsculpt.models import create_model
from netsculpt.train import fit_baseline

__all__ = ["CACHE", "fp32_baseline"]

CACHE = Path(__file__).parent / "results" / "cache"
BATCH = 128
logger = logging.getLogger("bench.fp32")


def fp32_baseline(
    model_name: str,
    epochs: int,
    train_limit: int | None,
    seed: int = 0,
    lr: float = 0.1,
    *,
    use_cache: bool = True,
    progress: bool = False,
) -> tuple[nn.Module, float]:
    """A trained FP32 model and the seconds its training took (0 when it came from the cache)."""
    info = dataset_info("fashion_mnist")
    key = {"model": model_name, "epochs": epochs, "train_limit": train_limit, "seed": seed, "lr": lr, "batch": BATCH}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = CACHE / f"fmnist_{model_name}_{epochs}ep_{digest}.pt"
    model = create_model(model_name, in_channels=info.in_channels, num_classes=info.num_classes)
    if use_cache and path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        logger.info("FP32 baseline loaded from %s", path)
        return model, 0.0
    torch.manual_seed(seed)
    train, _ = make_loaders("fashion_mnist", BATCH, train_limit=train_limit, test_limit=1, seed=seed)
    t0 = time.perf_counter()
    fit_baseline(model, train, None, epochs, lr=lr, progress=progress)
    seconds = time.perf_counter() - t0
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps({**key, "train_s": seconds}, indent=2))
    return model, seconds
