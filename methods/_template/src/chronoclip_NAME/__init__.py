"""NAME for chronoclip. Paper: <title, venue>. Official code: <repository@commit>.

Where this implementation deliberately differs from the official code: <list, or "nowhere">.
"""

from __future__ import annotations

from pathlib import Path

from open_clip.model import CLIP

from core import Method, VideoModel


class Name(Method):
    name = "NAME"
    config_package = "chronoclip_NAME.configs"

    def _build(self, clip: CLIP, *, num_frames: int) -> VideoModel:
        raise NotImplementedError("build the method's VideoModel on `clip`")

    def _load_official(self, path: Path) -> VideoModel:
        raise NotImplementedError("convert the authors' checkpoint (core.serialization.safe_load)")
