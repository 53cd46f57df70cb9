"""Model zoo: ``create_model("resnet20", num_classes=10, in_channels=3)`` and friends.

Importing this package registers every built-in model; :func:`list_models` shows them.
"""

from __future__ import annotations

from netsculpt.models import mobilenetv2, resnet, small_cnn, tiny_detector, tiny_unet, vgg  # noqa: F401  (register)
from netsculpt.models._registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
