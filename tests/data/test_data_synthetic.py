"""The embedded synthetic dataset: classes, reversal pairs, base/novel compositions, caching, captions."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from core.data import synthetic
from core.data.synthetic import REVERSAL_PAIRS, SyntheticRecipe, render_clip


@pytest.mark.parametrize("pair", REVERSAL_PAIRS)
def test_reversal_partner_is_the_clip_played_backwards(pair):
    forward, backward = pair
    shape = "square" if forward.startswith("rotating") else "triangle"
    a = render_clip("red", shape, forward, rng=np.random.default_rng(7))
    b = render_clip("red", shape, backward, rng=np.random.default_rng(7))
    assert (a[::-1] == b).all() and not (a == b).all()
    # the pair has the same average frame: only the order of frames tells the two classes apart
    assert np.abs(a.astype(float).mean(0) - b.astype(float).mean(0)).max() == 0


def test_motions_move_the_right_way():
    def centroid(frame):
        mask = frame.astype(float).max(-1) > 100
        ys, xs = np.nonzero(mask)
        return xs.mean(), ys.mean(), mask.sum()

    clip = render_clip("green", "circle", "moving left", rng=np.random.default_rng(0))
    assert centroid(clip[-1])[0] < centroid(clip[0])[0] - 10
    clip = render_clip("green", "circle", "moving down", rng=np.random.default_rng(0))
    assert centroid(clip[-1])[1] > centroid(clip[0])[1] + 10  # image rows grow downwards
    clip = render_clip("green", "square", "growing", rng=np.random.default_rng(0))
    assert centroid(clip[-1])[2] > 3 * centroid(clip[0])[2]
    clip = render_clip("green", "square", "appearing", rng=np.random.default_rng(0))
    assert clip[0].max() < 100 and clip[-1].max() > 150


def test_dataset_classes_splits_and_pairs(small_synthetic):
    data = small_synthetic
    names = data.class_names
    assert len(names) == 2 * 2 * 10 - 2 * 2  # colours x shapes x motions, minus rotating circles
    assert "red circle moving left" in names and "blue circle rotating clockwise" not in names
    assert sorted(data.base_ids + data.novel_ids) == list(range(len(names))) and data.novel_ids
    for a, b in data.reversal_pairs:  # partners differ only in the motion, and share a split
        assert names[a].split()[:2] == names[b].split()[:2]
        assert (a in data.base_ids) == (b in data.base_ids)
    assert len(data.reversal_pairs) == len(names) // 2
    # held-out compositions: every colour, shape and motion word still occurs among the base classes
    base_words = {w for i in data.base_ids for w in names[i].split()}
    assert {w for n in names for w in n.split()} <= base_words
    assert data.train.num_samples == 2 * len(data.base_ids)
    assert data.splits["val_novel"].class_names == [names[i] for i in data.novel_ids]
    assert data.pairs_in("val_novel") and all(
        {data.splits["val_novel"].class_names[i].split()[2] for i in p} <= {"moving", "growing", "shrinking",
                                                                          "rotating", "appearing", "disappearing"}
        for p in data.pairs_in("val_novel"))
    info = json.loads((data.root / "info.json").read_text())
    assert info["reversal_pairs"] == [list(p) for p in data.reversal_pairs]


def test_cache_is_reused_and_keyed_by_recipe(small_synthetic, tmp_path, monkeypatch):
    recipe = small_synthetic.recipe
    again = synthetic.synthetic_dataset(small_synthetic.root.parent.parent, recipe)
    assert again.root == small_synthetic.root
    assert os.path.getmtime(again.train.shards[0]) == os.path.getmtime(small_synthetic.train.shards[0])
    other = SyntheticRecipe(colors=("red",), shapes=("square",), train_per_class=1, val_per_class=1)
    assert other.digest() != recipe.digest()
    monkeypatch.setenv("CHRONOCLIP_CACHE", str(tmp_path))
    assert synthetic.cache_root() == tmp_path
    built = synthetic.synthetic_dataset(recipe=other)
    assert built.root.parent == tmp_path / "synthetic" and len(built.class_names) == 8  # default: no rotation
    with pytest.raises(ValueError, match="unknown synthetic attributes"):
        SyntheticRecipe(colors=("mauve",))


def test_image_captions(tmp_path):
    pairs = synthetic.synthetic_image_captions(tmp_path, num_images=40)
    images, captions = pairs.load()
    assert images.shape == (40, 64, 64, 3) and len(captions) == 40
    channel = {"red": 0, "green": 1, "blue": 2}
    for image, caption in zip(images, captions):
        color = next(w for w in caption.split() if w in channel)
        assert int(image.reshape(-1, 3).float().amax(0).argmax()) == channel[color]
        assert not any(w in caption for w in ("moving", "rotating", "growing"))
