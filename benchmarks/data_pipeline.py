"""Data pipeline throughput against raw decord decoding of the same frames, per worker (one process).

    python benchmarks/data_pipeline.py [--clips 6] [--rounds 3] [--keyint 16]

Builds Kinetics-like clips (10 s, 30 fps, 340x256, H.264 with the x264 default keyframe interval of
250 frames), writes them as shards with ``core.data.shard_writer``, then measures in the same run:

* **raw**: read each sample's bytes from the shard, ``decord.VideoReader(BytesIO, num_threads=1)``,
  ``get_batch`` of 8 TSN-sampled frames (the same sampler and seeds as the pipeline); nothing else;
* **pipeline**: ``make_video_loader(num_frames=8, input_size=224, num_workers=0)``: shard read ->
  decode -> sample -> transforms -> batch, once with the test transform (short side 256, centre crop
  224, normalise) and once with the TC-CLIP training augmentation (MultiScaleCrop, flip, colour jitter
  re-drawn per frame with p 0.8, grayscale p 0.2, normalise);

and prints clips/s of each and the ratios to raw decoding (target >= 0.9). The two are measured in alternation,
``--rounds`` times, and the best round of each is kept. Time is the process's CPU time
(``time.process_time``, all threads): one loader worker is one process, so clips per CPU-second is its
throughput on a core of its own, and other jobs sharing the machine do not distort the ratio. Then the same for shards re-encoded with ``--reencode --keyint K`` (keyframe every
K frames: a random frame costs at most K decodes instead of up to 250), to show what it buys, and
the shard sizes of both. Last, the time to generate the default embedded synthetic dataset (its budget
is ~30 s on 2 cores). Runtime about 1-2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from core.data.encoding import encode_video
from core.data.loader import make_video_loader
from core.data.sampling import segment
from core.data.shard_writer import ShardOptions, folder_entries, write_shards
from core.data.synthetic import synthetic_dataset

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
NUM_FRAMES, INPUT_SIZE, SEED = 8, 224, 0


def kinetics_like_clip(index: int, frames: int = 300, height: int = 256, width: int = 340) -> np.ndarray:
    """A moving textured scene: a drifting noise background and two moving blocks (compresses like video)."""
    rng = np.random.default_rng(index)
    texture = rng.integers(0, 255, size=(height + 64, width + 64, 3), dtype=np.uint8)
    texture = (texture.astype(np.float32) * 0.3 + 90).astype(np.uint8)
    clip = np.empty((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        dy, dx = (t // 3) % 64, (t // 2) % 64
        frame = texture[dy:dy + height, dx:dx + width].copy()
        x = int((t * 3 + index * 40) % (width - 60))
        frame[60:120, x:x + 60] = (200, 60, 60)
        frame[150:200, width - 60 - x // 2:width - 10 - x // 2] = (60, 180, 220)
        clip[t] = frame
    return clip


def build_shards(root: Path, clips: int, keyint: int) -> tuple[Path, Path]:
    videos = root / "videos" / "class0"
    videos.mkdir(parents=True)
    for i in range(clips):
        (videos / f"clip{i:03d}.mp4").write_bytes(encode_video(kinetics_like_clip(i), fps=30))
    entries, classes = folder_entries(root / "videos", None)
    raw, reencoded = root / "shards_raw", root / "shards_keyint"
    write_shards(entries, root / "videos", raw, classes=classes, options=ShardOptions(), progress=False)
    write_shards(entries, root / "videos", reencoded, classes=classes, progress=False,
                 options=ShardOptions(reencode=True, keyint=keyint))
    return raw, reencoded


def raw_decode(shards: Path) -> tuple[float, int]:
    """Seconds to decode the 8 sampled frames of every clip with bare decord (bytes read from the tar)."""
    import decord

    start, count = time.process_time(), 0
    for shard in sorted(shards.glob("*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: m for m in tar.getmembers()}
            for name in sorted(n for n in members if n.endswith(".mp4")):
                key = name[:-4]
                meta = json.loads(tar.extractfile(members[key + ".json"]).read())
                data = tar.extractfile(members[name]).read()
                reader = decord.VideoReader(io.BytesIO(data), ctx=decord.cpu(0), num_threads=1)
                # the pipeline's per-clip seed (seed, epoch 0, key): the very same frame indices
                rng = np.random.default_rng([SEED, 0, zlib.crc32(key.encode())])
                indices = segment(min(len(reader), meta["num_frames"]), NUM_FRAMES, rng)
                frames = reader.get_batch(np.unique(indices).tolist()).asnumpy()
                assert frames.shape[1:] == (256, 340, 3)
                count += 1
    return time.process_time() - start, count


def pipeline(shards: Path, clips: int, train: bool) -> tuple[float, int]:
    """Seconds for ``clips`` clips through ``make_video_loader``: training augmentation, or the test transform."""
    augment = {"crop": "multiscale", "flip": 0.5, "color_jitter": 0.8, "grayscale": 0.2}
    loader = make_video_loader(shards, train=train, num_frames=NUM_FRAMES, input_size=INPUT_SIZE, mean=CLIP_MEAN,
                               std=CLIP_STD, batch_size=1, num_workers=0, seed=SEED, epoch_batches=clips,
                               sampling="segment", augment=augment if train else None)
    start, count = time.process_time(), 0
    for batch in loader:
        assert batch["video"].shape == (1, NUM_FRAMES, 3, INPUT_SIZE, INPUT_SIZE)
        count += 1
    return time.process_time() - start, count


def measure(shards: Path, clips: int, rounds: int) -> tuple[float, float, float]:
    """Best clips/s of (raw decord, pipeline with the test transform, pipeline with training augmentation)."""
    best = [0.0, 0.0, 0.0]
    for _ in range(rounds):
        for i, run in enumerate((lambda: raw_decode(shards), lambda: pipeline(shards, clips, False),
                                 lambda: pipeline(shards, clips, True))):
            seconds, n = run()
            best[i] = max(best[i], n / seconds)
    return best[0], best[1], best[2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=6, help="Kinetics-like clips to build (default 6)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds (default 3)")
    parser.add_argument("--keyint", type=int, default=16, help="keyframe interval of the re-encoded shards")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(1)  # one worker = one core, as in a DataLoader worker
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        raw_shards, keyint_shards = build_shards(Path(tmp), args.clips, args.keyint)
        print(f"built {args.clips} clips (10 s, 30 fps, 340x256 H.264) and their shards in "
              f"{time.perf_counter() - start:.1f} s")
        for label, shards in (("as released (keyint 250)", raw_shards), (f"re-encoded keyint {args.keyint}",
                                                                         keyint_shards)):
            raw, test, train = measure(shards, args.clips, args.rounds)
            size = sum(p.stat().st_size for p in shards.glob("*.tar")) / args.clips / 1e6
            print(f"{label}: {size:.2f} MB/clip; clips/s per worker: raw decord {raw:.2f} | pipeline, test "
                  f"transform {test:.2f} (ratio {test / raw:.2f}) | pipeline, training augmentation {train:.2f} "
                  f"(ratio {train / raw:.2f}); target ratio >= 0.9")
        start = time.perf_counter()
        dataset = synthetic_dataset(Path(tmp) / "cache")
        print(f"default synthetic dataset ({len(dataset.class_names)} classes, "
              f"{sum(s.num_samples for s in dataset.splits.values())} clips) generated in "
              f"{time.perf_counter() - start:.1f} s wall")

if __name__ == "__main__":
    main()
