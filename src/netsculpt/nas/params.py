"""Parameters of the elastic dimensions, with NNCF BootstrapNAS's keys and code defaults (ALGORITHMS.md §2.9).

``ElasticityParams.from_dict`` reads an NNCF ``bootstrapNAS.training.elasticity`` section; every bad value
raises a :class:`~netsculpt.errors.ConfigError` whose message starts with the key's path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netsculpt.errors import ConfigError, NotSupportedYetError

__all__ = [
    "DIMS",
    "DepthParams",
    "ElasticityParams",
    "KernelParams",
    "WidthParams",
    "kernel_choices",
    "width_choices",
]

DIMS = ("kernel", "width", "depth")  # NNCF's available_elasticity_dims (progressivity order)
IMPORTANCE = ("L1", "L2", "geometric_median")
_ALIGN = 8  # NNCF rounds multiplier widths down to a multiple of 8


@dataclass(frozen=True)
class WidthParams:
    """``elasticity.width``: widths per channel group from ``width_multipliers`` (when given) or from
    ``width_step`` down to ``min_width``, at most ``max_num_widths`` of them (-1: no limit)."""

    min_width: int = 32
    max_num_widths: int = -1
    width_step: int = 32
    width_multipliers: tuple[float, ...] | None = None
    filter_importance: str = "L1"  # NNCF's code default (its docs and schema say L2)

    def check(self, where: str = "elasticity.width") -> None:
        """Raises ``ConfigError`` (located at ``where.<key>``) for out-of-range values."""
        if self.min_width < 1:
            raise ConfigError(f"{where}.min_width: must be >= 1; got {self.min_width}")
        if self.width_step < 1:
            raise ConfigError(f"{where}.width_step: must be >= 1; got {self.width_step}")
        if self.max_num_widths == 0 or self.max_num_widths < -1:
            raise ConfigError(f"{where}.max_num_widths: must be -1 (no limit) or >= 1; got {self.max_num_widths}")
        if self.width_multipliers is not None:
            if not self.width_multipliers:
                raise ConfigError(f"{where}.width_multipliers: must not be empty; got []")
            for i, m in enumerate(self.width_multipliers):
                if not 0 < m <= 1:
                    raise ConfigError(f"{where}.width_multipliers[{i}]: must be in (0, 1]; got {m}")
        if self.filter_importance not in IMPORTANCE:
            raise ConfigError(
                f"{where}.filter_importance: must be one of {', '.join(IMPORTANCE)}; got {self.filter_importance!r}"
            )


@dataclass(frozen=True)
class DepthParams:
    """``elasticity.depth``: skippable blocks found automatically (``skipped_blocks`` None) with between
    ``min_block_size`` and ``max_block_size`` ops, or the listed block module names."""

    skipped_blocks: tuple[str, ...] | None = None
    min_block_size: int = 5
    max_block_size: int = 50

    def check(self, where: str = "elasticity.depth") -> None:
        """Raises ``ConfigError`` (located at ``where.<key>``) for out-of-range values."""
        if self.min_block_size < 1:
            raise ConfigError(f"{where}.min_block_size: must be >= 1; got {self.min_block_size}")
        if self.max_block_size < self.min_block_size:
            raise ConfigError(
                f"{where}.max_block_size: must be >= min_block_size ({self.min_block_size}); got {self.max_block_size}"
            )


@dataclass(frozen=True)
class KernelParams:
    """``elasticity.kernel``: kernel sizes ``k, k-2, ...`` (not below 3 nor below what the padding allows), at
    most ``max_num_kernels`` of them (-1: no limit)."""

    max_num_kernels: int = -1

    def check(self, where: str = "elasticity.kernel") -> None:
        """Raises ``ConfigError`` for out-of-range values."""
        if self.max_num_kernels == 0 or self.max_num_kernels < -1:
            raise ConfigError(
                f"{where}.max_num_kernels: must be -1 (no limit) or >= 1; got {self.max_num_kernels}"
            )


@dataclass(frozen=True)
class ElasticityParams:
    """Which dimensions are elastic and how; ``ignored_scopes``/``target_scopes`` select layers (NNCF syntax)."""

    dims: tuple[str, ...] = DIMS
    width: WidthParams = field(default_factory=WidthParams)
    depth: DepthParams = field(default_factory=DepthParams)
    kernel: KernelParams = field(default_factory=KernelParams)
    ignored_scopes: tuple[str, ...] = ()
    target_scopes: tuple[str, ...] = ()

    def check(self, where: str = "elasticity") -> None:
        """Raises ``ConfigError`` located under ``where``."""
        for i, d in enumerate(self.dims):
            if d not in DIMS:
                raise ConfigError(
                    f"{where}.available_elasticity_dims[{i}]: must be one of {', '.join(DIMS)}; got {d!r}"
                )
        self.width.check(f"{where}.width")
        self.depth.check(f"{where}.depth")
        self.kernel.check(f"{where}.kernel")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "bootstrapNAS.training.elasticity") -> ElasticityParams:
        """Parse an NNCF ``elasticity`` section (missing keys take NNCF's code defaults)."""
        _known(d, {"available_elasticity_dims", "width", "depth", "kernel", "ignored_scopes", "target_scopes"}, where)
        w = _section(d, "width", where)
        _known(w, {"min_width", "max_num_widths", "width_step", "width_multipliers", "filter_importance",
                   "external_importance_path", "overwrite_groups", "overwrite_groups_widths"}, f"{where}.width")
        if "external_importance_path" in w:
            raise NotSupportedYetError(f"{where}.width.external_importance_path: external importance is not supported"
                                       " yet; use filter_importance L1, L2 or geometric_median")
        if "width_multipliers" in w and "width_step" in w:
            raise ConfigError(f"{where}.width: width_multipliers and width_step exclude each other; got both")
        for key in ("overwrite_groups", "overwrite_groups_widths"):
            if key in w:
                raise NotSupportedYetError(f"{where}.width.{key}: not supported yet")
        mult = w.get("width_multipliers")
        width = WidthParams(
            min_width=_int(w, "min_width", 32, f"{where}.width"),
            max_num_widths=_int(w, "max_num_widths", -1, f"{where}.width"),
            width_step=_int(w, "width_step", 32, f"{where}.width"),
            width_multipliers=None if mult is None else tuple(_floats(mult, f"{where}.width.width_multipliers")),
            filter_importance=str(w.get("filter_importance", "L1")),
        )
        dp = _section(d, "depth", where)
        _known(dp, {"skipped_blocks", "min_block_size", "max_block_size", "hw_fused_ops"}, f"{where}.depth")
        blocks = dp.get("skipped_blocks")
        if blocks is not None and (not isinstance(blocks, list) or not all(isinstance(b, str) for b in blocks)):
            raise ConfigError(
                f"{where}.depth.skipped_blocks: must be a list of block module names (NNCF's [start, end] op pairs "
                f"are not supported); got {blocks!r}"
            )
        depth = DepthParams(
            skipped_blocks=None if blocks is None else tuple(blocks),
            min_block_size=_int(dp, "min_block_size", 5, f"{where}.depth"),
            max_block_size=_int(dp, "max_block_size", 50, f"{where}.depth"),
        )
        k = _section(d, "kernel", where)
        _known(k, {"max_num_kernels"}, f"{where}.kernel")
        dims = d.get("available_elasticity_dims", list(DIMS))
        if not isinstance(dims, list):
            raise ConfigError(f"{where}.available_elasticity_dims: must be a list; got {dims!r}")
        out = cls(
            dims=tuple(str(x) for x in dims),
            width=width,
            depth=depth,
            kernel=KernelParams(_int(k, "max_num_kernels", -1, f"{where}.kernel")),
            ignored_scopes=_strs(d.get("ignored_scopes"), f"{where}.ignored_scopes"),
            target_scopes=_strs(d.get("target_scopes"), f"{where}.target_scopes"),
        )
        out.check(where)
        return out


def width_choices(max_width: int, p: WidthParams) -> list[int]:
    """NNCF's width list for a group of ``max_width`` channels, largest first.

    One deliberate difference from NNCF's code: the full width is always the first choice (NNCF rounds the
    multiplier 1.0 down to a multiple of 8, so a 20-channel layer's widths were [16, 8] and its full model never
    ran); here they are [20, 16, 8] and the maximum config is the original model.

    Example:
        >>> width_choices(64, WidthParams(min_width=16, width_step=16))
        [64, 48, 32, 16]
        >>> width_choices(64, WidthParams(min_width=8, width_multipliers=(1.0, 0.5, 0.25)))
        [64, 32, 16]
    """
    if max_width <= p.min_width:
        return [max_width]
    out: list[int] = []
    if p.width_multipliers is None:
        w = max_width
        while w >= p.min_width and len(out) != p.max_num_widths:
            out.append(w)
            w -= p.width_step
        return out
    out.append(max_width)  # NNCF appends it only when no multiplier is 1, then drops it if not a multiple of 8
    for m in sorted(p.width_multipliers, reverse=True):
        if len(out) == p.max_num_widths:
            break
        w = int(max_width * m)
        w = max(w - w % _ALIGN, p.min_width)
        if w not in out:
            out.append(w)
    return out


def kernel_choices(max_kernel: int, padding: int, p: KernelParams) -> list[int]:
    """NNCF's kernel list: ``k, k-2, ...`` while at least ``max(k - 2*padding, 3)`` (``padding`` in taps).

    Example:
        >>> kernel_choices(7, 3, KernelParams())
        [7, 5, 3]
        >>> kernel_choices(3, 1, KernelParams())
        [3]
    """
    if max_kernel <= 1 or max_kernel % 2 == 0:
        return [max_kernel]
    out: list[int] = []
    k = max_kernel
    while k >= max(max_kernel - 2 * padding, 3) and len(out) != p.max_num_kernels:
        out.append(k)
        k -= 2
    return out or [max_kernel]


# ---- parsing helpers ------------------------------------------------------------------------------------
def _section(d: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    v = d.get(key, {})
    if not isinstance(v, Mapping):
        raise ConfigError(f"{where}.{key}: must be an object; got {v!r}")
    return v


def _known(d: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(d) - keys)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; expected one of {', '.join(sorted(keys))}")


def _int(d: Mapping[str, Any], key: str, default: int, where: str) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{where}.{key}: must be an integer; got {v!r}")
    return v


def _floats(v: Any, where: str) -> list[float]:
    if not isinstance(v, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        raise ConfigError(f"{where}: must be a list of numbers; got {v!r}")
    return [float(x) for x in v]


def _strs(v: Any, where: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    if isinstance(v, Sequence) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise ConfigError(f"{where}: must be a string or a list of strings; got {v!r}")
