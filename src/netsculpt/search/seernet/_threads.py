"""Run SeerNet's tiny tensor ops on one torch thread: thread hand-offs cost more than the ops themselves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["one_thread"]


@contextmanager
def one_thread() -> Iterator[None]:
    """Set torch to one intra-op thread inside the block and restore the previous count after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
