"""The ``NAME`` method plugin: builds :class:`~chronoclip_NAME.model.NameModel` and loads the authors' checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from open_clip.model import CLIP

from chronoclip_NAME.convert import load_official_checkpoint
from chronoclip_NAME.model import NameModel
from chronoclip_NAME.options import NameOptions
from core.method import Method

__all__ = ["Name", "NameOptions"]


class Name(Method):
    """``--method NAME``: one line on what the method does."""

    name = "NAME"
    config_package = "chronoclip_NAME.configs"
    options_class = NameOptions
    # Optional hooks (see docs/plugin-interface.md): default_rank, wise_ft = staticmethod(your_fusion);
    # on the model: on_epoch_start(epoch), param_groups(weight_decay), class_texts(names, descriptions).

    def _build(self, clip: CLIP, *, num_frames: int, options: NameOptions) -> NameModel:
        return NameModel(clip, num_frames, options)

    def _load_official(self, path: Path, **options: Any) -> NameModel:
        return load_official_checkpoint(path, self.options(options))
