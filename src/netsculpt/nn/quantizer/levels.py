"""Integer level ranges of the fake quantisers (ALGORITHMS.md §8.1).

The table, for ``b`` bits:

============================  ==========================  ==========================
mode / signedness             full range                  ``narrow_range=True``
============================  ==========================  ==========================
symmetric, signed             [-2^(b-1), 2^(b-1) - 1]     [-(2^(b-1) - 1), 2^(b-1) - 1]
symmetric, unsigned           [0, 2^b - 1]                [0, 2^b - 2]
asymmetric (any signedness)   [0, 2^b - 1]                [0, 2^b - 2]
============================  ==========================  ==========================

``narrow_range`` drops one level: the most negative one for signed symmetric quantisers (so the
grid is symmetric around zero, as used for 8-bit weights) and the top one otherwise.
"""

from __future__ import annotations

from typing import Literal

from netsculpt.errors import ConfigError

__all__ = ["MAX_BITS", "MIN_BITS", "QuantizationMode", "level_range"]

QuantizationMode = Literal["symmetric", "asymmetric"]

MIN_BITS = 2
MAX_BITS = 8


def level_range(
    bits: int,
    *,
    mode: QuantizationMode,
    signed: bool,
    narrow_range: bool,
) -> tuple[int, int]:
    """Returns the inclusive integer range ``(level_low, level_high)`` of a quantiser.

    Args:
        bits: Number of bits, 2 to 8.
        mode: ``"symmetric"`` or ``"asymmetric"``.
        signed: Whether a symmetric quantiser covers negative values; ignored for asymmetric ones
            (their range is always ``[0, 2^b - 1]`` shifted by an integer zero point).
        narrow_range: Drop one level (see the module docstring).

    Returns:
        ``(level_low, level_high)``.

    Raises:
        ConfigError: If ``bits`` is not an int in 2..8 or ``mode`` is unknown.
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ConfigError(f"quantizer bits: must be an integer in {MIN_BITS}..{MAX_BITS}; got {bits!r}.")
    if mode == "symmetric" and signed:
        half = 2 ** (bits - 1)
        return (-(half - 1) if narrow_range else -half), half - 1
    if mode in ("symmetric", "asymmetric"):
        top = 2**bits - 1
        return 0, (top - 1 if narrow_range else top)
    raise ConfigError(f"quantizer mode: must be 'symmetric' or 'asymmetric'; got {mode!r}.")
