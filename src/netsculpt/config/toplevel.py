"""Top-level keys of an NNCF-dialect config that netsculpt does not read.

NNCF 2.x's sample configs keep their training script's settings (``model``, ``batch_size``, ``optimizer``,
``dataset``...) at the top level of the same file, and NNCF's schema allows that. netsculpt keeps such keys in
the config and ignores them with one warning listing them; ``strict=True`` makes them an error. A key that is
a near miss of a netsculpt key (``compresion``) is an error either way, as is a section netsculpt does not
implement yet (:data:`NOT_YET_SECTIONS`).

Sections read by another part of netsculpt (:data:`PARSED_SECTIONS`: ``bootstrapNAS``, read by
``netsculpt.nas.bootstrapnas``) are validated here, with located errors, and are neither warned about nor refused
by ``strict``; like the script keys they are not read by ``create_compressed_model`` and are listed in
``ignored_keys``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from netsculpt.config.checks import did_you_mean, fail
from netsculpt.errors import NotSupportedYetError

__all__ = ["NOT_YET_SECTIONS", "PARSED_SECTIONS", "ignored_top_level_keys"]

logger = logging.getLogger(__name__)

#: Top-level NNCF sections netsculpt does not implement yet -> where to follow them.
NOT_YET_SECTIONS: dict[str, str] = {}
#: Top-level sections validated by another package -> ``module:function`` taking the section (imported lazily).
PARSED_SECTIONS = {
    "bootstrapNAS": "netsculpt.nas.bootstrapnas.params:parse_bootstrapnas",
}
_warned: set[tuple[str, ...]] = set()


def ignored_top_level_keys(data: Mapping[str, Any], known: Iterable[str], *, strict: bool) -> tuple[str, ...]:
    """The keys of ``data`` that netsculpt does not read (logged once per distinct set).

    Raises:
        NotSupportedYetError: a section of :data:`NOT_YET_SECTIONS`.
        ConfigError: a bad section of :data:`PARSED_SECTIONS` (located inside it), a near miss of a known key
            (with did-you-mean), or any unknown key with ``strict``.
    """
    known = list(known)
    unknown = [str(k) for k in data if k not in known]
    for key in unknown:
        if key in PARSED_SECTIONS:
            module, _, func = PARSED_SECTIONS[key].partition(":")
            getattr(importlib.import_module(module), func)(data[key], key)
            continue
        if key in NOT_YET_SECTIONS:
            raise NotSupportedYetError(f"{key}: not supported yet by netsculpt ({NOT_YET_SECTIONS[key]}). Remove "
                                       "the section to compress without it")
        guess = did_you_mean(key, [*known, *PARSED_SECTIONS], cutoff=0.85)
        if guess is not None:
            raise fail(key, "unknown key", hint=f"Did you mean '{guess}'?")
    parsed = tuple(k for k in unknown if k in PARSED_SECTIONS)
    unknown = [k for k in unknown if k not in PARSED_SECTIONS]
    if not unknown:
        return parsed
    if strict:
        raise fail(unknown[0], "unknown key (strict config)",
                   hint=f"Known keys: {', '.join(sorted(known))}; every unknown key: {', '.join(unknown)}")
    if tuple(unknown) not in _warned:
        _warned.add(tuple(unknown))
        logger.warning("config: ignoring %d top-level keys netsculpt does not read (training-script settings, as in "
                       "NNCF's samples): %s. Pass strict=True (CLI --strict-config) to make them an error",
                       len(unknown), ", ".join(unknown))
    return parsed + tuple(unknown)
