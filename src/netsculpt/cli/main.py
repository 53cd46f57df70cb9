"""``netsculpt`` command line: ``compress``, ``demo``, ``list``, ``config-schema``, ``search`` and ``supernet``.

Errors from netsculpt (bad config, unknown model, missing dataset...) and file-system errors print
``error: <message>`` (one line, with the path and the cause) to stderr and exit with code 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from netsculpt.cli import compress, config_schema, demo, list_cmd, search_cmd, supernet_cmd
from netsculpt.errors import NetsculptError

__all__ = ["EXIT_ERROR", "build_parser", "main"]

EXIT_ERROR = 2


def _common() -> argparse.ArgumentParser:
    """Flags accepted both before and after the subcommand (defaults suppressed so they do not overwrite)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks instead of one-line errors")
    parent.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log INFO messages from the library to stderr")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    from netsculpt import __version__

    parser = argparse.ArgumentParser(
        prog="netsculpt",
        description="Compress PyTorch models with NNCF 2.x configs: train, quantize, export to ONNX, report.",
    )
    parser.add_argument("--version", action="version", version=f"netsculpt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO messages from the library")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parent = _common()
    for module in (compress, demo, list_cmd, config_schema, search_cmd, supernet_cmd):
        module.add_parser(sub, parents=[parent])
    return parser


def _os_error_line(err: OSError) -> str:
    """``<path>: <cause>`` for a file-system error (both paths for a rename/copy), else the error text."""
    cause = err.strerror or str(err) or type(err).__name__
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {cause}" if paths else cause


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success, 2 on a netsculpt error).

    Args:
        argv: arguments without the program name (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("netsculpt.progress").setLevel(logging.INFO)  # redirected runs still show progress lines
    try:
        return int(args.func(args))
    except NetsculptError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as err:
        if args.debug:
            raise
        print(f"error: {_os_error_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
