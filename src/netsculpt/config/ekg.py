"""The ``"ekg"`` section: EKG search and memory-bank fine-tuning settings (ALGORITHMS.md §4).

EKG drives the ``filter_pruning`` algorithm of a compressed model: it chooses the kept channels of every channel
group, and the policy it finds is written back as ``filter_pruning.params.keep_per_group``. Its settings are one
object, validated like every algorithm section (unknown keys, ranges and types are located errors)::

    {"pruning_flops_target": 0.5, "search_step": 0.2, "num_teachers": 5, "temperature": 4.0}

``EKGConfig.from_dict(data, path="ekg")`` parses it; ``netsculpt.search.ekg`` takes the parsed object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from netsculpt.config.fields import FieldCheckError, config_field, parse, to_plain

__all__ = ["EKGConfig"]


@dataclass(frozen=True, kw_only=True)
class EKGConfig:
    """EKG search (sub-network choice) and fine-tuning (memory bank of interim sub-networks) settings."""

    NAME: ClassVar[str] = "ekg"
    pruning_flops_target: float = config_field(
        0.5,
        doc="Fraction of FLOPs (MACs) removed; the search stops on the first sub-network at or past it.",
        min=0.0,
        max=1.0,
        min_open=True,
        max_open=True,
    )
    search_step: float = config_field(
        0.2,
        doc="sigma: a gate's keep rate drops by max(1/C, sigma/num_call) per step.",
        min=0.0,
        max=1.0,
        min_open=True,
    )
    otsu_trim: float = config_field(
        0.2,
        doc="Share of removal costs dropped at each end before the Otsu threshold.",
        min=0.0,
        max=0.5,
        max_open=True,
    )
    val_per_class: int = config_field(32, doc="D_val: last images per class of the training set.", min=1)
    subset_per_class: int = config_field(256, doc="D_subset: first images per class (warm-up epoch).", min=0)
    warmup_epochs: int = config_field(1, doc="Fine-tuning epochs on D_subset before the search.", min=0)
    warmup_lr: float = config_field(1e-3, doc="Warm-up SGD learning rate (Nesterov, momentum 0.9).", min=0.0)
    batch_size: int = config_field(256, doc="Batch size of scoring and candidate evaluation.", min=1)
    max_steps: int | None = config_field(None, doc="Stop after this many search steps (None: at the target).", min=1)
    num_teachers: int = config_field(5, doc="K: interim sub-networks kept as teachers.", min=1)
    temperature: float = config_field(
        4.0, doc="tau of the fine-tuning KL term (10 for ImageNet).", min=0.0, min_open=True
    )
    top_k: int | None = config_field(None, doc="Store only the k largest logits per teacher (many classes).", min=1)
    bank_dtype: Literal["float16", "float32"] = config_field("float16", doc="Storage type of the bank's logits.")
    bank_path: str | None = config_field(None, doc="Keep the bank in a memory-mapped file here (large sets).")
    bn_recalibration_samples: int = config_field(
        512, doc="Training samples for BN statistics of the final sub-network (0: none).", min=0
    )
    seed: int = config_field(0, doc="Seed of the warm-up loader and of candidate evaluation.")

    def __post_init__(self) -> None:
        if self.subset_per_class == 0 and self.warmup_epochs > 0:
            raise FieldCheckError(
                "subset_per_class",
                f"must be > 0 when warmup_epochs is {self.warmup_epochs}; got 0. "
                "Set warmup_epochs to 0 to skip the warm-up",
            )

    @classmethod
    def from_dict(cls, data: Any, path: str = "ekg") -> EKGConfig:
        """Parse a JSON-like object; errors name ``path`` (``ekg.search_step: must be ...; got ...``)."""
        return parse(cls, data, path)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (``from_dict`` reads it back)."""
        out: dict[str, Any] = to_plain(self)
        return out
