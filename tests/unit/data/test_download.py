"""Tests of checksummed downloads (file:// URLs and fake openers; no network)."""

from __future__ import annotations

import hashlib
import io
import logging
import urllib.error
from pathlib import Path
from typing import Any

import pytest

from netsculpt.data import _download
from netsculpt.data._download import cache_dir, download_file, download_first, md5sum
from netsculpt.errors import DatasetError

PAYLOAD = b"netsculpt test payload\n" * 1000
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src" / "file.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    return src


def test_md5sum(tmp_path: Path) -> None:
    assert md5sum(_source(tmp_path)) == PAYLOAD_MD5


def test_cache_dir_under_home(empty_home: Path) -> None:
    assert cache_dir("cifar10") == empty_home / ".cache" / "netsculpt" / "cifar10"


def test_download_file_url(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "nested" / "file.bin"
    assert download_file(_source(tmp_path).as_uri(), dest, PAYLOAD_MD5) == dest
    assert dest.read_bytes() == PAYLOAD
    assert [p.name for p in dest.parent.iterdir()] == ["file.bin"]  # no temporary file left behind


def test_checksum_mismatch_deletes_file(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "file.bin"
    wrong = "0" * 32
    with pytest.raises(DatasetError, match=f"checksum mismatch .*expected MD5 {wrong}, got {PAYLOAD_MD5}"):
        download_file(_source(tmp_path).as_uri(), dest, wrong)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_network_error(tmp_path: Path) -> None:
    def offline(request: Any, timeout: float) -> Any:
        raise urllib.error.URLError("no route to host")

    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(DatasetError, match="could not download http://example.invalid/f.*no route to host"):
        download_file("http://example.invalid/f", dest, PAYLOAD_MD5, opener=offline)
    assert list(dest.parent.iterdir()) == []


class _FakeResponse(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def test_injected_opener_gets_timeout_and_logs_progress(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[str, float]] = []

    def opener(request: Any, timeout: float) -> _FakeResponse:
        calls.append((request.full_url, timeout))
        return _FakeResponse(PAYLOAD)

    monkey_chunk = 4096
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_download, "_CHUNK", monkey_chunk)
        with caplog.at_level(logging.INFO, logger="netsculpt.data._download"):
            download_file("https://example.org/f.bin", tmp_path / "f.bin", PAYLOAD_MD5, timeout=7.5, opener=opener)
    assert calls == [("https://example.org/f.bin", 7.5)]
    assert any("100%" in r.getMessage() for r in caplog.records)
    assert any("MD5" in r.getMessage() and "verified" in r.getMessage() for r in caplog.records)


def test_download_first_falls_back_to_next_mirror(tmp_path: Path) -> None:
    missing = (tmp_path / "nope" / "file.bin").as_uri()
    dest = tmp_path / "out" / "file.bin"
    download_first([missing, _source(tmp_path).as_uri()], dest, PAYLOAD_MD5)
    assert dest.read_bytes() == PAYLOAD


def test_download_first_all_mirrors_fail(tmp_path: Path) -> None:
    urls = [(tmp_path / name).as_uri() for name in ("a", "b")]
    with pytest.raises(DatasetError, match="Earlier mirrors failed too"):
        download_first(urls, tmp_path / "out" / "f", PAYLOAD_MD5)


def test_download_first_stops_at_checksum_mismatch(tmp_path: Path) -> None:
    def must_not_be_called(request: Any, timeout: float) -> Any:
        raise AssertionError("second mirror tried after a checksum mismatch")

    src = _source(tmp_path).as_uri()
    with pytest.raises(DatasetError, match="checksum mismatch"):
        download_first([src, "http://example.invalid/f"], tmp_path / "out" / "f", "1" * 32)
    with pytest.raises(DatasetError):
        download_first([], tmp_path / "out" / "f", "1" * 32, opener=must_not_be_called)
