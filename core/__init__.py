"""chronoclip core: the CLIP backbone, objectives, method plugins, video data and the trainer.

Importing ``core`` is light: the DeepSpeed trainer lives in ``core.train`` and is imported only there.
"""

from core.method import (
    Method,
    UnknownMethodError,
    VideoModel,
    list_methods,
    load_method,
    load_official,
)

__all__ = ["Method", "UnknownMethodError", "VideoModel", "list_methods", "load_method", "load_official"]
__version__ = "0.1.0"
