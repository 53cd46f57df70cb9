"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, arXiv:1708.07747): local IDX files or a checksummed download.

Files are looked for, in order, in ``root`` (and ``root/fashion_mnist``), in the directory
of the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) and
in ``~/.cache/netsculpt/fashion_mnist``. Each file may be gzip-compressed (``.gz``) or not.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Literal

import numpy as np

from netsculpt.data import _download
from netsculpt.data.idx import read_idx
from netsculpt.errors import DatasetError

__all__ = ["FILES", "MIRRORS", "NAME", "SYSTEM_DIRS", "find_fashion_mnist", "load_fashion_mnist"]

logger = logging.getLogger(__name__)

NAME = "fashion_mnist"

MIRRORS: tuple[str, ...] = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
"""Base URLs of the official files, tried in order."""

FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
"""MD5 of each ``.gz`` file as published in the fashion-mnist README (used for downloads)."""

CONTENT_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
"""MD5 of each file once decompressed. Repackaged copies (Debian recompresses the ``.gz``
files, dropping the file name from the gzip header) differ in the ``.gz`` MD5 but not here."""

SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)
"""Directories of system packages that ship the files (Debian: ``dataset-fashion-mnist``)."""

_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def _split_files(split: str) -> tuple[str, str]:
    prefix = _SPLIT_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _candidate_dirs(root: str | Path | None) -> list[Path]:
    dirs: list[Path] = []
    if root is not None:
        dirs += [Path(root).expanduser(), Path(root).expanduser() / NAME]
    dirs += list(SYSTEM_DIRS)
    dirs.append(_download.cache_dir(NAME))
    return dirs


def _find_in(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def find_fashion_mnist(split: Literal["train", "test"], root: str | Path | None = None) -> tuple[Path, Path] | None:
    """Finds the image and label files of a split.

    Args:
        split: ``"train"`` or ``"test"``.
        root: A directory to search before the system and cache directories.

    Returns:
        ``(images, labels)`` from the first directory that has both, or ``None``.
    """
    stems = _split_files(split)
    for directory in _candidate_dirs(root):
        found = [_find_in(directory, stem) for stem in stems]
        if found[0] is not None and found[1] is not None:
            logger.debug("fashion_mnist %s split found in %s", split, directory)
            return found[0], found[1]
    return None


def _download_split(split: str, root: str | Path | None) -> tuple[Path, Path]:
    target = Path(root).expanduser() / NAME if root is not None else _download.cache_dir(NAME)
    paths = []
    for stem in _split_files(split):
        name = f"{stem}.gz"
        dest = target / name
        if not dest.is_file():
            _download.download_first([base + name for base in MIRRORS], dest, FILES[name])
        paths.append(dest)
    return paths[0], paths[1]


def _not_found(split: str, root: str | Path | None) -> DatasetError:
    looked = ", ".join(str(d) for d in _candidate_dirs(root))
    files = ", ".join(f"{stem}.gz" for stem in _split_files(split))
    target = Path(root).expanduser() if root is not None else _download.cache_dir(NAME)
    return DatasetError(
        f"fashion_mnist: {split} files not found; got nothing in {looked}. Install them with "
        f"`apt-get install dataset-fashion-mnist`, pass download=True (CLI: --download), "
        f"or put {files} in {target}."
    )


def _check_content(path: Path, data: np.ndarray, verify: _download.Verify) -> None:
    stem = path.name.removesuffix(".gz")
    expected = CONTENT_MD5.get(stem)
    if expected is None or verify == "off":
        return
    ndim = data.ndim
    header = bytes([0, 0, 0x08, ndim]) + np.asarray(data.shape, dtype=">u4").tobytes()
    got = hashlib.md5(header + data.tobytes(), usedforsecurity=False).hexdigest()
    _download.verify_checksum("fashion_mnist", path, got, expected, verify)


def load_fashion_mnist(split: Literal["train", "test"], *, root: str | Path | None = None, download: bool = False,
                       limit: int | None = None, verify: _download.Verify = "warn") -> tuple[np.ndarray, np.ndarray]:
    """Loads a Fashion-MNIST split as raw arrays.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
        root: A directory to search first; downloads go to ``root/fashion_mnist`` when given,
            else to ``~/.cache/netsculpt/fashion_mnist``.
        download: Download the files (MD5-checked) when they are not found locally.
        limit: Keep only the first ``limit`` examples.
        verify: Files whose decompressed content differs from the official release: ``"strict"`` raises,
            ``"warn"`` (default) logs a warning, ``"off"`` does not check (repackaged ``.gz`` files pass).

    Returns:
        ``(images, labels)``: uint8 images of shape ``(N, 1, 28, 28)`` and int64 labels in ``[0, 10)``.

    Raises:
        DatasetError: If the files are missing (and ``download`` is false), cannot be
            downloaded, or are corrupt (or differ from the official release, with ``verify="strict"``).
    """
    verify = _download.check_verify(verify)
    found = find_fashion_mnist(split, root)
    if found is None:
        if not download:
            raise _not_found(split, root)
        found = _download_split(split, root)
    image_path, label_path = found
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(f"fashion_mnist: unexpected array layout in {image_path.parent}; got images "
                           f"{images.dtype}{list(images.shape)}, labels {labels.dtype}{list(labels.shape)}. Expected "
                           "uint8 images (N, H, W) and uint8 labels (N,); fetch the files again.")
    if len(images) != len(labels):
        raise DatasetError(f"fashion_mnist: {len(images)} images but {len(labels)} labels in {image_path.parent}; "
                           "got mismatched files. Fetch the files again.")
    if labels.size and int(labels.max()) >= 10:
        raise DatasetError(f"fashion_mnist: label out of range in {label_path}; got {int(labels.max())}, "
                           "expected 0-9. Fetch the files again.")
    _check_content(image_path, images, verify)
    _check_content(label_path, labels, verify)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images[:, None, :, :], labels.astype(np.int64)
