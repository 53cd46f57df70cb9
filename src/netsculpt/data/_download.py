"""Checksummed downloads and the local dataset cache."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Literal

from netsculpt.errors import ConfigError, DatasetError

__all__ = ["VERIFY_MODES", "Opener", "Verify", "cache_dir", "check_verify", "download_file", "download_first",
           "md5sum", "verify_checksum"]

logger = logging.getLogger(__name__)

Opener = Callable[..., IO[bytes]]
"""A ``urllib.request.urlopen``-like callable: ``opener(request, timeout=...)`` -> binary stream."""

_CHUNK = 1 << 20
_USER_AGENT = "netsculpt (https://pypi.org/project/netsculpt)"


Verify = Literal["strict", "warn", "off"]
VERIFY_MODES: tuple[str, ...] = ("strict", "warn", "off")
"""What a local dataset file whose checksum differs from the official release does: ``strict`` refuses it
(``DatasetError``), ``warn`` logs a warning and uses it, ``off`` skips the check."""


def check_verify(verify: Any) -> Verify:
    """``verify`` if it is one of :data:`VERIFY_MODES`, else a ``ConfigError``."""
    if verify not in VERIFY_MODES:
        raise ConfigError(f"dataset: verify must be one of {', '.join(VERIFY_MODES)}; got {verify!r}.")
    return verify  # type: ignore[no-any-return]


def verify_checksum(what: str, path: Path, got: str, expected: str, verify: Verify) -> None:
    """Compare a local file's MD5 with the official one and act as ``verify`` says.

    Raises:
        DatasetError: a mismatch with ``verify="strict"``.
    """
    if got == expected:
        logger.debug("%s matches the official release (MD5 %s)", path, got)
        return
    problem = f"{what}: {path} is not the official release (MD5 {got}, expected {expected})"
    if verify == "strict":
        raise DatasetError(f"{problem}; got altered or re-packed content. Delete it and fetch the files again "
                           "(download=True, CLI --download), or pass verify='warn' (CLI --verify warn) to use it "
                           "anyway.")
    logger.warning("%s; using it anyway (verify='strict' refuses it)", problem)


def cache_dir(name: str) -> Path:
    """Returns the per-dataset download cache, ``~/.cache/netsculpt/<name>`` (not created).

    Args:
        name: The dataset name, for example ``"cifar10"``.

    Returns:
        The cache directory.
    """
    return Path.home() / ".cache" / "netsculpt" / name


def md5sum(path: Path) -> str:
    """Computes the hex MD5 digest of a file.

    Args:
        path: The file.

    Returns:
        The 32-character lowercase hex digest.
    """
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _progress(total: int | None, desc: str) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency, but optional here
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False, disable=None)


def download_file(url: str, dest: Path, md5: str, *, timeout: float = 60.0, opener: Opener | None = None) -> Path:
    """Downloads ``url`` to ``dest`` through a temporary file and verifies its MD5.

    The data goes to a temporary file next to ``dest``, which is renamed to ``dest`` only
    once the checksum matches, so an interrupted download never leaves a partial ``dest``.

    Args:
        url: Source URL (``http(s)://`` or ``file://``).
        dest: Destination file; its parent directory is created.
        md5: Expected hex MD5 digest of the file.
        timeout: Socket timeout in seconds for connecting and for each read.
        opener: Replaces :func:`urllib.request.urlopen` (tests, proxies).

    Returns:
        ``dest``.

    Raises:
        DatasetError: If the download fails or the checksum does not match; nothing is left at ``dest``.
    """
    open_url: Opener = opener if opener is not None else urllib.request.urlopen
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    logger.info("downloading %s to %s", url, dest)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with os.fdopen(fd, "wb") as out, open_url(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            total = int(length) if length and str(length).isdigit() else None
            bar = _progress(total, dest.name)
            done, next_log = 0, 0.1
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                    if total and done / total >= next_log:
                        logger.info("%s: %d%% of %d bytes", dest.name, int(100 * done / total), total)
                        next_log += 0.1
            finally:
                if bar is not None:
                    bar.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise DatasetError(f"download: could not download {url}; got {type(exc).__name__}: {exc}. "
                           f"Check the network connection, or fetch the file by hand and put it at {dest}.") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    got = digest.hexdigest()
    if got != md5.lower():
        tmp.unlink(missing_ok=True)
        raise DatasetError(f"download: checksum mismatch for {url}; expected MD5 {md5.lower()}, got {got}. "
                           f"The file was deleted; retry, or fetch it by hand and put it at {dest}.")
    tmp.replace(dest)
    logger.info("downloaded %s (%d bytes, MD5 %s verified)", dest, dest.stat().st_size, got)
    return dest


def download_first(urls: Sequence[str], dest: Path, md5: str, *, timeout: float = 60.0,
                   opener: Opener | None = None) -> Path:
    """Downloads a file from the first mirror that answers, verifying its MD5.

    Mirrors are tried in order when a download fails; a checksum mismatch is raised at once.

    Args:
        urls: Mirror URLs of the same file, preferred first.
        dest: Destination file.
        md5: Expected hex MD5 digest.
        timeout: Socket timeout in seconds.
        opener: Replaces :func:`urllib.request.urlopen`.

    Returns:
        ``dest``.

    Raises:
        DatasetError: If every mirror fails or a checksum does not match.
    """
    if not urls:
        raise DatasetError(f"download: no mirror URL for {dest.name}; got {list(urls)!r}.")
    errors: list[str] = []
    for index, url in enumerate(urls):
        try:
            return download_file(url, dest, md5, timeout=timeout, opener=opener)
        except DatasetError as exc:
            last = index == len(urls) - 1
            if "checksum mismatch" in str(exc) or last:
                if errors:
                    raise DatasetError(f"{exc} Earlier mirrors failed too: {'; '.join(errors)}") from exc
                raise
            logger.warning("%s; trying the next mirror", exc)
            errors.append(f"{url}: {exc.__cause__}")
    raise AssertionError("unreachable")  # pragma: no cover
