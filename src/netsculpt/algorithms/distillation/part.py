"""Knowledge distillation's part of the controller: forward hooks that capture each training batch, and the loss.

The hooks only keep references (the inputs and the student's output of the latest training-mode forward);
``loss()`` runs the teacher on those inputs under ``no_grad`` when it is asked for, outside the student's
forward, so the teacher's ops never pass through the student's HookRuntime.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, ClassVar

import torch
from torch import nn

from netsculpt.algorithms.base import CompressionStage
from netsculpt.algorithms.distillation.loss import kd_loss
from netsculpt.algorithms.schedule_base import CountingScheduler
from netsculpt.config.distillation import KnowledgeDistillationConfig
from netsculpt.graph.hooks import HookRuntime, _Enter, _Exit, get_runtime

__all__ = ["DistillationPart", "KDCapture", "install_hooks", "remove_hooks"]

logger = logging.getLogger(__name__)


class KDCapture:
    """The frozen teacher plus what the hooks captured from the latest training-mode forward of the student."""

    def __init__(self, teacher: nn.Module, rt: HookRuntime) -> None:
        self.teacher = teacher
        self.rt = rt  # the student's runtime when the hooks were installed; a mismatch marks stale hooks
        self.clear()

    def clear(self) -> None:
        """Forget the captured batch."""
        self.args: tuple[Any, ...] | None = None
        self.kwargs: dict[str, Any] = {}
        self.output: Any = None
        self.waiting = False
        self.computed = False
        self.loss: torch.Tensor | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> KDCapture:
        # A deep copy of the student (ctrl.strip(do_copy=True)) shares the frozen teacher instead of copying it.
        new = KDCapture.__new__(KDCapture)
        memo[id(self)] = new
        new.teacher = self.teacher
        new.rt = copy.deepcopy(self.rt, memo)
        new.clear()
        return new


# The hooks subclass the runtime's own root hooks so that ``detach_runtime`` (the rollback of a failed
# ``create_compressed_model``) removes them together with the runtime they belong to.
class _InputHook(_Enter):
    def __init__(self, capture: KDCapture) -> None:
        super().__init__(capture.rt)
        self.capture = capture

    def __call__(  # type: ignore[override]
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        cap = self.capture
        if module.training and get_runtime(module) is cap.rt:
            cap.clear()
            cap.args, cap.kwargs, cap.waiting = args, dict(kwargs), True


class _OutputHook(_Exit):
    def __init__(self, capture: KDCapture) -> None:
        super().__init__(capture.rt)
        self.capture = capture

    def __call__(self, module: nn.Module, args: Any, output: Any) -> None:
        cap = self.capture
        if cap.waiting:
            cap.output, cap.waiting = output, False


def install_hooks(model: nn.Module, capture: KDCapture) -> None:
    """Capture hooks on the root module; the input hook runs before the runtime's own pre-hook (raw inputs)."""
    model.register_forward_pre_hook(_InputHook(capture), prepend=True, with_kwargs=True)
    model.register_forward_hook(_OutputHook(capture))


def remove_hooks(model: nn.Module) -> int:
    """Remove every distillation hook from ``model`` (found by type: handles do not survive deep copies)."""
    removed = 0
    for hook_id, hook in list(model._forward_pre_hooks.items()):
        if isinstance(hook, _InputHook):
            del model._forward_pre_hooks[hook_id]
            model._forward_pre_hooks_with_kwargs.pop(hook_id, None)
            removed += 1
    for hook_id, hook in list(model._forward_hooks.items()):
        if isinstance(hook, _OutputHook):
            del model._forward_hooks[hook_id]
            removed += 1
    return removed


class DistillationPart:
    """Controller part of knowledge distillation: ``loss()`` is the distillation term of the latest batch."""

    name = KnowledgeDistillationConfig.NAME
    kind: ClassVar[str] = "mask"  # strip order is irrelevant: strip only removes the capture hooks

    def __init__(self, cfg: KnowledgeDistillationConfig, capture: KDCapture, teacher_fingerprint: str = "") -> None:
        self.cfg = cfg
        self.capture = capture
        self.teacher_fingerprint = teacher_fingerprint
        self.scheduler = CountingScheduler()  # distillation has no schedule
        self._warned: set[str] = set()
        self._last: float | None = None

    @property
    def teacher(self) -> nn.Module:
        """The frozen uncompressed model (not a submodule of the student)."""
        return self.capture.teacher

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            logger.warning("knowledge_distillation: %s", message)

    def loss(self) -> torch.Tensor | None:
        """Distillation loss of the latest training-mode forward (``None`` before any, or when nothing matches)."""
        cap = self.capture
        if cap.args is None or cap.waiting:
            return None
        if not cap.computed:
            device = next((t.device for t in cap.args if isinstance(t, torch.Tensor)), None)
            param = next(cap.teacher.parameters(), None)
            if device is not None and param is not None and param.device != device:
                cap.teacher.to(device)
            with torch.no_grad():
                teacher_out = cap.teacher(*cap.args, **cap.kwargs)
            cap.loss = kd_loss(cap.output, teacher_out, self.cfg.type, self.cfg.scale, self.cfg.temperature, self._warn)
            cap.computed = True
            if cap.loss is not None:
                self._last = float(cap.loss.detach())
        return cap.loss

    def statistics(self) -> dict[str, Any]:
        """Loss type and settings, and the value of the latest distillation loss."""
        return {
            "type": self.cfg.type,
            "scale": self.cfg.scale,
            "temperature": self.cfg.temperature,
            "latest_loss": self._last if self._last is not None else float("nan"),
        }

    def compression_stage(self) -> CompressionStage:
        """Distillation is on from the first step (NNCF reports it as fully compressed)."""
        return CompressionStage.FULLY_COMPRESSED

    def get_state(self) -> dict[str, Any]:
        """The teacher's fingerprint (checked on resume), the latest loss and, with ``save_teacher``, its weights."""
        state: dict[str, Any] = {"teacher_fingerprint": self.teacher_fingerprint}
        if self._last is not None:  # the statistics of a resumed run show the same latest loss
            state["latest_loss"] = self._last
        if self.cfg.save_teacher:
            state["teacher"] = {k: v.detach().clone() for k, v in self.teacher.state_dict().items()}
        return state

    def strip(self, model: nn.Module) -> None:
        """Remove the capture hooks from ``model``; the teacher is dropped with them."""
        if remove_hooks(model) == 0:
            logger.debug("knowledge_distillation: no capture hooks found on the model to strip")
