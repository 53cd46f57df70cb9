"""Minimal torchvision stand-in for the bench venv only.

NNCF 2.19's accuracy-aware runner does ``from torchvision.transforms import ToTensor`` at import
time; torchvision cannot be installed beside torch 2.13 here. This stub only provides that name.
It is put on sys.path by bench/_peers.py *after* the real site-packages, and only when no real
torchvision is importable. Never install it anywhere.
"""

__version__ = "0.0.0+netsculpt-bench-stub"

from . import transforms  # noqa: E402,F401
