"""Tests of Fashion-MNIST lookup, parsing and download (synthetic files only)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netsculpt.data import _download, fashion_mnist, load_dataset
from netsculpt.data.fashion_mnist import find_fashion_mnist, load_fashion_mnist
from netsculpt.data.idx import write_idx
from netsculpt.errors import DatasetError

MEAN, STD = 0.2860, 0.3530


@pytest.mark.usefixtures("no_system_dirs")
@pytest.mark.parametrize("compress", [True, False])
def test_load_from_root(tmp_path: Path, make_fashion_mnist: Callable[..., Path], compress: bool) -> None:
    root = make_fashion_mnist(tmp_path / "fm", n_train=12, n_test=5, compress=compress)
    train = load_dataset("fashion_mnist", "train", root=root)
    x, y = train.tensors
    assert x.shape == (12, 1, 28, 28) and x.dtype.is_floating_point and str(x.dtype) == "torch.float32"
    assert y.tolist() == [i % 10 for i in range(12)] and str(y.dtype) == "torch.int64"
    # image i is filled with pixel value 10 * i, normalized with the dataset mean/std
    expected = (np.arange(12) * 10 / 255.0 - MEAN) / STD
    np.testing.assert_allclose(x[:, 0, 0, 0].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert bool((x == x[:, :, :1, :1]).all())
    test = load_dataset("fashion_mnist", "test", root=root, limit=3)
    assert test.tensors[0].shape == (3, 1, 28, 28)
    assert test.tensors[1].tolist() == [0, 1, 2]


@pytest.mark.usefixtures("no_system_dirs")
def test_root_subdirectory_and_cache(tmp_path: Path, empty_home: Path, make_fashion_mnist: Callable[..., Path]) -> None:
    make_fashion_mnist(tmp_path / "data" / "fashion_mnist")
    found = find_fashion_mnist("test", tmp_path / "data")
    assert found is not None and found[0].parent == tmp_path / "data" / "fashion_mnist"
    make_fashion_mnist(empty_home / ".cache" / "netsculpt" / "fashion_mnist", n_test=4)
    images, labels = load_fashion_mnist("test")
    assert images.shape == (4, 1, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64


def test_root_searched_before_system_dir(tmp_path: Path, make_fashion_mnist: Callable[..., Path]) -> None:
    root = make_fashion_mnist(tmp_path / "fm", n_test=2)
    images, _ = load_fashion_mnist("test", root=root)
    assert len(images) == 2


@pytest.mark.usefixtures("no_system_dirs")
def test_missing_offline_explains_how_to_get_it(tmp_path: Path, empty_home: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset("fashion_mnist", "train", root=tmp_path / "nowhere")
    message = str(info.value)
    assert message.startswith("fashion_mnist: train files not found")
    assert str(tmp_path / "nowhere") in message
    assert str(empty_home / ".cache" / "netsculpt" / "fashion_mnist") in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "download=True" in message and "--download" in message
    assert "train-images-idx3-ubyte.gz" in message


@pytest.mark.usefixtures("no_system_dirs")
def test_only_half_a_split_is_not_found(tmp_path: Path) -> None:
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), dtype=np.uint8))
    with pytest.raises(DatasetError, match="test files not found"):
        load_fashion_mnist("test", root=tmp_path)


@pytest.mark.usefixtures("no_system_dirs")
def test_bad_magic_is_a_dataset_error(tmp_path: Path, make_fashion_mnist: Callable[..., Path]) -> None:
    root = make_fashion_mnist(tmp_path)
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x08\x03\x00\x00" + bytes(100))
    with pytest.raises(DatasetError, match="bad magic number"):
        load_dataset("fashion_mnist", "test", root=root)


@pytest.mark.usefixtures("no_system_dirs")
def test_inconsistent_files(tmp_path: Path, make_fashion_mnist: Callable[..., Path]) -> None:
    root = make_fashion_mnist(tmp_path, n_test=5)
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.zeros(4, dtype=np.uint8))
    with pytest.raises(DatasetError, match="5 images but 4 labels"):
        load_fashion_mnist("test", root=root)
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.full(5, 10, dtype=np.uint8))
    with pytest.raises(DatasetError, match="label out of range"):
        load_fashion_mnist("test", root=root)
    write_idx(root / "t10k-images-idx3-ubyte.gz", np.zeros((5, 784), dtype=np.uint8))
    with pytest.raises(DatasetError, match="unexpected array layout"):
        load_fashion_mnist("test", root=root)


def _serve(tmp_path: Path, make_fashion_mnist: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
           *, true_md5: bool) -> Path:
    """Publishes fake files at a file:// mirror; with ``true_md5`` their real checksums are expected."""
    mirror = make_fashion_mnist(tmp_path / "mirror", n_train=3, n_test=2)
    monkeypatch.setattr(fashion_mnist, "MIRRORS", ((tmp_path / "down").as_uri() + "/", mirror.as_uri() + "/"))
    if true_md5:
        sums = {name: hashlib.md5((mirror / name).read_bytes()).hexdigest() for name in fashion_mnist.FILES}
        monkeypatch.setattr(fashion_mnist, "FILES", sums)
    return mirror


