"""CIFAR-10 (Krizhevsky 2009) from the official *binary* archive, parsed with numpy (never unpickled).

``cifar-10-binary.tar.gz`` holds ``cifar-10-batches-bin/data_batch_{1..5}.bin`` and
``test_batch.bin``: 10,000 records each of 1 label byte followed by 3,072 pixel bytes
(1,024 red, then green, then blue, rows of 32 in order). The archive (or its extracted
``cifar-10-batches-bin`` directory) is looked for in ``root``, ``root/cifar10`` and
``~/.cache/netsculpt/cifar10``. Members are read in memory; nothing is extracted to disk.
"""

from __future__ import annotations

import logging
import tarfile
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from netsculpt.data import _download
from netsculpt.errors import DatasetError

__all__ = ["ARCHIVE", "ARCHIVE_MD5", "NAME", "URL", "find_cifar10", "load_cifar10", "parse_cifar_records"]

logger = logging.getLogger(__name__)

NAME = "cifar10"
ARCHIVE = "cifar-10-binary.tar.gz"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
"""MD5 of ``cifar-10-binary.tar.gz`` as published on https://www.cs.toronto.edu/~kriz/cifar.html."""

BATCH_DIR = "cifar-10-batches-bin"
_RECORD = 1 + 3 * 32 * 32
_SPLIT_MEMBERS = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}


def parse_cifar_records(raw: bytes, source: str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """Parses CIFAR-10 binary records.

    Args:
        raw: Concatenated records of 1 label byte and 3,072 pixel bytes.
        source: Where the bytes come from, for error messages.

    Returns:
        ``(images, labels)``: uint8 images ``(N, 3, 32, 32)`` and int64 labels in ``[0, 10)``.

    Raises:
        DatasetError: If the size is not a whole number of records or a label is out of range.
    """
    if len(raw) % _RECORD:
        raise DatasetError(f"cifar10: {source} is not a whole number of {_RECORD}-byte records; got {len(raw)} "
                           "bytes. The archive is truncated or not the binary version; fetch it again.")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.size and int(labels.max()) >= 10:
        raise DatasetError(f"cifar10: label out of range in {source}; got {int(labels.max())}, expected 0-9. "
                           "The file is corrupt or not CIFAR-10; fetch it again.")
    images = records[:, 1:].reshape(-1, 3, 32, 32).copy()
    return images, labels


def _candidate_dirs(root: str | Path | None) -> list[Path]:
    dirs: list[Path] = []
    if root is not None:
        dirs += [Path(root).expanduser(), Path(root).expanduser() / NAME]
    dirs.append(_download.cache_dir(NAME))
    return dirs


def find_cifar10(root: str | Path | None = None) -> Path | None:
    """Finds the binary archive or an extracted ``cifar-10-batches-bin`` directory.

    Args:
        root: A directory to search before the cache directory.

    Returns:
        The archive or the batch directory, or ``None`` when neither exists.
    """
    for directory in _candidate_dirs(root):
        if (directory / ARCHIVE).is_file():
            return directory / ARCHIVE
        if (directory / BATCH_DIR / "test_batch.bin").is_file():
            return directory / BATCH_DIR
        if directory.name == BATCH_DIR and (directory / "test_batch.bin").is_file():
            return directory
    return None


def _read_members(archive: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if base in names and member.isfile() and base not in found:
                    stream = tar.extractfile(member)
                    if stream is not None:
                        found[base] = stream.read()
                    if len(found) == len(names):
                        break
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise DatasetError(f"cifar10: cannot read {archive}; got {type(exc).__name__}: {exc}. "
                           "The archive is corrupt; delete it and fetch it again.") from exc
    return found


def _read_batches(location: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    if location.is_dir():
        return {name: (location / name).read_bytes() for name in names if (location / name).is_file()}
    return _read_members(location, names)


def _check_archive(path: Path, verify: _download.Verify) -> None:
    if verify != "off":
        _download.verify_checksum("cifar10", path, _download.md5sum(path), ARCHIVE_MD5, verify)


def _not_found(root: str | Path | None) -> DatasetError:
    looked = ", ".join(str(d) for d in _candidate_dirs(root))
    target = Path(root).expanduser() if root is not None else _download.cache_dir(NAME)
    return DatasetError(
        f"cifar10: {ARCHIVE} not found; got nothing in {looked}. Pass download=True (CLI: --download) to fetch "
        f"it from {URL} (162 MB, MD5-checked), or put {ARCHIVE} (or its extracted {BATCH_DIR}/ directory) in {target}."
    )


def load_cifar10(split: Literal["train", "test"], *, root: str | Path | None = None, download: bool = False,
                 limit: int | None = None, verify: _download.Verify = "warn") -> tuple[np.ndarray, np.ndarray]:
    """Loads a CIFAR-10 split as raw arrays.

    Args:
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000 images).
        root: A directory to search first; downloads go to ``root/cifar10`` when given,
            else to ``~/.cache/netsculpt/cifar10``.
        download: Download the archive (MD5-checked) when it is not found locally.
        limit: Keep only the first ``limit`` examples.
        verify: A local archive whose MD5 differs from the official release: ``"strict"`` raises, ``"warn"``
            (default) logs a warning, ``"off"`` does not check. An extracted batch directory is not checked.

    Returns:
        ``(images, labels)``: uint8 images ``(N, 3, 32, 32)`` and int64 labels in ``[0, 10)``.

    Raises:
        DatasetError: If the archive is missing (and ``download`` is false), cannot be
            downloaded, is corrupt, or lacks a batch file.
    """
    verify = _download.check_verify(verify)
    location = find_cifar10(root)
    if location is None:
        if not download:
            raise _not_found(root)
        target = Path(root).expanduser() / NAME if root is not None else _download.cache_dir(NAME)
        location = _download.download_first([URL], target / ARCHIVE, ARCHIVE_MD5)
    elif location.is_file():
        _check_archive(location, verify)
    else:
        logger.info("cifar10: %s is an extracted directory; its files cannot be checked against the release", location)
    names = _SPLIT_MEMBERS[split]
    batches = _read_batches(location, names)
    missing = [name for name in names if name not in batches]
    if missing:
        raise DatasetError(f"cifar10: {location} lacks {', '.join(missing)}; got {sorted(batches) or 'no batches'}. "
                           f"It is not the binary CIFAR-10 release ({ARCHIVE}); fetch it again.")
    parts = [parse_cifar_records(batches[name], f"{location}:{name}") for name in names]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    logger.debug("cifar10 %s: %d images from %s", split, len(images), location)
    return images, labels
