"""Reader for the IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed).

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32
dimension sizes, then the array in C order and big-endian byte order.
See http://yann.lecun.com/exdb/mnist/ ("FILE FORMATS FOR THE MNIST DATABASE").
"""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

import numpy as np

from netsculpt.errors import DatasetError

__all__ = ["read_idx", "write_idx"]

logger = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"

# IDX type byte -> numpy dtype (big-endian).
_DTYPES: dict[int, np.dtype[np.generic]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            return gzip.decompress(raw)
        return raw
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"idx: cannot read {path}; got {type(exc).__name__}: {exc}. "
                           "The file is missing or corrupt; delete it and fetch it again.") from exc


def read_idx(path: str | Path) -> np.ndarray:
    """Reads an IDX file (optionally gzip-compressed) into a numpy array.

    Args:
        path: The ``.idx*-ubyte`` or ``.idx*-ubyte.gz`` file.

    Returns:
        The array, in native byte order, with the shape stored in the file.

    Raises:
        DatasetError: If the file cannot be read, its magic number is wrong, or its size does
            not match its header.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES or data[3] == 0:
        raise DatasetError(f"idx: bad magic number in {path}; got {data[:4].hex() or 'an empty file'}, expected "
                           "00 00 <type 08-0e> <ndim>. The file is not an IDX file; delete it and fetch it again.")
    dtype, ndim = _DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"idx: truncated header in {path}; got {len(data)} bytes, expected at least {header}. "
                           "Delete the file and fetch it again.")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DatasetError(f"idx: size does not match the header in {path}; got {len(data)} bytes, expected "
                           f"{expected} for shape {shape}. The file is truncated or corrupt; fetch it again.")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    logger.debug("read %s: shape %s, dtype %s", path, shape, dtype)
    return array.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Writes an array as an IDX file; the inverse of :func:`read_idx` (handy for tests and tools).

    Args:
        path: Destination file.
        array: Array of a dtype IDX supports (uint8, int8, int16, int32, float32, float64).
        compress: Gzip the file; by default when ``path`` ends with ``.gz``.

    Returns:
        The path written.

    Raises:
        DatasetError: If the dtype has no IDX type code.
    """
    path = Path(path)
    codes = {dt.newbyteorder("=").str: code for code, dt in _DTYPES.items()}
    native = array.dtype.newbyteorder("=").str
    if native not in codes:
        raise DatasetError(f"idx: dtype has no IDX type code; got {array.dtype}. Use uint8, int8, int16, int32, "
                           "float32 or float64.")
    code = codes[native]
    body = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body += np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        body = gzip.compress(body, mtime=0)
    path.write_bytes(body)
    return path