@pytest.mark.usefixtures("no_system_dirs")
def test_download_into_cache(tmp_path: Path, empty_home: Path, make_fashion_mnist: Callable[..., Path],
                             monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _serve(tmp_path, make_fashion_mnist, monkeypatch, true_md5=True)
    with caplog.at_level(logging.WARNING):
        images, labels = load_fashion_mnist("test", download=True)
    assert images.shape == (2, 1, 28, 28) and labels.tolist() == [0, 1]
    cache = empty_home / ".cache" / "netsculpt" / "fashion_mnist"
    assert sorted(p.name for p in cache.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert any("trying the next mirror" in r.getMessage() for r in caplog.records)

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("downloaded again although the files are cached")

    monkeypatch.setattr(_download, "download_first", fail)
    assert len(load_fashion_mnist("test", download=True)[0]) == 2


@pytest.mark.usefixtures("no_system_dirs")
def test_download_into_root(tmp_path: Path, make_fashion_mnist: Callable[..., Path],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(tmp_path, make_fashion_mnist, monkeypatch, true_md5=True)
    load_dataset("fashion_mnist", "train", root=tmp_path / "data", download=True)
    assert (tmp_path / "data" / "fashion_mnist" / "train-labels-idx1-ubyte.gz").is_file()


@pytest.mark.usefixtures("no_system_dirs")
def test_download_checksum_mismatch(tmp_path: Path, empty_home: Path, make_fashion_mnist: Callable[..., Path],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(tmp_path, make_fashion_mnist, monkeypatch, true_md5=False)  # fake files vs the official MD5s
    with pytest.raises(DatasetError, match="checksum mismatch .*expected MD5 bef4ecab320f06d8554ea6380940ec79, got"):
        load_dataset("fashion_mnist", "test", download=True)
    cache = empty_home / ".cache" / "netsculpt" / "fashion_mnist"
    assert list(cache.iterdir()) == []


def test_published_checksums() -> None:
    assert fashion_mnist.FILES == {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }


@pytest.mark.usefixtures("no_system_dirs")
def test_altered_content_is_refused_in_strict_mode(tmp_path: Path, make_fashion_mnist: Callable[..., Path],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Issue 10 finding 11: files of the official names whose content differs fail with ``verify="strict"``."""
    root = make_fashion_mnist(tmp_path / "fm", n_train=12, n_test=5)
    with pytest.raises(DatasetError, match=r"fashion_mnist: .*train-images.*not the official release.*--verify warn"):
        load_fashion_mnist("train", root=root, verify="strict")
    with caplog.at_level(logging.WARNING, logger="netsculpt.data"):
        assert len(load_fashion_mnist("train", root=root)[0]) == 12  # the library default warns
    assert "using it anyway" in caplog.text
    with pytest.raises(Exception, match="verify must be one of strict, warn, off; got 'yes'"):
        load_fashion_mnist("train", root=root, verify="yes")  # type: ignore[arg-type]


def test_the_official_files_pass_strict_and_one_changed_pixel_does_not(tmp_path: Path) -> None:
    system = fashion_mnist.SYSTEM_DIRS[0]
    if not (system / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST is not installed in {system} (Debian: dataset-fashion-mnist)")
    images, labels = load_fashion_mnist("test", verify="strict")  # Debian's re-packed .gz: same content
    altered = images[:, 0].copy()
    altered[1234, 5, 6] ^= 1  # same size, one pixel differs
    write_idx(tmp_path / "t10k-images-idx3-ubyte", altered)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels.astype(np.uint8))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte is not the official release"):
        load_fashion_mnist("test", root=tmp_path, verify="strict")
