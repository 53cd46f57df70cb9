"""Elastic kernel: the centre ``k x k`` crop of a convolution's kernel (depthwise and ordinary convs).

In the supernet a ``KernelMask`` zeroes the taps outside the active crop; with the layer's own padding that is
exactly the cropped kernel run with ``padding - (K - k) / 2 * dilation`` (same output size and alignment), which
is what ``extract`` builds. OFA's learned kernel-transform matrices (``KERNEL_TRANSFORM_MODE=1``) are not
implemented: the crop is used as is (OFA's mode "None", DεpS's released recipe).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from netsculpt.graph.channels import LayerSpec
from netsculpt.graph.hooks import HookRuntime
from netsculpt.graph.scope import Scope
from netsculpt.nas.params import KernelParams, kernel_choices

__all__ = ["ElasticKernel", "KernelMask", "kernel_key"]

logger = logging.getLogger(__name__)
PRIORITY = 21  # right after the width masks


def kernel_key(layer: str) -> str:
    """Runtime key of a layer's kernel mask."""
    return f"nas:k:{layer.replace('.', ':')}"


class KernelMask(nn.Module):
    """Zeroes the kernel taps outside the centre crop of the active size."""

    mask: torch.Tensor

    def __init__(self, kernel: int, ndim: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.ndim = ndim
        self.active = kernel
        self.register_buffer("mask", torch.ones((kernel,) * ndim))

    def set_kernel(self, k: int) -> None:
        """Keep the centre ``k`` taps along each spatial dim."""
        c = (self.kernel - k) // 2
        with torch.no_grad():
            self.mask.zero_()
            self.mask[(slice(c, self.kernel - c),) * self.ndim] = 1.0
        self.active = k

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask.to(w.dtype)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, active={self.active}"


def _elastic_spec(module: nn.Module, params: KernelParams) -> list[int] | None:
    """Kernel choices of a conv, or ``None`` when it cannot be cropped (transposed, uneven kernel or padding,
    string padding)."""
    if not isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) or module.transposed:
        return None
    ks, pad, dil = module.kernel_size, module.padding, module.dilation
    if isinstance(pad, str) or len(set(ks)) != 1 or len(set(pad)) != 1 or len(set(dil)) != 1:
        return None
    k, p, d = ks[0], int(pad[0]), dil[0]
    choices = kernel_choices(k, p // d, params)
    return choices if len(choices) > 1 else None


class ElasticKernel:
    """Kernel-size choices per convolution (module name -> sizes, largest first) and their masks."""

    def __init__(
        self,
        model: nn.Module,
        layers: dict[str, LayerSpec],
        rt: HookRuntime,
        params: KernelParams,
        scope: Scope | None = None,
    ) -> None:
        mods = dict(model.named_modules())
        self.choices: dict[str, list[int]] = {}
        self.masks: dict[str, KernelMask] = {}
        for name, spec in layers.items():
            if spec.role != "conv" or (scope is not None and name not in scope):
                continue
            module = mods[name]
            choices = _elastic_spec(module, params)
            if choices is None:
                continue
            assert isinstance(module, nn.modules.conv._ConvNd)
            mask = KernelMask(choices[0], len(module.kernel_size))
            key = rt.add_op(kernel_key(name), mask)
            for address, uses in spec.uses:
                for pname, arg in uses:
                    if pname == "weight":
                        rt.hook_arg(address, arg, key, PRIORITY)
            self.choices[name] = choices
            self.masks[name] = mask
        logger.info("elastic kernel: %d convolutions", len(self.choices))

    @property
    def active(self) -> dict[str, int]:
        """Active kernel size per elastic conv."""
        return {name: m.active for name, m in self.masks.items()}

    def set_kernels(self, kernels: dict[str, int]) -> None:
        """Activate ``kernels`` (conv name -> size; convs not named get their maximum). Values must be valid."""
        for name, m in self.masks.items():
            m.set_kernel(int(kernels.get(name, self.choices[name][0])))

    def slice(self, model: nn.Module) -> None:
        """Crop the kernels of ``model`` (a plain copy of the supernet's model) to the active sizes."""
        mods = dict(model.named_modules())
        for name, m in self.masks.items():
            module = mods.get(name)
            if not isinstance(module, nn.modules.conv._ConvNd) or m.active == m.kernel:
                continue
            c = (m.kernel - m.active) // 2
            w = module.weight
            new = w.detach()
            for d in range(w.dim() - m.ndim, w.dim()):
                new = new.narrow(d, c, m.active)
            module.weight = nn.Parameter(new.clone(), requires_grad=w.requires_grad)
            module.kernel_size = (m.active,) * m.ndim
            pad = module.padding
            assert not isinstance(pad, str)
            module.padding = tuple(p - c * d for p, d in zip(pad, module.dilation, strict=True))
            module._reversed_padding_repeated_twice = [p for p in reversed(module.padding) for _ in range(2)]
