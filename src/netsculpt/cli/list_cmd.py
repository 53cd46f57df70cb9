"""``netsculpt list models|datasets|algorithms``: the names the other commands accept."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["KINDS", "add_parser", "names", "run"]

KINDS = ("models", "datasets", "algorithms")


def names(kind: str) -> list[str]:
    """The registered names of one kind (``models``, ``datasets`` or ``algorithms``), sorted."""
    if kind == "models":
        from netsculpt.models import list_models

        return list_models()
    if kind == "datasets":
        from netsculpt.data import list_datasets

        return list_datasets()
    from netsculpt.config.registry import list_configs

    return list_configs()


def _kind(text: str) -> str:
    """argparse type: one of :data:`KINDS` (singular accepted), with a did-you-mean."""
    import difflib

    value = text.strip().lower()
    if value in KINDS:
        return value
    if f"{value}s" in KINDS:
        return f"{value}s"
    close = difflib.get_close_matches(value, KINDS, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise argparse.ArgumentTypeError(f"unknown kind {text!r}.{hint} Choose from {', '.join(KINDS)}")


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
    """Register the ``list`` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "list",
        parents=parents or [],
        help="list the models, datasets or compression algorithms netsculpt knows",
        description="Print the registered names of one kind, one per line (all kinds when none is given).",
    )
    p.add_argument("kind", nargs="?", type=_kind, default=None, metavar="{models,datasets,algorithms}",
                   help="what to list (default: all three, with headings)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Print the names; returns 0."""
    if args.kind is not None:
        print("\n".join(names(args.kind)))
        return 0
    for i, kind in enumerate(KINDS):
        if i:
            print()
        print(f"{kind}:")
        print("\n".join(f"  {name}" for name in names(kind)))
    return 0
