"""Every user-facing exception netsculpt raises.

Messages follow one shape: ``<where>: <what is wrong>; got <value>. <hint>``.
"""

from __future__ import annotations

__all__ = [
    "CallbackError",
    "ConfigError",
    "DatasetError",
    "ExportError",
    "InternalError",
    "NetsculptError",
    "NotSupportedYetError",
    "ScopeError",
    "StateError",
    "TracingError",
    "UnsupportedModelError",
]


class NetsculptError(Exception):
    """Base class of every error raised by netsculpt."""


class ConfigError(NetsculptError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


class NotSupportedYetError(ConfigError):
    """A valid NNCF key or algorithm that this version of netsculpt does not implement yet."""


class StateError(ConfigError):
    """A ``compression_state`` (or checkpoint) that is malformed, from another config, or cannot be restored;
    the message locates it as ``compression_state.<path>``."""


class UnsupportedModelError(NetsculptError, ValueError):
    """A model pattern that an algorithm cannot handle; the message names the module and the op."""


class ScopeError(ConfigError, UnsupportedModelError):
    """A scope pattern of the config (``ignored_scopes``, ``target_scopes``, ``scope_overrides`` keys...) that
    matches nothing in the model: a config error about this model, so it is both."""


class TracingError(NetsculptError, RuntimeError):
    """The model could not be run on its example inputs to build the model graph."""


class InternalError(NetsculptError, RuntimeError):
    """An unexpected failure inside netsculpt (or torch under it) at a named step: ``create_compressed_model`` and
    ``strip`` leave the model as it was. The original exception is the ``__cause__``; please report it."""


class ExportError(NetsculptError, RuntimeError):
    """ONNX export failed or the exported model disagrees with PyTorch."""


class DatasetError(NetsculptError, RuntimeError):
    """A dataset is missing, corrupt (checksum mismatch) or cannot be downloaded."""


class CallbackError(NetsculptError, RuntimeError):
    """A user callback of a netsculpt loop raised; the message names the callback, the epoch and what netsculpt did
    about it (the best checkpoint restored, statistics written). The callback's exception is the ``__cause__``."""
