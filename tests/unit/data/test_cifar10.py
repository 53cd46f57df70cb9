"""Tests of the CIFAR-10 binary parser, lookup and download (synthetic archives only)."""

from __future__ import annotations

import hashlib
import logging
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from netsculpt.data import cifar10, load_dataset
from netsculpt.data.cifar10 import find_cifar10, load_cifar10, parse_cifar_records
from netsculpt.errors import DatasetError

from .conftest import cifar_records

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def test_parse_records_layout() -> None:
    images, labels = parse_cifar_records(cifar_records([3, 7, 0], offset=5))
    assert images.shape == (3, 3, 32, 32) and images.dtype == np.uint8
    assert labels.tolist() == [3, 7, 0] and labels.dtype == np.int64
    # 1,024 red bytes, then green, then blue: channel planes in that order
    assert images[1, 0].min() == images[1, 0].max() == 6
    assert (images[:, 1] == 100).all() and (images[:, 2] == 200).all()


def test_parse_records_rejects_partial_records() -> None:
    with pytest.raises(DatasetError, match="not a whole number of 3073-byte records; got 3072"):
        parse_cifar_records(bytes(3072), "x.bin")


def test_parse_records_rejects_bad_labels() -> None:
    with pytest.raises(DatasetError, match="label out of range in x.bin; got 10"):
        parse_cifar_records(cifar_records([1, 10]), "x.bin")


def test_load_train_and_test(tmp_path: Path, make_cifar_tar: Callable[..., Path]) -> None:
    make_cifar_tar(tmp_path / cifar10.ARCHIVE, per_batch=2)
    images, labels = load_cifar10("train", root=tmp_path)
    assert images.shape == (10, 3, 32, 32)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]  # batches 1..5 in order
    assert images[2, 0, 0, 0] == 20  # first record of data_batch_2
    images, labels = load_cifar10("test", root=tmp_path, limit=1)
    assert images.shape == (1, 3, 32, 32) and labels.tolist() == [9]


def test_load_dataset_normalizes_per_channel(tmp_path: Path, make_cifar_tar: Callable[..., Path]) -> None:
    make_cifar_tar(tmp_path / "cifar10" / cifar10.ARCHIVE)  # root/cifar10/ is searched too
    x, y = load_dataset("cifar10", "test", root=tmp_path).tensors
    assert x.shape == (2, 3, 32, 32) and str(x.dtype) == "torch.float32" and str(y.dtype) == "torch.int64"
    for channel, value in enumerate((0, 100, 200)):
        expected = (value / 255.0 - MEAN[channel]) / STD[channel]
        assert abs(float(x[0, channel, 5, 5]) - expected) < 1e-5


def test_extracted_directory(tmp_path: Path) -> None:
    batch_dir = tmp_path / cifar10.BATCH_DIR
    batch_dir.mkdir()
    (batch_dir / "test_batch.bin").write_bytes(cifar_records([4, 5, 6]))
    assert find_cifar10(tmp_path) == batch_dir
    assert find_cifar10(batch_dir) == batch_dir
    _, labels = load_cifar10("test", root=tmp_path)
    assert labels.tolist() == [4, 5, 6]
    with pytest.raises(DatasetError, match="lacks data_batch_1.bin"):
        load_cifar10("train", root=tmp_path)


def test_missing_member(tmp_path: Path, make_cifar_tar: Callable[..., Path]) -> None:
    make_cifar_tar(tmp_path / cifar10.ARCHIVE, skip="data_batch_3.bin")
    with pytest.raises(DatasetError, match="lacks data_batch_3.bin"):
        load_cifar10("train", root=tmp_path)


def test_corrupt_archive(tmp_path: Path) -> None:
    (tmp_path / cifar10.ARCHIVE).write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    with pytest.raises(DatasetError, match="cannot read"):
        load_cifar10("test", root=tmp_path)


def test_never_extracts_to_disk(tmp_path: Path, make_cifar_tar: Callable[..., Path],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    make_cifar_tar(root / cifar10.ARCHIVE)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("archive members must not be extracted to disk")

    monkeypatch.setattr(tarfile.TarFile, "extract", forbidden)
    monkeypatch.setattr(tarfile.TarFile, "extractall", forbidden)
    load_cifar10("test", root=root)
    assert sorted(p.name for p in root.iterdir()) == [cifar10.ARCHIVE]


def test_unofficial_archive_is_logged(tmp_path: Path, make_cifar_tar: Callable[..., Path],
                                      caplog: pytest.LogCaptureFixture) -> None:
    make_cifar_tar(tmp_path / cifar10.ARCHIVE)
    with caplog.at_level(logging.WARNING, logger="netsculpt.data"):
        load_cifar10("test", root=tmp_path)
    assert any("cifar10:" in r.getMessage() and "not the official release" in r.getMessage() for r in caplog.records)
    with pytest.raises(DatasetError, match=r"cifar10: .*not the official release.*--verify warn"):
        load_cifar10("test", root=tmp_path, verify="strict")
    with caplog.at_level(logging.WARNING, logger="netsculpt.data"):
        caplog.clear()
        load_cifar10("test", root=tmp_path, verify="off")
    assert not caplog.records


def test_missing_offline_explains_how_to_get_it(tmp_path: Path, empty_home: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar10", "train", root=tmp_path)
    message = str(info.value)
    assert message.startswith("cifar10: cifar-10-binary.tar.gz not found")
    assert str(empty_home / ".cache" / "netsculpt" / "cifar10") in message
    assert "download=True" in message and "--download" in message and cifar10.URL in message


def _publish(tmp_path: Path, make_cifar_tar: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> str:
    served = make_cifar_tar(tmp_path / "server" / cifar10.ARCHIVE)
    monkeypatch.setattr(cifar10, "URL", served.as_uri())
    return hashlib.md5(served.read_bytes()).hexdigest()


def test_download(tmp_path: Path, empty_home: Path, make_cifar_tar: Callable[..., Path],
                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", _publish(tmp_path, make_cifar_tar, monkeypatch))
    cache = empty_home / ".cache" / "netsculpt" / "cifar10"
    load_cifar10("test", root=tmp_path / "data", download=True)  # with a root: downloads to root/cifar10
    assert (tmp_path / "data" / "cifar10" / cifar10.ARCHIVE).is_file() and not cache.exists()
    images, _ = load_cifar10("test", download=True)  # without: to the cache
    assert images.shape == (2, 3, 32, 32)
    assert (cache / cifar10.ARCHIVE).is_file()


def test_download_checksum_mismatch(tmp_path: Path, empty_home: Path, make_cifar_tar: Callable[..., Path],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    got = _publish(tmp_path, make_cifar_tar, monkeypatch)  # the real expected MD5 stays in place
    with pytest.raises(DatasetError, match=f"expected MD5 c32a1d4ab5d03f1284b67883e8d87530, got {got}"):
        load_dataset("cifar10", "test", download=True)
    assert list((empty_home / ".cache" / "netsculpt" / "cifar10").iterdir()) == []
