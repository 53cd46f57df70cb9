"""Range collectors against the same statistics computed with numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from netsculpt.errors import ConfigError, NetsculptError
from netsculpt.nn.quantizer import RANGE_COLLECTOR_KINDS, RangeCollector, make_range_collector

# (reduce_axis, numpy axes reduced per batch) for NCHW batches
AXES = [(None, None), (1, (0, 2, 3)), (-3, (0, 2, 3)), (0, (1, 2, 3))]


def _batches(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(4):
        b = rng.standard_normal((3, 4, 5, 5 + i)).astype(np.float32) * (1 + i) + 0.3 * i
        out.append(b)
    return out


def _per_channel(values: np.ndarray, keep: int | None) -> np.ndarray:
    """[N] (per-tensor) or [C, N] rows like the collector."""
    if keep is None:
        return values.reshape(-1)
    return np.moveaxis(values, keep, 0).reshape(values.shape[keep], -1)


def _run(kind: str, axis: int | None, batches: list[np.ndarray], **kw: float) -> tuple[np.ndarray, np.ndarray]:
    c = make_range_collector(kind, reduce_axis=axis, **kw)  # type: ignore[arg-type]
    assert isinstance(c, RangeCollector)
    for b in batches:
        c.update(torch.from_numpy(b))
    lo, hi = c.range()
    return lo.numpy(), hi.numpy()


def _keep_axis(axis: int | None) -> int | None:
    return None if axis is None else axis % 4


@pytest.mark.parametrize(("axis", "dims"), AXES)
def test_min_max_family(axis: int | None, dims: tuple[int, ...] | None) -> None:
    batches = _batches()
    mins = np.stack([b.min(axis=dims) for b in batches])
    maxs = np.stack([b.max(axis=dims) for b in batches])
    expected = {
        "min_max": (mins.min(0), maxs.max(0)),
        "mixed_min_max": (mins.min(0), maxs.mean(0)),
        "mean_min_max": (mins.mean(0), maxs.mean(0)),
    }
    for kind, (lo, hi) in expected.items():
        got_lo, got_hi = _run(kind, axis, batches)
        assert got_lo.shape == lo.shape
        np.testing.assert_allclose(got_lo, lo, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got_hi, hi, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("axis", "dims"), AXES)
def test_threesigma_and_percentile(axis: int | None, dims: tuple[int, ...] | None) -> None:
    batches = _batches(1)
    keep = _keep_axis(axis)
    rows = np.concatenate([_per_channel(b, keep) for b in batches], axis=-1).astype(np.float64)
    median = np.median(rows, axis=-1)
    mad = np.median(np.abs(rows - median[..., None]), axis=-1)
    lo, hi = _run("threesigma", axis, batches)
    np.testing.assert_allclose(lo, median - 3 * mad, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hi, median + 3 * mad, rtol=1e-5, atol=1e-5)

    lo, hi = _run("percentile", axis, batches, min_percentile=2.5, max_percentile=97.0)
    np.testing.assert_allclose(lo, np.percentile(rows, 2.5, axis=-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hi, np.percentile(rows, 97.0, axis=-1), rtol=1e-5, atol=1e-5)

    per_batch = [_per_channel(b, keep).astype(np.float64) for b in batches]
    lo, hi = _run("mean_percentile", axis, batches)
    np.testing.assert_allclose(
        lo, np.mean([np.percentile(r, 0.1, axis=-1) for r in per_batch], 0), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        hi, np.mean([np.percentile(r, 99.9, axis=-1) for r in per_batch], 0), rtol=1e-5, atol=1e-5
    )


def test_sample_is_bounded_and_unbiased() -> None:
    gen = torch.Generator().manual_seed(0)
    c = make_range_collector("percentile", min_percentile=5.0, max_percentile=95.0, max_values=4096)
    seen = []
    for i in range(20):  # later batches are shifted: a biased sample would favour them
        b = torch.rand(2000, generator=gen) + i * 0.05
        seen.append(b)
        c.update(b)
    values = c._sampler._values  # type: ignore[attr-defined]
    assert values is not None and values.numel() == 4096
    all_values = torch.cat(seen).numpy()
    lo, hi = c.range()
    assert lo.item() == pytest.approx(np.percentile(all_values, 5.0), abs=0.03)
    assert hi.item() == pytest.approx(np.percentile(all_values, 95.0), abs=0.03)
    pc = make_range_collector("threesigma", reduce_axis=0, max_values=300)
    pc.update(torch.randn(3, 1000, generator=gen))
    assert pc._sampler._values.shape == (3, 100)  # type: ignore[attr-defined]


def test_errors() -> None:
    with pytest.raises(ConfigError, match="min_max, mixed_min_max"):
        make_range_collector("minmax")
    with pytest.raises(ConfigError, match="percentiles"):
        make_range_collector("percentile", min_percentile=50, max_percentile=10)
    with pytest.raises(ConfigError, match="max_values"):
        make_range_collector("percentile", max_values=0)
    for kind in RANGE_COLLECTOR_KINDS:
        with pytest.raises(NetsculptError, match="no data"):
            make_range_collector(kind).range()
