"""Weight initialisation shared by the model zoo."""

from __future__ import annotations

from torch import nn

__all__ = ["init_weights"]


def init_weights(model: nn.Module) -> None:
    """Initialises a model in place with the usual ImageNet/CIFAR recipe.

    Convolutions get Kaiming-normal weights (``fan_out``, ReLU gain) and zero biases,
    batch-norm layers weight 1 and bias 0, linear layers ``N(0, 0.01)`` weights and zero biases.

    Args:
        model: The model to initialise.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
