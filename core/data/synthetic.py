"""The embedded synthetic dataset: real encoded clips of coloured shapes in motion, built in seconds.

Each class is ``"<colour> <shape> <motion>"``, e.g. ``"red circle moving left"`` (shapes: circle, bar,
triangle by default; square optional). The default eight motions
form four **time-reversal pairs** (moving left/right, up/down, growing/shrinking, appearing/disappearing):
a clip of one class played backwards is a clip of its pair, and both classes have the same distribution of
individual frames, so a model that averages frame features cannot tell the two apart and one that models
time can. Shapes span about a third of the frame (a 32 px model input sees them over 2 x 2 of its 8 px
patches) and travel about half of it.

Rotation (clockwise/counterclockwise, squares and triangles only: a rotating circle looks still) is
available through ``SyntheticRecipe(motions=...)`` but not in the default: on a 4 x 4 patch grid an
orientation change is nearly invisible, and a square turned 60 degrees one way ends where a 30 degree turn
the other way ends (90 degree symmetry), so the pair's direction is hardly defined.

**Base vs novel** (held-out compositions): a class is novel when its colour's and shape's indices in the
recipe's lists plus its motion pair's index sum to a multiple of 3, so every colour, shape and motion is seen in training, but about a
third of their combinations are not. Reversal partners share a split.

Splits, written as WebDataset shards through the same writer and read by the same reader as real
data (``core.data.shards`` format; labels index the split's class list, as in TC-CLIP's
base-to-novel protocol; the JSON also carries ``class_id`` in the full list):

* ``train``: base classes, ``train_per_class`` clips each;
* ``val_base``, ``val_novel``: ``val_per_class`` clips of every base / novel class.

Clips are ``size x size`` (default 64), ``num_frames`` (16) frames at 8 fps, H.264 mp4 (or MPEG-4 Part 2
when the PyAV build lacks x264), keyframe every 8 frames. :func:`synthetic_image_captions` renders
single frames of the same world with appearance captions ("a red circle", "a small blue square on
the left") for pretraining the tiny CLIP on image-text pairs.

Everything is generated once per recipe into ``$CHRONOCLIP_CACHE/synthetic/<recipe hash>/``
(default ``~/.cache/chronoclip``), under a file lock and into a temporary directory renamed into
place, so concurrent ranks build it once and never see a half-written copy.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.data.encoding import available_codec, encode_video
from core.data.shards import MANIFEST, ShardTarWriter, atomic_write_json, build_manifest
from core.io import file_lock

__all__ = [
    "MOTIONS",
    "REVERSAL_PAIRS",
    "SyntheticDataset",
    "SyntheticImageCaptions",
    "SyntheticRecipe",
    "SyntheticSplit",
    "cache_root",
    "render_clip",
    "synthetic_dataset",
    "synthetic_image_captions",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 3  # bump when rendering changes: it is part of the cache hash

COLORS = {"red": (220, 45, 45), "green": (45, 190, 70), "blue": (50, 90, 235), "yellow": (235, 210, 50),
          "white": (235, 235, 235), "purple": (160, 70, 200)}
SHAPES = ("circle", "square", "triangle", "bar")
# motion name -> (pair index, direction); the pair's two members are time reversals of each other
MOTIONS = {
    "moving left": (0, -1), "moving right": (0, 1),
    "moving up": (1, -1), "moving down": (1, 1),
    "growing": (2, 1), "shrinking": (2, -1),
    "rotating clockwise": (3, 1), "rotating counterclockwise": (3, -1),
    "appearing": (4, 1), "disappearing": (4, -1),
}
REVERSAL_PAIRS = (("moving left", "moving right"), ("moving up", "moving down"), ("growing", "shrinking"),
                  ("rotating clockwise", "rotating counterclockwise"), ("appearing", "disappearing"))


def cache_root() -> Path:
    """``$CHRONOCLIP_CACHE`` or ``~/.cache/chronoclip``."""
    return Path(os.environ.get("CHRONOCLIP_CACHE") or Path.home() / ".cache" / "chronoclip")


@dataclass(frozen=True)
class SyntheticRecipe:
    """Everything that determines the generated data (its hash names the cache directory)."""

    colors: tuple[str, ...] = ("red", "green", "blue")
    # a bar rather than a square by default: a 4 x 4 patch grid tells a bar's elongation from a circle at
    # any size, a square's corners hardly (the pretrained tiny CLIP: 73 % held-out circle/square/triangle)
    shapes: tuple[str, ...] = ("circle", "bar", "triangle")
    motions: tuple[str, ...] = tuple(m for m in MOTIONS if not m.startswith("rotating"))
    size: int = 64
    num_frames: int = 16
    fps: float = 8.0
    keyint: int = 8
    train_per_class: int = 6
    val_per_class: int = 4
    samples_per_shard: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [c for c in self.colors if c not in COLORS] + [s for s in self.shapes if s not in SHAPES] + \
                  [m for m in self.motions if m not in MOTIONS]
        if unknown:
            raise ValueError(f"unknown synthetic attributes {unknown}; colours {sorted(COLORS)}, shapes {SHAPES}, "
                             f"motions {sorted(MOTIONS)}")
        if self.size % 2 or self.size < 16:
            raise ValueError(f"size must be even and >= 16, got {self.size}")

    def digest(self) -> str:
        payload = json.dumps({**asdict(self), "version": GENERATOR_VERSION, "codec": available_codec("mp4")},
                             sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def classes(self) -> list[tuple[str, str, str]]:
        """(colour, shape, motion) of every class, in class-id order (circles do not rotate)."""
        return [(c, s, m) for c in self.colors for s in self.shapes for m in self.motions
                if not (s == "circle" and m.startswith("rotating"))]

    def is_novel(self, color: str, shape: str, motion: str) -> bool:
        return (self.colors.index(color) + self.shapes.index(shape) + MOTIONS[motion][0]) % 3 == 0



# ---------------------------------------------------------------------------------------------------------------
# Rendering


def _shape_mask(shape: str, xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, radius: float,
                angle: float) -> np.ndarray:
    """Coverage of ``shape`` on the supersampled grid (xs, ys); ``angle`` in radians, clockwise on screen."""
    dx, dy = xs - cx, ys - cy
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy  # coordinates in the shape's own (rotated) frame
    if shape == "circle":
        return (u * u + v * v) <= radius * radius
    if shape == "square":
        half = radius  # as wide as the circle: the corners stand out
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if shape == "bar":
        return (np.abs(u) <= radius * 1.1) & (np.abs(v) <= radius * 0.4)
    # equilateral triangle, circumradius `radius`, apex up at angle 0: inside all three edge half-planes
    inside = np.ones_like(u, dtype=bool)
    for normal in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3):
        inside &= (u * math.cos(normal) + v * math.sin(normal)) <= radius / 2
    return inside


def render_clip(color: str, shape: str, motion: str, *, size: int = 64, num_frames: int = 16,
                rng: np.random.Generator) -> np.ndarray:
    """One clip (T, size, size, 3) uint8. Clip parameters are drawn from ``rng``; the motion's reversal
    partner with the same draws renders the same frames in reverse order."""
    pair, direction = MOTIONS[motion]
    # draws shared by both members of a pair (drawn in the same order whatever the direction)
    radius = size * rng.uniform(0.16, 0.21)
    travel = size * rng.uniform(0.4, 0.5)
    margin = radius + 2
    low = margin + travel / 2  # the path stays inside the frame; small frames (< 64 px) centre it
    cx0, cy0 = rng.uniform(low, max(low, size - low), size=2)
    angle0 = rng.uniform(0, 2 * math.pi)
    spin = math.radians(rng.uniform(50, 70))
    ramp_mid, ramp_width = rng.uniform(0.35, 0.65), 0.4
    tint = rng.uniform(-20, 20, size=3)
    bg = np.clip(np.array([30.0, 30.0, 36.0]) + tint, 0, 255)
    rgb = np.clip(np.array(COLORS[color], dtype=np.float64) + rng.uniform(-15, 15, size=3), 0, 255)
    gradient = np.linspace(0.8, 1.2, size)[:, None, None]

    step = 0.5  # 2x supersampling for smooth edges
    coords = (np.arange(size * 2) + 0.5) * step
    xs, ys = np.meshgrid(coords, coords)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for k in range(num_frames):
        t = k / max(num_frames - 1, 1)
        s = t if direction > 0 else 1.0 - t  # the reversal partner runs the same path backwards
        cx, cy, r, angle, alpha = cx0, cy0, radius, angle0, 1.0
        if pair == 0:
            cx = cx0 + (s - 0.5) * travel
        elif pair == 1:
            cy = cy0 + (s - 0.5) * travel
        elif pair == 2:
            r = radius * (0.35 + 0.9 * s)
        elif pair == 3:
            angle = angle0 + s * spin
        else:
            alpha = float(np.clip((s - ramp_mid) / ramp_width + 0.5, 0.0, 1.0))
        mask = _shape_mask(shape, xs, ys, cx, cy, r, angle).astype(np.float64)
        cover = mask.reshape(size, 2, size, 2).mean(axis=(1, 3))[..., None] * alpha
        frame = bg * gradient * (1 - cover) + rgb * cover
        frames[k] = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    return frames


# ---------------------------------------------------------------------------------------------------------------
# The dataset


@dataclass(frozen=True)
class SyntheticSplit:
    """One split: its shards, its class list (labels index it) and the full-list ids of those classes."""

    name: str
    shards: list[str]
    class_names: list[str]
    class_ids: list[int]
    num_samples: int

    @property
    def pattern(self) -> str:
        """The shard directory (``make_video_loader`` accepts it as is)."""
        return str(Path(self.shards[0]).parent)


@dataclass(frozen=True)
class SyntheticDataset:
    """The generated dataset; ``splits["train" | "val_base" | "val_novel"]``.

    Attributes:
        root: the cache directory holding it.
        class_names: all classes (base and novel) in full-list order.
        base_ids, novel_ids: full-list ids of the base and novel classes.
        reversal_pairs: full-list id pairs ``(a, b)`` whose clips are time reversals of each other.
        recipe: the recipe it was generated from.
    """

    root: Path
    class_names: list[str]
    base_ids: list[int]
    novel_ids: list[int]
    reversal_pairs: list[tuple[int, int]]
    splits: dict[str, SyntheticSplit]
    recipe: SyntheticRecipe = field(default_factory=SyntheticRecipe)

    @property
    def train(self) -> SyntheticSplit:
        return self.splits["train"]

    def pairs_in(self, split: str) -> list[tuple[int, int]]:
        """Reversal pairs as label pairs of ``split`` (both members in it)."""
        index = {cid: i for i, cid in enumerate(self.splits[split].class_ids)}
        return [(index[a], index[b]) for a, b in self.reversal_pairs if a in index and b in index]


def _build_once(directory: Path, build) -> None:
    """Run ``build(tmp_dir)`` unless ``directory/info.json`` exists; the result is renamed into place."""
    if (directory / "info.json").is_file():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(directory.parent / f"{directory.name}.lock"):
        if (directory / "info.json").is_file():  # another process built it while we waited
            return
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
        try:
            build(tmp)
            if directory.exists():  # an incomplete copy from a crash long ago (no info.json)
                shutil.rmtree(directory)
            os.replace(tmp, directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _class_table(recipe: SyntheticRecipe) -> tuple[list[str], list[int], list[int], list[tuple[int, int]]]:
    classes = recipe.classes()
    names = [f"{c} {s} {m}" for c, s, m in classes]
    base = [i for i, cls in enumerate(classes) if not recipe.is_novel(*cls)]
    novel = [i for i, cls in enumerate(classes) if recipe.is_novel(*cls)]
    index = {cls: i for i, cls in enumerate(classes)}
    pairs = [(index[(c, s, a)], index[(c, s, b)]) for c, s, m in classes for a, b in REVERSAL_PAIRS
             if m == a and (c, s, b) in index]
    return names, base, novel, pairs


def _write_split(out: Path, name: str, recipe: SyntheticRecipe, class_ids: list[int], names: list[str],
                 per_class: int, seed: int, progress=None) -> dict:
    out.mkdir(parents=True)
    classes = recipe.classes()
    shard_entries = []
    writer: ShardTarWriter | None = None
    items = [(cid, k) for k in range(per_class) for cid in class_ids]  # interleaved: every shard has all classes
    for n, (cid, k) in enumerate(items):
        if writer is None:
            writer = ShardTarWriter(out / f"{name}-{len(shard_entries):06d}.tar")
        color, shape, motion = classes[cid]
        rng = np.random.default_rng([recipe.seed, seed, cid, k])
        frames = render_clip(color, shape, motion, size=recipe.size, num_frames=recipe.num_frames, rng=rng)
        video = encode_video(frames, fps=recipe.fps, keyint=recipe.keyint)
        meta = {"label": class_ids.index(cid), "class_id": cid, "class_name": names[cid],
                "source": f"synthetic/{name}/{cid:03d}_{k:03d}", "ext": "mp4", "num_frames": recipe.num_frames,
                "reported_frames": recipe.num_frames, "fps": recipe.fps, "width": recipe.size,
                "height": recipe.size}
        writer.add(f"{name}_{cid:03d}_{k:03d}", "mp4", video, meta)
        if progress is not None:
            progress.update(1)
        if writer.samples == recipe.samples_per_shard or n == len(items) - 1:
            shard_entries.append(writer.commit())
            writer = None
    manifest = build_manifest(shard_entries, classes=[names[i] for i in class_ids], skipped=[],
                              options={"synthetic": asdict(recipe)})
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def synthetic_dataset(root: str | os.PathLike | None = None, recipe: SyntheticRecipe | None = None
                      ) -> SyntheticDataset:
    """The synthetic video dataset, generated on first use (a few seconds) and cached.

    Args:
        root: cache root (default ``$CHRONOCLIP_CACHE`` or ``~/.cache/chronoclip``); the data goes to
            ``<root>/synthetic/<recipe hash>/``.
        recipe: what to generate (default :class:`SyntheticRecipe`: 3 colours x 3 shapes
            x 8 motions (four reversal pairs, no rotation) = 72 classes (48 base, 24 novel), 64x64 px, 16 frames).

    Returns:
        A :class:`SyntheticDataset` with the shard paths, class lists, base/novel ids and reversal pairs.
    """
    recipe = recipe or SyntheticRecipe()
    directory = Path(root or cache_root()) / "synthetic" / recipe.digest()
    names, base, novel, pairs = _class_table(recipe)

    def build(tmp: Path) -> None:
        import sys

        from tqdm import tqdm

        splits = {"train": (base, recipe.train_per_class, 1), "val_base": (base, recipe.val_per_class, 2),
                  "val_novel": (novel, recipe.val_per_class, 3)}
        total = sum(len(ids) * per_class for ids, per_class, _ in splits.values())
        with tqdm(total=total, desc="generate synthetic clips (once)", file=sys.stderr, dynamic_ncols=True,
                  leave=False) as bar:
            for split, (ids, per_class, seed) in splits.items():
                _write_split(tmp / split, split, recipe, ids, names, per_class, seed, progress=bar)
        atomic_write_json(tmp / "info.json", {"recipe": asdict(recipe), "class_names": names, "base_ids": base,
                                               "novel_ids": novel, "reversal_pairs": pairs})
        logger.info("generated the synthetic dataset (%d classes) in %s", len(names), directory)

    _build_once(directory, build)
    splits = {}
    for split, ids in (("train", base), ("val_base", base), ("val_novel", novel)):
        manifest = json.loads((directory / split / MANIFEST).read_text())
        splits[split] = SyntheticSplit(split, [str(directory / split / s["name"]) for s in manifest["shards"]],
                                       [names[i] for i in ids], list(ids), manifest["num_samples"])
    return SyntheticDataset(directory, names, base, novel, pairs, splits, recipe)


# ---------------------------------------------------------------------------------------------------------------
# Image-caption pairs


@dataclass(frozen=True)
class SyntheticImageCaptions:
    """Single frames with appearance captions, as WebDataset shards of ``png`` + ``txt`` (+ ``json``).

    ``load()`` returns them in memory: images (N, H, W, 3) uint8 and the N captions.
    """

    root: Path
    shards: list[str]
    num_samples: int

    def load(self):
        import tarfile

        import torch
        from PIL import Image

        images, captions = [], []
        for shard in self.shards:
            with tarfile.open(shard) as tar:
                members = {m.name: m for m in tar.getmembers()}
                for name in sorted(n for n in members if n.endswith(".png")):
                    images.append(np.asarray(Image.open(io.BytesIO(tar.extractfile(members[name]).read()))))
                    captions.append(tar.extractfile(members[name[:-4] + ".txt"]).read().decode())
        return torch.from_numpy(np.stack(images)), captions


_SIZE_WORDS = ("small", "medium", "large")


def _caption(color: str, shape: str, cx: float, cy: float, radius: float, alpha: float, size: int) -> str:
    """The full appearance of one frame: size, faintness, colour, shape and place on a 3 x 3 grid.

    Every frame attribute a motion changes over time (place, size, faintness) is named, so the pretrained
    image tower encodes it: a video method on a frozen CLIP can only order frames by what each frame's
    features hold. Motion words never occur.
    """
    column = ("left", None, "right")[min(2, int(3 * cx / size))]
    row = ("top", None, "bottom")[min(2, int(3 * cy / size))]
    where = "in the centre" if column is None and row is None else \
        f"at the {row}" if column is None else f"on the {column}" if row is None else f"at the {row} {column}"
    scale = _SIZE_WORDS[min(2, max(0, int((radius / size - 0.06) / 0.07)))]
    faint = "faint " if alpha < 0.6 else ""
    return f"a {scale} {faint}{color} {shape} {where}"


def synthetic_image_captions(root: str | os.PathLike | None = None, *, num_images: int = 2000,
                             recipe: SyntheticRecipe | None = None, seed: int = 0) -> SyntheticImageCaptions:
    """Image-text pairs of the synthetic world (every colour x shape, random place, size and rotation).

    Captions describe the whole appearance of the frame ("a small red circle on the left", "a large faint
    blue square at the top right": size, faintness, colour, shape, place on a 3 x 3 grid), everything a
    motion changes over time; motion words never occur, as in image-text pretraining. Cached like
    :func:`synthetic_dataset`.
    """
    from PIL import Image

    recipe = recipe or SyntheticRecipe()
    tag = hashlib.sha256(f"{recipe.digest()}-{num_images}-{seed}".encode()).hexdigest()[:16]
    directory = Path(root or cache_root()) / "synthetic" / f"images-{tag}"
    per_shard = 1000

    def build(tmp: Path) -> None:
        rng = np.random.default_rng([recipe.seed, seed, 7])
        size = recipe.size
        coords = (np.arange(size * 2) + 0.5) * 0.5
        xs, ys = np.meshgrid(coords, coords)
        entries, writer = [], None
        for n in range(num_images):
            if writer is None:
                writer = _ImageShard(tmp / f"images-{len(entries):06d}.tar")
            color = recipe.colors[int(rng.integers(len(recipe.colors)))]
            shape = recipe.shapes[int(rng.integers(len(recipe.shapes)))]
            radius = size * rng.uniform(0.1, 0.3)
            cx, cy = rng.uniform(radius + 1, size - radius - 1, size=2)
            alpha = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.3 else 1.0
            bg = np.clip(np.array([30.0, 30.0, 36.0]) + rng.uniform(-20, 20, size=3), 0, 255)
            rgb = np.clip(np.array(COLORS[color], dtype=np.float64) + rng.uniform(-15, 15, size=3), 0, 255)
            mask = _shape_mask(shape, xs, ys, cx, cy, radius, rng.uniform(0, 2 * math.pi)).astype(np.float64)
            cover = mask.reshape(size, 2, size, 2).mean(axis=(1, 3))[..., None] * alpha
            image = np.clip(bg * (1 - cover) + rgb * cover + 0.5, 0, 255).astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="png")
            caption = _caption(color, shape, cx, cy, radius, alpha, size)
            writer.add(f"img_{n:06d}", buffer.getvalue(), caption, {"color": color, "shape": shape})
            if writer.count == per_shard or n == num_images - 1:
                entries.append(writer.commit())
                writer = None
        atomic_write_json(tmp / "info.json", {"num_images": num_images, "shards": entries})

    _build_once(directory, build)
    info = json.loads((directory / "info.json").read_text())
    return SyntheticImageCaptions(directory, [str(directory / s) for s in info["shards"]], info["num_images"])


class _ImageShard:
    """Tar of ``<key>.png`` / ``<key>.txt`` / ``<key>.json`` (open_clip's image-text shard layout)."""

    def __init__(self, path: Path):
        self._writer = ShardTarWriter(path)
        self.count = 0

    def add(self, key: str, png: bytes, caption: str, meta: dict) -> None:
        for name, data in ((f"{key}.png", png), (f"{key}.txt", caption.encode()),
                           (f"{key}.json", json.dumps(meta).encode())):
            self._writer._add(name, data)
        self.count += 1

    def commit(self) -> str:
        return self._writer.commit()["name"]
