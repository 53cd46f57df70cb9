"""The ``netsculpt`` command line (entry point ``netsculpt.cli.main:main``)."""

from __future__ import annotations
