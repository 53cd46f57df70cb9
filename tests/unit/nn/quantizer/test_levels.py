"""Level table of ALGORITHMS.md §8.1."""

from __future__ import annotations

import pytest

from netsculpt.errors import ConfigError
from netsculpt.nn.quantizer import level_range

TABLE = {
    # bits: (signed, signed narrow, unsigned, unsigned narrow)
    2: ((-2, 1), (-1, 1), (0, 3), (0, 2)),
    3: ((-4, 3), (-3, 3), (0, 7), (0, 6)),
    4: ((-8, 7), (-7, 7), (0, 15), (0, 14)),
    5: ((-16, 15), (-15, 15), (0, 31), (0, 30)),
    6: ((-32, 31), (-31, 31), (0, 63), (0, 62)),
    7: ((-64, 63), (-63, 63), (0, 127), (0, 126)),
    8: ((-128, 127), (-127, 127), (0, 255), (0, 254)),
}


@pytest.mark.parametrize("bits", sorted(TABLE))
def test_level_table(bits: int) -> None:
    signed, signed_narrow, unsigned, unsigned_narrow = TABLE[bits]
    assert level_range(bits, mode="symmetric", signed=True, narrow_range=False) == signed
    assert level_range(bits, mode="symmetric", signed=True, narrow_range=True) == signed_narrow
    assert level_range(bits, mode="symmetric", signed=False, narrow_range=False) == unsigned
    assert level_range(bits, mode="symmetric", signed=False, narrow_range=True) == unsigned_narrow
    for signed_flag in (False, True):  # asymmetric ignores signedness
        assert level_range(bits, mode="asymmetric", signed=signed_flag, narrow_range=False) == unsigned
        assert level_range(bits, mode="asymmetric", signed=signed_flag, narrow_range=True) == unsigned_narrow


@pytest.mark.parametrize("bits", [0, 1, 9, 16, 8.0, True, "8"])
def test_bits_out_of_range(bits: object) -> None:
    with pytest.raises(ConfigError, match="bits"):
        level_range(bits, mode="symmetric", signed=True, narrow_range=False)  # type: ignore[arg-type]


def test_unknown_mode() -> None:
    with pytest.raises(ConfigError, match="mode"):
        level_range(8, mode="affine", signed=True, narrow_range=False)  # type: ignore[arg-type]
