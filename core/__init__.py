"""chronoclip core: the CLIP backbone, objectives, method plugins, video data and the trainer.

Importing ``core`` is light: the plugin API below loads on first use (it pulls in open_clip), and the
DeepSpeed trainer lives in ``core.train``, imported only there.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Method", "UnknownMethodError", "VideoModel", "list_methods", "load_method", "load_official"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from core.method import Method, UnknownMethodError, VideoModel, list_methods, load_method, load_official


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("core.method"), name)
    raise AttributeError(f"module 'core' has no attribute {name!r}")
