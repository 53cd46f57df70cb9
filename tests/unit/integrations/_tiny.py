"""Tiny models, data and helpers shared by the trainer-integration tests (no downloads, seconds on one thread)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

DOC = Path(__file__).resolve().parents[3] / "docs" / "INTEGRATIONS.md"
SEQ = 16
VOCAB = 100
TEXT_INFO = [
    {"sample_size": [2, SEQ], "type": "long"},
    {"sample_size": [2, SEQ], "type": "long", "keyword": "attention_mask", "filler": "ones"},
]


def readme_snippets() -> list[str]:
    """The Python blocks of the "README section" of docs/INTEGRATIONS.md, in order."""
    text = DOC.read_text()
    section = text.split("## README section", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def tiny_bert(seed: int = 0, num_labels: int = 2) -> nn.Module:
    """A 2-layer BERT for sequence classification from a config (hidden 32, 2 heads, vocab 100)."""
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=SEQ * 2, num_labels=num_labels,
    )  # fmt: skip
    return transformers.BertForSequenceClassification(cfg)


class TokenData(Dataset[dict[str, torch.Tensor]]):
    """``n`` random token sequences with random labels, as the dicts the HF Trainer feeds to the model."""

    def __init__(self, n: int, seed: int = 1, num_labels: int = 2) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, VOCAB, (n, SEQ), generator=g)
        self.labels = torch.randint(0, num_labels, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(SEQ, dtype=torch.long), "labels": self.labels[i]}


def tiny_cnn(seed: int = 0) -> nn.Module:
    """A 2-conv CNN for 1x28x28 images, 10 classes."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip


def image_loader(n: int = 40, batch_size: int = 8, seed: int = 3) -> DataLoader[Any]:
    """``n`` random 1x28x28 images with random labels, in a fixed order."""
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)),
                      batch_size=batch_size)  # fmt: skip


def lit_classifier_class() -> type:
    """A minimal ``LightningModule`` training the ``nn.Module`` it is given with cross-entropy and SGD."""
    import lightning as L

    class LitClassifier(L.LightningModule):  # type: ignore[misc]
        def __init__(self, net: nn.Module, lr: float = 0.05) -> None:
            super().__init__()
            self.net, self.lr = net, lr

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)  # type: ignore[no-any-return]

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    return LitClassifier


def ort_run(path: Path, *inputs: torch.Tensor) -> list[Any]:
    """Run an ONNX file in ONNX Runtime on ``inputs`` (in the graph's input order)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    assert len(names) == len(inputs), names
    return sess.run(None, {n: t.numpy() for n, t in zip(names, inputs)})  # type: ignore[no-any-return]
