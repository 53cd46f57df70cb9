"""Tests of the IDX reader/writer."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from netsculpt.data.idx import read_idx, write_idx
from netsculpt.errors import DatasetError


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_roundtrip_uint8(tmp_path: Path, name: str) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    got = read_idx(path)
    assert got.dtype == np.uint8 and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_roundtrip_big_endian_types(tmp_path: Path, dtype: type[np.generic]) -> None:
    array = np.array([[-3, 1], [2, 300]], dtype=np.int64).astype(dtype) if dtype != np.int8 else np.array([-3, 5])
    array = array.astype(dtype)
    got = read_idx(write_idx(tmp_path / "x.idx", array))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, array)


def test_header_is_big_endian(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels", np.array([7, 8, 9], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])


@pytest.mark.parametrize("head", [b"\x00\x00\x08", b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00", b""])
def test_bad_magic(tmp_path: Path, head: bytes) -> None:
    path = tmp_path / "bad"
    path.write_bytes(head + b"\x00\x00\x00\x01\x05")
    with pytest.raises(DatasetError, match="bad magic number"):
        read_idx(path)


def test_bad_magic_inside_gzip(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(DatasetError, match=r"bad magic number .*3c68746d"):
        read_idx(path)


def test_truncated_data(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x", np.zeros((4, 5), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DatasetError, match="size does not match"):
        read_idx(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 1]))
    with pytest.raises(DatasetError, match="truncated header"):
        read_idx(path)


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"\x00" * 100)[:20])
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "missing")


def test_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no IDX type code"):
        write_idx(tmp_path / "x", np.zeros(2, dtype=np.uint16))
