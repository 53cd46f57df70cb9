"""Fixtures of the data tests: an empty home directory (so no real cache is used) and fake files."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from netsculpt.data import fashion_mnist
from netsculpt.data.idx import write_idx


@pytest.fixture(autouse=True)
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Points ``~`` (and so ``~/.cache/netsculpt``) at an empty temporary directory."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def no_system_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hides ``/usr/share/datasets/fashion-mnist`` so lookups see only the test's files."""
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", ())


def fake_fashion_mnist(directory: Path, n_train: int = 12, n_test: int = 5, *, compress: bool = True) -> Path:
    """Writes small Fashion-MNIST-shaped IDX files: image ``i`` is filled with ``i * 10``, label ``i % 10``."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.repeat((np.arange(n, dtype=np.uint8) * 10)[:, None, None], 28 * 28, axis=1).reshape(n, 28, 28)
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", (np.arange(n) % 10).astype(np.uint8))
    return directory


def cifar_records(labels: list[int], offset: int = 0) -> bytes:
    """Builds CIFAR binary records; record ``i`` has red = i + offset, green = 100, blue = 200."""
    out = bytearray()
    for i, label in enumerate(labels):
        out.append(label)
        out += bytes([(i + offset) % 256]) * 1024 + bytes([100]) * 1024 + bytes([200]) * 1024
    return bytes(out)


def fake_cifar_tar(path: Path, per_batch: int = 2, *, skip: str | None = None) -> Path:
    """Writes a tiny ``cifar-10-binary.tar.gz``: batch ``b`` (1-5) has labels ``b - 1``, test has label 9."""
    path.parent.mkdir(parents=True, exist_ok=True)
    members = {f"data_batch_{b}.bin": cifar_records([b - 1] * per_batch, offset=10 * b) for b in range(1, 6)}
    members["test_batch.bin"] = cifar_records([9] * per_batch)
    members["batches.meta.txt"] = b"airplane\nautomobile\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            if name == skip:
                continue
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    return path


@pytest.fixture
def make_fashion_mnist() -> Callable[..., Path]:
    """The :func:`fake_fashion_mnist` writer."""
    return fake_fashion_mnist


@pytest.fixture
def make_cifar_tar() -> Callable[..., Path]:
    """The :func:`fake_cifar_tar` writer."""
    return fake_cifar_tar
