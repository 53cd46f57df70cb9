"""``netsculpt config-schema``: print the JSON Schema of the config (for editors and validators)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
    """Register the ``config-schema`` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "config-schema",
        parents=parents or [],
        help="print the JSON Schema of netsculpt/NNCF configs",
        description="Print the JSON Schema of the NNCF-dialect config accepted by netsculpt.",
    )
    p.add_argument("--indent", type=int, default=2, help="JSON indentation (default 2)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Print the schema to stdout."""
    from netsculpt.config import config_schema

    print(json.dumps(config_schema(), indent=args.indent))
    return 0
