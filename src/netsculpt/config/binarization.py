"""The ``"algorithm": "binarization"`` section of the NNCF-dialect config (NNCF 2.x keys, removed after 2.9)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from netsculpt.config.fields import config_field
from netsculpt.config.quantization import StagedQuantizationParams
from netsculpt.config.registry import register_config

__all__ = ["BinarizationConfig"]

Scopes = tuple[str, ...] | str | None


@register_config
@dataclass(frozen=True, kw_only=True)
class BinarizationConfig:
    """Binary weights and scale-threshold binary activations for ``Conv2d`` layers (NNCF's ``binarization``).

    Every ``nn.Conv2d`` in scope gets a weight binarizer and a binarizer on its input (argument 0 of each
    call). Other layer types are never binarized.

    Weights (straight-through gradient, ``sign(0) = -1``):

    - ``xnor``: ``sign(W) * mean|W|`` with one scale **per output filter** (the mean runs over
      ``C_in x kH x kW``). NNCF's documentation says "per input channel"; NNCF's code (``XNORBinarizeFn``,
      ``abs().mean([1, 2, 3])``) takes it per output filter, and netsculpt follows the code: the exported
      weights then stay ``+-scale`` per filter even after BatchNorm folding.
    - ``dorefa``: ``sign(W) * mean|W|`` with one scale for the whole tensor.

    Activations: ``out = s * [x > s * sigmoid(tau_c)]`` with a learned log-scale ``rho`` (``s = exp(rho)``),
    initialised from the first training batch after activations are enabled, and a learned per-channel
    threshold ``tau`` (``0`` at start, i.e. ``t = 0.5``). netsculpt's default scale init
    (``activation_scale_init: "mse"``) differs from NNCF's: NNCF takes the smallest of the top 0.1 % of the
    batch, which on post-ReLU activations leaves only 1-2 % of inputs above ``s/2`` (measured on Fashion-MNIST
    ResNet-20: accuracy falls to chance when activations switch on, and short fine-tunes cannot recover);
    netsculpt fits ``s`` by least squares (``"top_fraction"`` restores NNCF's rule).

    Schedule (``params``, NNCF's staged quantization keys; epochs are 0-based and advanced by
    ``ctrl.scheduler.epoch_step()`` at the start of each epoch): full precision until
    ``activations_quant_start_epoch``, then binary activations, then binary weights from
    ``weights_quant_start_epoch``; with an optimizer attached (``part.scheduler.attach_optimizer(opt)``) the LR
    is ``base_lr`` until ``lr_poly_drop_start_epoch`` and then ``base_lr * ((start + D - t) / D) ** 2.1``
    (``D = lr_poly_drop_duration_epochs``, ``t`` the fractional epoch), and weight decay drops from
    ``base_wd`` to 0 at ``disable_wd_start_epoch``. Without ``params`` NNCF's defaults apply (both start
    epochs 1), as in NNCF, which always runs the staged scheduler for binarization.

    Ignored scopes: NNCF's ResNet-18 recipe keeps the first conv, the final FC and the 1x1 downsample
    convs in floating point (they carry little compute and most of the accuracy)::

        "ignored_scopes": ["conv1", "layer2.0.downsample", "layer3.0.downsample", "layer4.0.downsample", "fc"]

    NNCF's own scope strings (``ResNet/NNCFConv2d[conv1]``) are accepted too.

    Example:
        >>> cfg = {"algorithm": "binarization", "mode": "xnor",
        ...        "params": {"activations_quant_start_epoch": 10, "weights_quant_start_epoch": 30,
        ...                   "lr_poly_drop_start_epoch": 60, "lr_poly_drop_duration_epochs": 30,
        ...                   "disable_wd_start_epoch": 60}}
    """

    NAME: ClassVar[str] = "binarization"
    algorithm: Literal["binarization"] = config_field(NAME)
    mode: Literal["xnor", "dorefa"] = config_field(
        "xnor", doc="Weight binarization: 'xnor' (scale per output filter) or 'dorefa' (one scale per tensor)."
    )
    params: StagedQuantizationParams = field(
        default_factory=StagedQuantizationParams,
        metadata={"doc": "Staged schedule: FP, then binary activations, then binary weights; LR/WD control."},
    )
    activation_scale_init: Literal["mse", "top_fraction"] = config_field(
        "mse",
        doc="netsculpt: how the activation scale s starts. 'mse' (default): the least-squares fit of the first "
        "batch by the two levels {0, s}; 'top_fraction': NNCF's smallest of the top 0.1 % (leaves 1-2 % of ReLU "
        "outputs above s/2).",
    )
    ignored_scopes: Scopes = config_field(None, doc="Modules left in floating point.")
    target_scopes: Scopes = config_field(None, doc="Only these modules are binarized.")
    validate_scopes: bool = config_field(True, doc="Scopes that match nothing are an error.")
    compression_lr_multiplier: float | None = config_field(
        None, doc="LR multiplier for compression parameters.", not_supported="planned"
    )
