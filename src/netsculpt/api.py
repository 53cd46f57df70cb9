"""NNCF 2.x entry points: ``create_compressed_model``, ``register_default_init_args``, ``load_state``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from netsculpt.algorithms.base import BuildContext, get_algorithm
from netsculpt.algorithms.stacking import check_stack
from netsculpt.config.nncf_config import InputInfo, NNCFConfig
from netsculpt.controller import STATE_VERSION, CompressionController
from netsculpt.distributed import sync_compression
from netsculpt.errors import ConfigError, InternalError, NetsculptError
from netsculpt.graph.hooks import get_runtime
from netsculpt.graph.trace import ModelGraph
from netsculpt.init_args import (
    BNAdaptationInitArgs,
    CriterionInitArgs,
    InitializingDataLoader,
    LeGRInitArgs,
    QuantizationRangeInitArgs,
    wrap_loader,
)
from netsculpt.rollback import ModelSnapshot
from netsculpt.state_schema import config_differences, state_error, validate_state

__all__ = [
    "BNAdaptationInitArgs",
    "InitializingDataLoader",
    "LeGRInitArgs",
    "QuantizationRangeInitArgs",
    "create_compressed_model",
    "load_state",
    "register_default_init_args",
]

logger = logging.getLogger(__name__)
_DTYPES = {
    "float": torch.float32,
    "long": torch.int64,
    "int": torch.int32,
    "bool": torch.bool,
    "half": torch.float16,
    "double": torch.float64,
    "uint8": torch.uint8,
}


def register_default_init_args(
    nncf_config: NNCFConfig | dict[str, Any],
    train_loader: Iterable[Any],
    criterion: Any = None,
    criterion_fn: Callable[..., Any] | None = None,
    train_steps_fn: Callable[..., Any] | None = None,
    validate_fn: Callable[..., Any] | None = None,
    val_loader: Iterable[Any] | None = None,
    autoq_eval_fn: Callable[..., Any] | None = None,
    model_eval_fn: Callable[..., Any] | None = None,
    distributed_callbacks: Any = None,
    execution_parameters: Any = None,
    legr_train_optimizer: torch.optim.Optimizer | None = None,
    device: str | None = None,
    legr_executor: Any = None,
    **_unused: Any,
) -> NNCFConfig:
    """Attach training data (and criterion) to the config for range init, BN adaptation and LeGR.

    The arguments follow NNCF 2.x's order. ``train_steps_fn``, ``validate_fn``, ``val_loader`` and
    ``legr_train_optimizer`` are used by ``interlayer_ranking_type: learned_ranking`` (LeGR; defaults: SGD
    steps with ``criterion`` and top-1 on a held-out slice of ``train_loader``). ``autoq_eval_fn``,
    ``model_eval_fn``, ``distributed_callbacks`` and ``execution_parameters`` are accepted and ignored.
    ``legr_executor`` (netsculpt) runs LeGR's candidate evaluations on a ``netsculpt.search`` executor
    (``ProcessPoolExecutor``, ``DaskExecutor``); the default evaluates them one by one in this process.
    """
    cfg = nncf_config if isinstance(nncf_config, NNCFConfig) else NNCFConfig.from_dict(nncf_config)
    loader = wrap_loader(train_loader)
    structs: list[Any] = [
        QuantizationRangeInitArgs(loader, device),
        BNAdaptationInitArgs(loader, device),
        LeGRInitArgs(train_loader, train_steps_fn, val_loader, validate_fn, legr_train_optimizer, legr_executor),
    ]
    if criterion is not None:
        structs.append(CriterionInitArgs(criterion, criterion_fn, loader))
    cfg.register_extra_structs(structs)
    return cfg


def make_example_inputs(infos: tuple[InputInfo, ...], device: torch.device) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Example inputs built from ``input_info`` (seeded, so graph tracing is reproducible)."""
    gen = torch.Generator().manual_seed(0)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for info in infos:
        dtype = _DTYPES[info.type]
        shape = tuple(info.sample_size)
        filler = info.filler or ("random" if dtype.is_floating_point else "zeros")
        if filler == "zeros":
            t = torch.zeros(shape, dtype=dtype)
        elif filler == "ones":
            t = torch.ones(shape, dtype=dtype)
        elif dtype.is_floating_point:
            t = torch.randn(shape, generator=gen).to(dtype)
        else:
            t = torch.randint(0, 2, shape, generator=gen).to(dtype)
        t = t.to(device)
        if info.keyword:
            kwargs[info.keyword] = t
        else:
            args.append(t)
    return tuple(args), kwargs


