"""Tests of the dataset entry points: load_dataset, dataset_info, make_loaders (digits and real data)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch

from netsculpt.data import DatasetInfo, dataset_info, digits, list_datasets, load_dataset, make_loaders
from netsculpt.errors import ConfigError, DatasetError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def test_list_and_info() -> None:
    assert list_datasets() == ["cifar10", "digits", "fashion_mnist"]
    info = dataset_info("cifar10")
    assert (info.in_channels, info.num_classes, info.image_size) == (3, 10, (32, 32))
    assert len(info.mean) == len(info.std) == 3 and len(info.classes) == 10
    fm = dataset_info("fashion_mnist")
    assert (fm.in_channels, fm.image_size, fm.classes[9]) == (1, (28, 28), "Ankle boot")
    assert dataset_info("digits").image_size == (8, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.num_classes = 3  # type: ignore[misc]
    assert isinstance(info, DatasetInfo)


@pytest.mark.parametrize(
    ("name", "hint"),
    [("fashion-mnist", "fashion_mnist"), ("CIFAR-10", "cifar10"), ("digit", "digits"), ("mnist", None)],
)
def test_unknown_dataset(name: str, hint: str | None) -> None:
    with pytest.raises(ConfigError, match=f"dataset: unknown dataset '{name}'") as info:
        load_dataset(name, "train")
    message = str(info.value)
    assert "Known: cifar10, digits, fashion_mnist" in message
    if hint is None:
        assert "Did you mean" not in message
    else:
        assert f"Did you mean '{hint}'?" in message


@pytest.mark.parametrize(("split", "limit"), [("val", None), ("train", 0), ("train", -5), ("train", 2.0)])
def test_bad_arguments(split: str, limit: object) -> None:
    with pytest.raises(ConfigError):
        load_dataset("digits", split, limit=limit)  # type: ignore[arg-type]


def test_digits_split() -> None:
    train = load_dataset("digits", "train")
    test = load_dataset("digits", "test")
    assert train.tensors[0].shape == (1438, 1, 8, 8) and test.tensors[0].shape == (359, 1, 8, 8)
    assert train.tensors[0].dtype == torch.float32 and train.tensors[1].dtype == torch.int64
    assert set(train.tensors[1].tolist()) == set(range(10))
    assert abs(float(train.tensors[0].mean())) < 0.1 and abs(float(train.tensors[0].std()) - 1) < 0.1
    again = load_dataset("digits", "train", limit=10)
    assert torch.equal(again.tensors[0], train.tensors[0][:10])  # deterministic split
    # train and test do not share images
    train_rows = {tuple(row.tolist()) for row in train.tensors[0].flatten(1)}
    overlap = sum(tuple(row.tolist()) in train_rows for row in test.tensors[0].flatten(1))
    assert overlap < 5  # the digits data has a few exact duplicates, nothing more


def test_digits_without_sklearn(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "sklearn" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(DatasetError, match="scikit-learn is not installed.*pip install scikit-learn"):
        load_dataset("digits", "train")


@pytest.mark.slow
def test_digits_match_sklearn() -> None:
    sklearn_datasets = pytest.importorskip("sklearn.datasets")  # slow: imports scipy
    bunch = sklearn_datasets.load_digits()
    images, labels = digits._read_digits()
    assert (images * 16 == bunch.images).all() and (labels == bunch.target).all()


def test_make_loaders_is_seeded() -> None:
    def first_labels(seed: int) -> list[int]:
        train, _ = make_loaders("digits", 16, seed=seed, train_limit=200, test_limit=50)
        labels: list[int] = next(iter(train))[1].tolist()
        return labels

    assert first_labels(1) == first_labels(1)
    assert first_labels(1) != first_labels(2)
    train, test = make_loaders("digits", 16, train_limit=40, test_limit=20)
    x, y = next(iter(test))
    assert x.shape == (16, 1, 8, 8) and y.shape == (16,)
    assert [b[1].tolist() for b in test] == [b[1].tolist() for b in test]  # test order is fixed
    assert sum(len(b[1]) for b in train) == 40


def test_make_loaders_bad_batch_size() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        make_loaders("digits", 0)


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"{FASHION_DIR} missing (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_test_split() -> None:
    x, y = load_dataset("fashion_mnist", "test", limit=100).tensors
    assert x.shape == (100, 1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and int(y.min()) >= 0 and int(y.max()) <= 9
    assert len(set(y.tolist())) == 10
    assert -1.0 < float(x.mean()) < 1.0 and 0.5 < float(x.std()) < 1.5
    assert y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # first test labels of the official release
