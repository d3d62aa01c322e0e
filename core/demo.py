"""``python -m core.demo OUT``: a few real mp4 files to try ``core.predict`` on, from the embedded synthetic data.

Writes ``OUT/clips/<class>.mp4`` (one 2 s clip per chosen class of the synthetic dataset, 64 px, 8 fps) and
``OUT/untrimmed.mp4`` (the clips back to back: an untrimmed video whose action changes every 2 s, for
``--timeline``). The classes are base classes of the embedded default, the ones a ``python -m core.train`` run
on it learns (and lists as its classes), so::

    python -m core.demo demo
    python -m core.predict demo/clips --checkpoint runs/vifi
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["DEMO_CLASSES", "main", "write_demo_videos"]

# base classes of the synthetic dataset: the ones a run on the embedded default trains on
DEMO_CLASSES = ("red circle growing", "green bar moving right", "blue triangle moving up",
                "red bar moving down")
FPS = 8.0
FRAMES = 16  # 2 s per clip


def _split(name: str) -> tuple[str, str, str]:
    color, shape, motion = name.split(" ", 2)
    return color, shape, motion


def write_demo_videos(out: str | Path, classes: Sequence[str] = DEMO_CLASSES, *, seed: int = 0) -> list[Path]:
    """The clips and the untrimmed video under ``out``; returns their paths (clips first)."""
    from core.data.encoding import encode_video
    from core.data.synthetic import render_clip
    from core.io import atomic_write_bytes

    out = Path(out)
    rng = np.random.default_rng(seed)
    clips = [render_clip(*_split(name), size=64, num_frames=FRAMES, rng=rng) for name in classes]
    paths = []
    for name, frames in zip(classes, clips):
        paths.append(atomic_write_bytes(out / "clips" / f"{name.replace(' ', '_')}.mp4",
                                        encode_video(frames, fps=FPS, keyint=8)))
    paths.append(atomic_write_bytes(out / "untrimmed.mp4", encode_video(np.concatenate(clips), fps=FPS, keyint=8)))
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to write clips/ and untrimmed.mp4 into")
    args = parser.parse_args(argv)
    paths = write_demo_videos(args.out)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