def create_compressed_model(
    model: nn.Module,
    config: NNCFConfig | dict[str, Any],
    compression_state: dict[str, Any] | None = None,
    *,
    example_inputs: tuple[Any, ...] | None = None,
    example_kwargs: dict[str, Any] | None = None,
    allow_config_change: bool = False,
    **_nncf_kwargs: Any,
) -> tuple[CompressionController, nn.Module]:
    """Compress ``model`` in place as the config says; returns ``(controller, model)``.

    The model keeps its class and its own state_dict keys; compression modules live under
    ``model._netsculpt``. Every algorithm checks the model before any of them changes it; if anything fails,
    the model is left as it was.

    Args:
        model: the user's model (any ``nn.Module``).
        config: an ``NNCFConfig`` or a plain dict in NNCF's JSON dialect.
        compression_state: ``ctrl.get_compression_state()`` from a checkpoint, to resume.
        example_inputs: inputs for tracing; default: built from ``input_info``.
        example_kwargs: keyword inputs for tracing.
        allow_config_change: resume ``compression_state`` under a config that differs from the one it was saved
            with (a warning lists the differences); by default that is a ``StateError`` naming the differing keys.

    Raises:
        ConfigError: invalid config. StateError (a ConfigError): a malformed ``compression_state``, or one saved
            with a different config. UnsupportedModelError: a model pattern an algorithm cannot handle.
        TracingError: the model failed on its example inputs. InternalError: anything else failed unexpectedly
            (the step is named, the original exception chained).

    Example:
        >>> ctrl, model = create_compressed_model(model, {"input_info": {"sample_size": [1, 3, 32, 32]},
        ...                                              "compression": {"algorithm": "quantization"}})
    """
    step = _Step()
    try:
        return _create(model, config, compression_state, example_inputs, example_kwargs, allow_config_change, step)
    except NetsculptError:
        raise
    except Exception as err:  # the model is as it was (checked, or restored from the snapshot): say so, chained
        raise InternalError(
            f"create_compressed_model: unexpected {type(err).__name__} while {step.now}: {err}. The model was left "
            "as it was. This is a netsculpt bug or an environment problem (memory, devices); please report it "
            "with the traceback"
        ) from err


class _Step:
    """What ``create_compressed_model`` is doing, for the message of an unexpected failure."""

    now = "parsing the config"


