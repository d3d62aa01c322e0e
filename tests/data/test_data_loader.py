"""The streaming loader: labels, frame indices, disjoint ranks/workers, exact evaluation, corrupt samples."""

from __future__ import annotations

import logging
import tarfile
from pathlib import Path

import pytest
import torch

from core.data.encoding import encode_video
from core.data.loader import make_video_loader
from core.data.sampling import sample_views
from core.data.shards import MANIFEST, ShardTarWriter, atomic_write_json, build_manifest

IDENTITY = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def _write_shards(directory: Path, sizes: list[int], video: bytes, num_frames: int, extra=None) -> list[str]:
    """Shards of copies of ``video`` with distinct keys ``s<shard>_<i>`` and label ``i % 3``."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for shard, size in enumerate(sizes):
        with ShardTarWriter(directory / f"part-{shard:06d}.tar") as writer:
            for i in range(size):
                writer.add(f"s{shard}_{i}", "mp4", video, {"label": i % 3, "num_frames": num_frames})
            for key, ext, data, meta in (extra or {}).get(shard, []):
                writer.add(key, ext, data, meta)
            entries.append(writer.commit())
    atomic_write_json(directory / MANIFEST, build_manifest(entries, classes=["a", "b", "c"], skipped=[]))
    return [str(directory / e["name"]) for e in entries]


@pytest.fixture(scope="module")
def tiny_video(bars) -> bytes:
    return encode_video(bars[0](8, size=32, step=2), fps=8)


def _keys(loader) -> list[str]:
    return [key for batch in loader for key in batch["key"]]


def _eval(shards, **kwargs):
    options = dict(train=False, num_frames=4, input_size=32, batch_size=3, **IDENTITY)
    options.update(kwargs)
    return make_video_loader(shards, **options)


def test_eval_visits_every_sample_once_across_uneven_ranks(tmp_path, tiny_video):
    shards = _write_shards(tmp_path / "s", [5, 4, 3], tiny_video, 8)
    everything = {f"s{s}_{i}" for s, n in enumerate([5, 4, 3]) for i in range(n)}
    for workers, counts in ((0, [4, 8]), (2, [6, 6])):
        per_rank = [_keys(_eval(shards, world_size=2, rank=r, num_workers=workers)) for r in range(2)]
        # 1 worker: shard i -> rank i % 2, so rank 0 reads shards 0 and 2 (8 samples), rank 1 shard 1 (4).
        # 2 workers: 3 shards < 4 (rank, worker) slots, so every slot reads all shards, keeping j % 4 == slot.
        assert sorted(map(len, per_rank)) == counts
        assert not set(per_rank[0]) & set(per_rank[1])
        assert set(per_rank[0]) | set(per_rank[1]) == everything
        assert all(len(keys) == len(set(keys)) for keys in per_rank)
    assert len(_eval(shards, world_size=2, rank=0)) == 3  # shard 0: 5 -> 2 batches of 3, shard 2: 1 batch
    assert len(_eval(shards, world_size=2, rank=1)) == 2
    assert len(_eval(shards, world_size=2, rank=0, num_workers=2)) == 2  # 3 samples per slot


def test_eval_with_fewer_shards_than_slots_splits_samples(tmp_path, tiny_video):
    shards = _write_shards(tmp_path / "one", [7], tiny_video, 8)
    per_slot = [_keys(_eval(shards, world_size=2, rank=r, num_workers=2)) for r in range(2)]
    assert sorted(per_slot[0] + per_slot[1]) == sorted(f"s0_{i}" for i in range(7))
    assert [len(k) for k in per_slot] == [4, 3]  # slots (rank, worker): samples j % 4 == slot


def test_clips_hold_the_sampled_frames_in_crop_major_views(tmp_path, bars):
    video = encode_video(bars[0](24), fps=8, keyint=6)  # 128 x 128, frame t: bar at columns 4t..4t+3
    shards = _write_shards(tmp_path / "bars", [2], video, 24)
    loader = _eval(shards, input_size=112, num_frames=4, views=(2, 3), sampling="segment_center", batch_size=2)
    batch = next(iter(loader))
    assert batch["video"].shape == (2, 6, 4, 3, 112, 112)  # (B, clips x crops, T, 3, S, S)
    expected = sample_views("segment_center", 24, 4, 2, None)  # [[1, 7, 13, 19], [4, 10, 16, 22]]
    # view c * 2 + k is crop c of clip k; three-crop of a square frame resized to 112: offsets 0, 0, 0
    for view in range(6):
        columns = batch["video"][0, view].mean(dim=(1, 2))  # (T, W)
        shown = [int(round((torch.nonzero(c > 0.5).float().mean().item() - 1.5) / 4 / (112 / 128))) for c in columns]
        assert shown == expected[view % 2].tolist()


def test_corrupt_samples_are_skipped_counted_and_named(tmp_path, tiny_video, caplog):
    extra = {0: [("broken_clip", "mp4", b"\x00garbage" * 64, {"label": 1}),
                 ("no_label", "mp4", tiny_video, {"num_frames": 8})]}
    shards = _write_shards(tmp_path / "c", [3], tiny_video, 8, extra=extra)
    with tarfile.open(shards[0]) as tar:
        cut = tar.getmembers()[2].offset_data + 100  # inside s0_1.mp4: s0_0 is complete, the rest is lost
    truncated = Path(shards[0]).with_name("part-000001.tar")
    truncated.write_bytes(Path(shards[0]).read_bytes()[:cut])
    loader = _eval(shards + [str(truncated)], batch_size=4)
    with caplog.at_level(logging.WARNING):
        keys = _keys(loader)
    assert sorted(keys) == ["s0_0", "s0_0", "s0_1", "s0_2"]  # s0_0 twice: once from each tar
    stats = loader.last_epoch_stats
    assert stats["skipped_decode"] == 2 and stats["skipped_read"] >= 1 and stats["clips"] == len(keys)
    assert "broken_clip" in caplog.text and "no_label" in caplog.text and "2 undecodable samples" in caplog.text


def test_training_fixed_batches_disjoint_and_reproducible(small_synthetic):
    train = small_synthetic.train
    options = dict(train=True, num_frames=4, input_size=32, batch_size=2, world_size=2, num_workers=2, seed=3,
                   epoch_batches=3, shuffle_buffer=4, mean=(0.5,) * 3, std=(0.25,) * 3)
    loaders = [make_video_loader(train.pattern, rank=r, **options) for r in range(2)]
    batches = [list(loader) for loader in loaders]
    assert [len(b) for b in batches] == [3, 3] and len(loaders[0]) == 3
    keys = [[k for b in rank for k in b["key"]] for rank in batches]
    assert not set(keys[0]) & set(keys[1])
    for batch in batches[0]:  # labels index the split's class list, and match the class in the key
        for key, label in zip(batch["key"], batch["label"].tolist()):
            assert train.class_ids[label] == int(key.split("_")[1])
    again = list(make_video_loader(train.pattern, rank=0, **options))
    assert [b["key"] for b in again] == [b["key"] for b in batches[0]]
    torch.testing.assert_close(again[0]["video"], batches[0][0]["video"])
    loaders[0].set_epoch(1)
    assert [k for b in loaders[0] for k in b["key"]] != keys[0]  # a new epoch reshuffles


def test_training_uneven_shards_still_give_every_rank_the_same_batches(tmp_path, tiny_video):
    shards = _write_shards(tmp_path / "u", [6, 2, 2], tiny_video, 8)  # rank 0: 8 samples, rank 1: 2
    counts = []
    for rank in range(2):
        loader = make_video_loader(shards, train=True, num_frames=4, input_size=32, batch_size=2, world_size=2,
                                   rank=rank, epoch_batches=4, **IDENTITY)
        counts.append(len(list(loader)))
    assert counts == [4, 4]  # rank 1 resamples its shards instead of running dry


def test_synthetic_clips_show_their_class_colour(small_synthetic):
    val = small_synthetic.splits["val_base"]
    loader = make_video_loader(val.pattern, train=False, num_frames=8, input_size=64, batch_size=8, **IDENTITY)
    checked = 0
    for batch in loader:
        for video, label in zip(batch["video"], batch["label"].tolist()):
            color = val.class_names[label].split()[0]
            brightest = video.amax(dim=(0, 2, 3))  # per channel, over frames and pixels
            assert int(brightest.argmax()) == {"red": 0, "green": 1, "blue": 2}[color]
            checked += 1
    assert checked == val.num_samples


def test_argument_errors(small_synthetic):
    with pytest.raises(ValueError, match="views"):
        make_video_loader(small_synthetic.train.pattern, train=True, num_frames=4, input_size=32, batch_size=2,
                          views=(2, 1), **IDENTITY)
    with pytest.raises(ValueError, match="unknown augment keys"):
        make_video_loader(small_synthetic.train.pattern, train=True, num_frames=4, input_size=32, batch_size=2,
                          augment={"blur": 0.5}, **IDENTITY)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_video_loader("/nowhere/shard-{000..003}.tar", train=False, num_frames=4, input_size=32, batch_size=2,
                          **IDENTITY)


def test_pipe_urls_and_brace_patterns(tmp_path, tiny_video):
    shards = _write_shards(tmp_path / "p", [2, 3], tiny_video, 8)
    pattern = str(tmp_path / "p" / "part-{000000..000001}.tar")
    assert sorted(_keys(_eval(pattern))) == ["s0_0", "s0_1", "s1_0", "s1_1", "s1_2"]
    piped = _eval([f"pipe:cat {shard}" for shard in shards])  # any object store CLI works the same way
    assert sorted(_keys(piped)) == ["s0_0", "s0_1", "s1_0", "s1_1", "s1_2"]
    with pytest.raises(TypeError, match="number of batches unknown"):
        len(piped)  # no manifest reachable through a pipe
