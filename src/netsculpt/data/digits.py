"""The 8x8 handwritten digits of scikit-learn (UCI optdigits test set, 1,797 images).

The images ship with scikit-learn, so no download is ever needed. The split is a fixed,
seeded permutation: the first 80% is ``train``, the rest ``test``.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
from pathlib import Path
from typing import Literal

import numpy as np

from netsculpt.errors import DatasetError

__all__ = ["SPLIT_SEED", "TRAIN_FRACTION", "load_digits_arrays"]

logger = logging.getLogger(__name__)

SPLIT_SEED = 0
TRAIN_FRACTION = 0.8
_NUM_IMAGES = 1797


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """Returns all 1,797 images (float64 in [0, 1], ``(N, 8, 8)``) and labels (int64)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise DatasetError("digits: scikit-learn is not installed; got no module 'sklearn'. Install it with "
                           "`pip install scikit-learn` (or `pip install netsculpt[digits]`).")
    # Importing sklearn.datasets pulls in scipy and takes seconds; the data is one small CSV
    # file inside the package, so read it directly when it is where load_digits reads it from.
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if csv.is_file():
        try:
            with gzip.open(csv, "rt") as stream:
                table = np.loadtxt(stream, delimiter=",", ndmin=2)
        except (OSError, EOFError, ValueError) as exc:
            raise DatasetError(f"digits: cannot read {csv}; got {type(exc).__name__}: {exc}. "
                               "Reinstall scikit-learn.") from exc
        if table.shape == (_NUM_IMAGES, 65):
            return table[:, :-1].reshape(-1, 8, 8) / 16.0, table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.asarray(bunch.images, dtype=np.float64) / 16.0, np.asarray(bunch.target, dtype=np.int64)


def load_digits_arrays(split: Literal["train", "test"], *, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Loads a split of scikit-learn's digits.

    Args:
        split: ``"train"`` (1,438 images) or ``"test"`` (359 images).
        limit: Keep only the first ``limit`` examples of the split.

    Returns:
        ``(images, labels)``: float64 images ``(N, 1, 8, 8)`` scaled to ``[0, 1]`` and int64 labels in ``[0, 10)``.

    Raises:
        DatasetError: If scikit-learn is not installed or its copy of the data is unreadable.
    """
    images, labels = _read_digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    cut = int(round(TRAIN_FRACTION * len(labels)))
    index = order[:cut] if split == "train" else order[cut:]
    if limit is not None:
        index = index[:limit]
    logger.debug("digits %s: %d images", split, len(index))
    return images[index][:, None, :, :], labels[index]
