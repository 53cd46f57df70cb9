"""Datasets as normalized ``TensorDataset``s: Fashion-MNIST, CIFAR-10 and scikit-learn's digits.

Local copies are used when present (Fashion-MNIST also from the Debian package
``dataset-fashion-mnist``); otherwise ``download=True`` fetches the official files and
verifies their MD5 checksums.
"""

from __future__ import annotations

from netsculpt.data.datasets import DatasetInfo, dataset_info, list_datasets, load_dataset, make_loaders

__all__ = ["DatasetInfo", "dataset_info", "list_datasets", "load_dataset", "make_loaders"]
