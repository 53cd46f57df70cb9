"""Canvas generation: deterministic, and every box / mask matches the pasted item pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest

from netsculpt.data.canvas import (
    FOREGROUND_THRESHOLD,
    ITEM,
    compose_canvases,
    detection_dataset,
    load_canvases,
    segmentation_dataset,
)
from netsculpt.data.fashion_mnist import find_fashion_mnist
from netsculpt.errors import ConfigError


def _items(n: int = 12, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Blobs of random size and place inside 28x28, with faint noise below the foreground threshold."""
    rng = np.random.default_rng(seed)
    items = rng.integers(0, FOREGROUND_THRESHOLD + 1, size=(n, ITEM, ITEM)).astype(np.uint8)
    for i in range(n):
        y0, x0 = rng.integers(0, 10, size=2)
        h, w = rng.integers(5, 18, size=2)
        items[i, y0:y0 + h, x0:x0 + w] = rng.integers(FOREGROUND_THRESHOLD + 1, 256, size=(h, w))
    return items, np.arange(n) % 10


def _check(made, items: np.ndarray, labels: np.ndarray) -> int:
    """Every pasted item against the canvas, box and mask; returns how many items were checked."""
    checked = 0
    for n in range(len(made)):
        expected_mask = np.zeros_like(made.masks[n])
        for k in np.flatnonzero(made.labels[n] >= 0):
            src, (y, x) = made.sources[n, k], made.offsets[n, k]
            assert made.labels[n, k] == labels[src]
            np.testing.assert_array_equal(made.images[n, y:y + ITEM, x:x + ITEM], items[src])
            fg = np.argwhere(items[src] > FOREGROUND_THRESHOLD)  # (row, col) of the garment pixels
            want = [x + fg[:, 1].min(), y + fg[:, 0].min(), x + fg[:, 1].max() + 1, y + fg[:, 0].max() + 1]
            np.testing.assert_array_equal(made.boxes[n, k], np.array(want, np.float32))
            expected_mask[y:y + ITEM, x:x + ITEM][items[src] > FOREGROUND_THRESHOLD] = labels[src] + 1
            checked += 1
        np.testing.assert_array_equal(made.masks[n], expected_mask)
        # pixels outside every pasted 28x28 square are blank
        covered = np.zeros(made.images[n].shape, bool)
        for k in np.flatnonzero(made.labels[n] >= 0):
            y, x = made.offsets[n, k]
            covered[y:y + ITEM, x:x + ITEM] = True
        assert not made.images[n][~covered].any()
    return checked


def test_boxes_and_masks_match_the_pasted_items() -> None:
    items, labels = _items()
    made = compose_canvases(items, labels, 40, size=64, max_items=3, seed=1)
    assert _check(made, items, labels) >= 40
    counts = (made.labels >= 0).sum(1)
    assert counts.min() >= 1 and counts.max() == 3


def test_items_do_not_overlap() -> None:
    items, labels = _items()
    made = compose_canvases(items, labels, 40, size=64, max_items=3, seed=2)
    for n in range(len(made)):
        pos = [tuple(made.offsets[n, k]) for k in np.flatnonzero(made.labels[n] >= 0)]
        for i, (y1, x1) in enumerate(pos):
            for y2, x2 in pos[i + 1:]:
                assert abs(y1 - y2) >= ITEM or abs(x1 - x2) >= ITEM


def test_deterministic_per_seed() -> None:
    items, labels = _items()
    a = compose_canvases(items, labels, 20, seed=3)
    b = compose_canvases(items, labels, 20, seed=3)
    c = compose_canvases(items, labels, 20, seed=4)
    for field in ("images", "boxes", "labels", "masks", "sources", "offsets"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.images, c.images)


def test_datasets_carry_boxes_and_masks() -> None:
    items, labels = _items()
    made = compose_canvases(items, labels, 6, seed=0)
    x, t = detection_dataset(made)[0]
    assert x.shape == (1, 64, 64) and float(x.max()) <= 1.0
    assert t.shape == (3, 5)
    np.testing.assert_array_equal(t[:, 0].numpy(), made.labels[0].astype(np.float32))
    np.testing.assert_allclose(t[:, 1:].numpy(), made.boxes[0])
    _, mask = segmentation_dataset(made)[0]
    np.testing.assert_array_equal(mask.numpy(), made.masks[0])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"count": 0}, "count"), ({"size": 20}, "size"), ({"max_items": 0}, "max_items"),
])
def test_bad_arguments_raise(kwargs: dict[str, int], match: str) -> None:
    items, labels = _items()
    args = {"count": 2, "size": 64, "max_items": 3, **kwargs}
    with pytest.raises(ConfigError, match=match):
        compose_canvases(items, labels, **args)
    with pytest.raises(ConfigError, match="uint8"):
        compose_canvases(items.astype(np.float32), labels, 2)


@pytest.mark.skipif(find_fashion_mnist("test") is None, reason="Fashion-MNIST not installed")
def test_real_fashion_mnist_canvases() -> None:
    from netsculpt.data.fashion_mnist import load_fashion_mnist

    made = load_canvases("test", 30, seed=0)
    items, labels = load_fashion_mnist("test")
    assert _check(made, items[:, 0], labels) >= 30
    again = load_canvases("test", 30, seed=0)
    np.testing.assert_array_equal(made.images, again.images)