def _create(
    model: nn.Module,
    config: NNCFConfig | dict[str, Any],
    compression_state: dict[str, Any] | None,
    example_inputs: tuple[Any, ...] | None,
    example_kwargs: dict[str, Any] | None,
    allow_config_change: bool,
    step: _Step,
) -> tuple[CompressionController, nn.Module]:
    import netsculpt.algorithms  # noqa: F401  (registers the algorithms; imported late to avoid a cycle)

    cfg = config if isinstance(config, NNCFConfig) else NNCFConfig.from_dict(config)
    step.now = "checking the model and the compression_state"
    if get_runtime(model) is not None:
        raise ConfigError("model: already compressed by netsculpt; strip it or pass the original model")
    if compression_state is not None:
        _check_state(compression_state, cfg, allow_config_change)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if example_inputs is None:
        if not cfg.input_infos and not example_kwargs:
            raise ConfigError(
                "input_info: required to build example inputs; got nothing. "
                'Add "input_info": {"sample_size": [1, C, H, W]} or pass example_inputs='
            )
        step.now = "building example inputs from input_info"
        example_inputs, built_kwargs = make_example_inputs(cfg.input_infos, device)
        example_kwargs = {**built_kwargs, **(example_kwargs or {})}
    step.now = "tracing the model"
    graph = ModelGraph.build(model, tuple(example_inputs), example_kwargs)
    builder_state = (compression_state or {}).get("builder_state", {})
    plans = []
    for algo_cfg in cfg.algorithms:
        algo = get_algorithm(algo_cfg.algorithm)
        step.now = f"checking {algo.name}"
        ctx = BuildContext(
            cfg, graph, tuple(example_inputs), example_kwargs or {}, device, builder_state.get(algo.name)
        )
        ctx.extra["model"] = model  # read-only in check(): knowledge_distillation copies it as the teacher
        ctx.extra["allow_config_change"] = allow_config_change
        plans.append((algo, algo_cfg, algo.check(algo_cfg, ctx), ctx))
    step.now = "checking the stack"
    check_stack([(algo, algo_cfg, plan) for algo, algo_cfg, plan, _ in plans], graph)
    snapshot = ModelSnapshot.take(model)
    try:  # everything that changes the model, the controller and the resumed state: all or nothing
        parts = []
        for algo, algo_cfg, plan, ctx in plans:
            step.now = f"applying {algo.name}"
            with _resume_errors(compression_state, f"builder_state.{algo.name}"):
                parts.append(algo.apply(model, algo_cfg, plan, ctx))
        step.now = "building the controller"
        ctrl = CompressionController(model, parts, cfg, tuple(example_inputs), example_kwargs, graph=graph)
        if compression_state is not None:
            step.now = "loading compression_state"
            with _resume_errors(compression_state, "ctrl_state"):
                ctrl.load_state(compression_state)
        step.now = "synchronising the compression across processes"
        sync_compression(model, ctrl)  # under torch.distributed: rank 0's decisions and tensors everywhere
    except BaseException:
        snapshot.restore()
        raise
    return ctrl, model


def _check_state(state: dict[str, Any], cfg: NNCFConfig, allow_config_change: bool) -> None:
    validate_state(state, STATE_VERSION)
    diffs = config_differences(state, cfg)
    if not diffs:
        return
    shown = "; ".join(diffs[:8]) + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else "")
    if allow_config_change:
        logger.warning("compression_state: resuming under a different config (allow_config_change=True): %s", shown)
        return
    raise state_error(
        "fingerprint",
        f"the state was saved with a different config; differs at {shown}",
        hint="Resume with the config the checkpoint was saved with, or pass allow_config_change=True to "
        "create_compressed_model to resume under this one",
    )


@contextlib.contextmanager
def _resume_errors(state: dict[str, Any] | None, where: str) -> Iterator[None]:
    """While resuming, a raw exception from reading the state becomes a ``StateError`` located at ``where``."""
    try:
        yield
    except NetsculptError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        if state is None:
            raise
        raise state_error(where, f"cannot be restored ({type(err).__name__}: {err})") from err


def load_state(
    model: nn.Module,
    state_dict_to_load: dict[str, Any],
    is_resume: bool = False,
    keys_to_ignore: list[str] | None = None,
) -> int:
    """Load a checkpoint into a (compressed) model; returns how many tensors were loaded.

    ``is_resume=False`` (fine-tuning from an FP32 checkpoint): compression keys may be missing.
    ``is_resume=True``: every key must match, else a ConfigError lists the differences.
    A ``module.`` prefix (DataParallel) is removed.
    """
    ignore = set(keys_to_ignore or [])
    sd = {k.removeprefix("module."): v for k, v in state_dict_to_load.items() if k not in ignore}
    own = model.state_dict()
    missing = [k for k in own if k not in sd and k not in ignore]
    unexpected = [k for k in sd if k not in own]
    mismatched = [k for k in sd if k in own and tuple(sd[k].shape) != tuple(own[k].shape)]
    if mismatched:
        raise ConfigError(f"load_state: shape mismatch for {mismatched[:5]}")
    if is_resume and (missing or unexpected):
        raise ConfigError(
            f"load_state: resuming needs an exact match; missing {missing[:5]} ({len(missing)}), "
            f"unexpected {unexpected[:5]} ({len(unexpected)}). Use is_resume=False to load an uncompressed checkpoint"
        )
    not_compression = [k for k in missing if "_netsculpt." not in k]
    if not_compression:
        logger.warning(
            "load_state: %d model tensors not in the checkpoint: %s", len(not_compression), not_compression[:5]
        )
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    return len([k for k in sd if k in own])
