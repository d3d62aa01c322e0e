"""Decoder backends side by side: raw decoding and the full data pipeline, clips/s per worker (one process).

    python benchmarks/data_pipeline.py [--clips 4] [--repeats 3] [--keyint 16] [--decoders decord,pyav,torchcodec]

Builds Kinetics-like clips (10 s, 30 fps, 340x256, H.264 with the x264 default keyframe interval of
250 frames), writes them as shards with ``core.data.shard_writer`` twice: as released, and re-encoded with
``--reencode --keyint K`` (a keyframe every K frames: a random frame costs at most K decodes instead of up
to 250). Then, for every installed decoder backend (``core.data.decoders``), both shard sets and two
access patterns with 8 frames per clip:

* **sequential**: ``dense_center:2``, 8 frames 2 apart around the middle (one seek, then consecutive frames);
* **random**: ``segment``, TSN sampling over the whole video (one frame per eighth: up to 8 seeks);

it measures

* **raw**: ``read_frames`` of the sampled frames from the sample's bytes (already read from the tar): open,
  index, seek, decode, convert to RGB; nothing else (the pipeline's per-clip seeds: the very same indices);
* **pipeline**: ``make_video_loader(train=True, num_workers=0)`` with that sampler and the TC-CLIP training
  augmentation (MultiScaleCrop, flip, colour jitter p 0.8, grayscale p 0.2, normalise): shard read ->
  shuffle -> decode -> sample -> augment -> batch.

Each figure is the median of ``--repeats`` rounds; the rounds alternate over every backend and kind, so
drift in machine load hits all alike. Time is the process's CPU time (``time.process_time``, all threads,
one decoder thread per reader): one loader worker is one process, so clips per CPU-second is its
throughput on a core of its own, and other jobs sharing the machine do not distort the ratios. Ratios are
against decord measured in the same run (``vs decord``) and against the same backend's raw decoding
(``pipeline/raw``). The colour-jitter kernel is compiled (numba; loaded from its cache) once before timing,
as the loader does before forking its workers. ``pipeline/raw`` of the random (``segment``, the training
default) rows is the issue-15 target (>= 0.9); the pipeline also reads the tar, fills the shuffle buffer
(the first ``--clips`` samples: a start-up cost that a long epoch amortises) and runs the decode under the
watchdog thread. Last, the time to generate the default embedded synthetic dataset (``--no-synthetic``
skips it; its budget is ~30 s on 2 cores). Runtime: a few minutes on 2 free cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from core.data.decoders import DECODERS, decoder_status
from core.data.decoding import read_frames
from core.data.encoding import encode_video
from core.data.loader import make_video_loader
from core.data.sampling import sample_views
from core.data.shard_writer import ShardOptions, folder_entries, write_shards
from core.data.synthetic import synthetic_dataset
from core.data.transforms import compile_color_jitter

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
NUM_FRAMES, INPUT_SIZE, SEED = 8, 224, 0
ACCESS = {"sequential": "dense_center:2", "random": "segment"}
AUGMENT = {"crop": "multiscale", "flip": 0.5, "color_jitter": 0.8, "grayscale": 0.2}


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


def load_samples(shards: Path) -> list[tuple[str, bytes, int]]:
    """(key, video bytes, validated frame count) of every sample, read from the tars once."""
    samples = []
    for shard in sorted(shards.glob("*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: m for m in tar.getmembers()}
            for name in sorted(n for n in members if n.endswith(".mp4")):
                key = name[:-4]
                meta = json.loads(tar.extractfile(members[key + ".json"]).read())
                samples.append((key, tar.extractfile(members[name]).read(), int(meta["num_frames"])))
    return samples


def raw_decode(samples: list[tuple[str, bytes, int]], sampling: str, decoder: str) -> float:
    """CPU seconds to decode the sampled frames of every sample with bare ``read_frames`` (no time bound)."""
    start = time.process_time()
    for key, data, num_frames in samples:
        # the pipeline's per-clip seed (seed, epoch 0, key): the very same frame indices
        rng = np.random.default_rng([SEED, 0, zlib.crc32(key.encode())])
        decoded = read_frames(data, lambda n, rng=rng: sample_views(sampling, n, NUM_FRAMES, 1, rng),
                              num_frames=num_frames, timeout=None, decoder=decoder)
        assert decoded.frames.shape == (1, NUM_FRAMES, 256, 340, 3)
    return time.process_time() - start


def pipeline(shards: Path, clips: int, sampling: str, decoder: str) -> float:
    """CPU seconds for ``clips`` training clips through ``make_video_loader``."""
    loader = make_video_loader(shards, train=True, num_frames=NUM_FRAMES, input_size=INPUT_SIZE, mean=CLIP_MEAN,
                               std=CLIP_STD, batch_size=1, num_workers=0, seed=SEED, epoch_batches=clips,
                               sampling=sampling, augment=AUGMENT, shuffle_buffer=clips, decoder=decoder)
    start, count = time.process_time(), 0
    for batch in loader:
        assert batch["video"].shape == (1, NUM_FRAMES, 3, INPUT_SIZE, INPUT_SIZE)
        count += 1
    assert count == clips
    return time.process_time() - start


def measure(shard_sets: dict[str, Path], clips: int, repeats: int, backends: list[str]) -> list[dict]:
    """Median clips/s of every (shards, access, backend, raw|pipeline), rounds alternating over all of them."""
    samples = {label: load_samples(path) for label, path in shard_sets.items()}
    compile_color_jitter()  # a one-off per process (numba import + cached kernel), as the loader does before forking
    times: dict[tuple, list[float]] = {}
    for _ in range(repeats):
        for label, path in shard_sets.items():
            for access, sampling in ACCESS.items():
                for backend in backends:
                    times.setdefault((label, access, backend, "raw"), []).append(
                        len(samples[label]) / raw_decode(samples[label], sampling, backend))
                    times.setdefault((label, access, backend, "pipeline"), []).append(
                        clips / pipeline(path, clips, sampling, backend))
    rows = []
    for label in shard_sets:
        for access in ACCESS:
            base_raw = statistics.median(times[(label, access, backends[0], "raw")])
            base_pipe = statistics.median(times[(label, access, backends[0], "pipeline")])
            for backend in backends:
                raw = statistics.median(times[(label, access, backend, "raw")])
                pipe = statistics.median(times[(label, access, backend, "pipeline")])
                rows.append({"shards": label, "access": f"{access} ({ACCESS[access]})", "decoder": backend,
                             "raw": raw, "raw_vs_base": raw / base_raw, "pipeline": pipe,
                             "pipeline_vs_base": pipe / base_pipe, "pipeline_over_raw": pipe / raw})
    return rows


def table(rows: list[dict], base: str) -> str:
    lines = [f"| shards | access | decoder | raw clips/s | raw vs {base} | pipeline clips/s | pipeline vs {base} | "
             "pipeline / raw |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['shards']} | {r['access']} | {r['decoder']} | {r['raw']:.2f} | {r['raw_vs_base']:.2f} | "
                     f"{r['pipeline']:.2f} | {r['pipeline_vs_base']:.2f} | {r['pipeline_over_raw']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=4, help="Kinetics-like clips to build (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="measurement rounds; medians are reported (default 3)")
    parser.add_argument("--keyint", type=int, default=16, help="keyframe interval of the re-encoded shards")
    parser.add_argument("--decoders", default=",".join(DECODERS),
                        help="backends to compare, the first is the baseline (default decord,pyav,torchcodec)")
    parser.add_argument("--no-synthetic", action="store_true", help="skip timing the synthetic dataset generation")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(1)  # one worker = one core, as in a DataLoader worker
    backends = []
    for name in args.decoders.split(","):
        problem = decoder_status(name)
        if problem:
            print(f"skipping decoder {name}: {problem}")
        else:
            backends.append(name)
    if not backends:
        raise SystemExit("no decoder backend is available")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        raw_shards, keyint_shards = build_shards(Path(tmp), args.clips, args.keyint)
        print(f"built {args.clips} clips (10 s, 30 fps, 340x256 H.264) and their shards in "
              f"{time.perf_counter() - start:.1f} s")
        shard_sets = {"as released (keyint 250)": raw_shards, f"re-encoded (keyint {args.keyint})": keyint_shards}
        for label, path in shard_sets.items():
            size = sum(p.stat().st_size for p in path.glob("*.tar")) / args.clips / 1e6
            print(f"{label}: {size:.2f} MB/clip")
        start = time.perf_counter()
        rows = measure(shard_sets, args.clips, args.repeats, backends)
        print(f"\nclips/s per worker (1 thread, CPU time), medians of {args.repeats} rounds, "
              f"{time.perf_counter() - start:.0f} s:\n")
        print(table(rows, backends[0]))
        if not args.no_synthetic:
            start = time.perf_counter()
            dataset = synthetic_dataset(Path(tmp) / "cache")
            print(f"\ndefault synthetic dataset ({len(dataset.class_names)} classes, "
                  f"{sum(s.num_samples for s in dataset.splits.values())} clips) generated in "
                  f"{time.perf_counter() - start:.1f} s wall")


if __name__ == "__main__":
    main()
