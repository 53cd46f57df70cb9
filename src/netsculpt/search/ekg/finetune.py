"""EKG fine-tuning inside the user's own loop: ``loss = CE + ekg.loss()``, as with knowledge distillation.

The sample index reaches the loss through a dataset wrapper, ``IndexedViews``, whose items are
``(views, label, index)``: ``views`` stacks V augmented views of one image. The documented loop::

    ekg = EKGDistiller(bank, temperature=4.0).attach(model, ctrl)   # ctrl.loss() now includes the EKG term
    for views, y, idx in DataLoader(IndexedViews(train_set, augment), batch_size=128, shuffle=True):
        x, target = merge_views(views, y)          # [B·V, ...], labels repeated per view
        ekg.set_indices(idx)                       # the hook: which bank rows this batch is
        out = model(x)
        loss = F.cross_entropy(out, target) + ctrl.loss()
        ...
    ekg.detach()                                   # removes the hook and the term from ctrl.loss()

Without a controller (``attach(model)``) the term is ``ekg.loss()``, added by the loop itself.

``ekg.loss()`` is the τ-scaled KL toward the mean of the teachers still ahead of the student (ALGORITHMS.md
§4.4), computed from the latest training-mode output of the model (captured by a forward hook), averaged over
the views; with the mean CE over all B·V rows it is EKG's ``L_ft``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from netsculpt.errors import ConfigError
from netsculpt.search.ekg._core import ekg_kl
from netsculpt.search.ekg.bank import MemoryBank
from netsculpt.train.hooks import _logits

__all__ = ["EKGDistiller", "IndexedViews", "merge_views", "shift_flip"]


def shift_flip(x: torch.Tensor) -> torch.Tensor:
    """Default view augmentation of a ``[C, H, W]`` image: random shift by up to 2 pixels and horizontal flip."""
    pad = F.pad(x.unsqueeze(0), (2, 2, 2, 2), mode="replicate")[0]
    i, j = torch.randint(0, 5, (2,)).tolist()
    out = pad[:, i : i + x.shape[1], j : j + x.shape[2]]
    return out.flip(-1) if bool(torch.rand(()) < 0.5) else out


class IndexedViews(Dataset[tuple[torch.Tensor, Any, int]]):
    """``(stack of views, label, index)`` per item; ``augment(x)`` makes each view (identity when ``None``)."""

    def __init__(
        self, dataset: Dataset[Any], augment: Callable[[torch.Tensor], torch.Tensor] | None = None, views: int = 2
    ) -> None:
        if views < 1:
            raise ConfigError(f"IndexedViews.views: must be >= 1; got {views}")
        self.dataset, self.augment, self.views = dataset, augment, views

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any, int]:
        x, y = self.dataset[index][:2]
        aug = self.augment
        return torch.stack([aug(x) if aug is not None else x for _ in range(self.views)]), y, index


def merge_views(views: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, V, ...]`` views and ``[B]`` labels to one ``[B·V, ...]`` batch with labels repeated per view."""
    return views.flatten(0, 1), labels.repeat_interleave(views.shape[1])


class _Capture:
    def __init__(self, owner: EKGDistiller | None) -> None:
        self.owner = owner

    def __call__(self, module: nn.Module, args: Any, output: Any) -> None:
        if module.training and self.owner is not None:
            self.owner.output = _logits(output)

    def __deepcopy__(self, memo: dict[int, Any]) -> _Capture:
        # A copy of the model (ctrl.strip(do_copy=True), checkpoints) gets an inert hook: the distiller and the
        # autograd graph of its captured output stay with the model it was attached to.
        return _Capture(None)


class EKGDistiller:
    """The EKG fine-tuning term; ``loss()`` follows the controller's pattern (``None``-free: 0 when idle)."""

    def __init__(self, bank: MemoryBank, temperature: float = 4.0) -> None:
        if not temperature > 0:
            raise ConfigError(f"EKGDistiller.temperature: must be > 0; got {temperature}")
        self.bank = bank
        self.temperature = float(temperature)
        self.output: torch.Tensor | None = None
        self.indices: torch.Tensor | None = None
        self.last_teachers = 0
        self._handle: Any = None
        self._ctrl: Any = None

    def attach(self, model: nn.Module, ctrl: Any = None) -> EKGDistiller:
        """Capture ``model``'s training-mode outputs (a forward hook; ``detach`` removes it).

        With ``ctrl`` (a ``CompressionController``) the term joins ``ctrl.loss()`` under the name ``"ekg"``, as
        knowledge distillation's does; the loop then adds ``ctrl.loss()`` only.
        """
        self.detach()
        if ctrl is not None:
            ctrl.add_loss_term("ekg", self.loss)  # first: a refused name leaves no hook behind
            self._ctrl = ctrl
        self._handle = model.register_forward_hook(_Capture(self))
        return self

    def detach(self) -> None:
        """Remove the capture hook and, when attached with a controller, the term from ``ctrl.loss()``."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self._ctrl is not None:
            self._ctrl.remove_loss_term("ekg")
            self._ctrl = None

    def set_indices(self, index: torch.Tensor | list[int]) -> None:
        """Bank rows of the next batch (the third item of ``IndexedViews``)."""
        self.indices = torch.as_tensor(index).long().cpu()
        self.output = None

    def loss(self, output: torch.Tensor | None = None) -> torch.Tensor:
        """τ·KL toward the teachers ahead of the student, averaged over views and images.

        Args:
            output: the student's ``[B·V, C]`` logits (default: the captured output of the latest training forward).

        Raises:
            ConfigError: no indices were set, or the output's rows are not a multiple of the batch.
        """
        out = output if output is not None else self.output
        if self.indices is None or out is None:
            raise ConfigError("EKGDistiller.loss: call set_indices(idx) and run the model in training mode first")
        b = self.indices.numel()
        if out.shape[0] % b:
            raise ConfigError(
                f"EKGDistiller.loss: {out.shape[0]} output rows for {b} indices; feed merge_views' [B·V] batch"
            )
        views = out.reshape(b, out.shape[0] // b, -1)
        bank = self.bank.lookup(self.indices).to(out.device)
        return ekg_kl(views, bank, self.temperature)
