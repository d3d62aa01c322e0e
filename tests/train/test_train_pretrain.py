"""The tiny CLIP's pretraining on the synthetic captions is deterministic: the same weights whatever the
caller's thread count (a fixed two threads and deterministic kernels inside), and the default recipe reproduces the
reference digest (slow: about a minute)."""

from __future__ import annotations

import pytest
import torch

from core.training import pretrain
from core.training.pretrain import PretrainRecipe, weights_digest

SMALL = PretrainRecipe(preset="test", num_images=48, held_out=8, steps=3, batch_size=16, warmup_steps=1)


def test_pretraining_is_the_same_bytes_for_any_thread_count(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOCLIP_CACHE", str(tmp_path))
    before = torch.get_num_threads()
    digests = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        digests.append(weights_digest(pretrain._pretrain(SMALL, progress=False)))
        assert torch.get_num_threads() == threads  # restored
        assert not torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(before)
    assert digests[0] == digests[1]
    other = weights_digest(pretrain._pretrain(PretrainRecipe(**{**SMALL.__dict__, "seed": 1}), progress=False))
    assert other != digests[0]  # the digest does see the weights


def test_pretraining_leaves_the_callers_rng_as_it_was(tmp_path, monkeypatch):
    # a cold-cache run pretrains inside core.train after seeding: it must then build its model from the same
    # RNG state as a warm-cache run (it used to start from the pretraining's state and train differently)
    monkeypatch.setenv("CHRONOCLIP_CACHE", str(tmp_path))
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    pretrain._pretrain(SMALL, progress=False)
    assert torch.equal(torch.get_rng_state(), before)


def test_weights_digest_covers_names_and_values():
    state = {"a": torch.zeros(2), "b": torch.tensor(1.5)}
    assert weights_digest(state) == weights_digest({"b": torch.tensor(1.5), "a": torch.zeros(2)})
    assert weights_digest(state) != weights_digest({"a": torch.zeros(2), "b": torch.tensor(1.25)})
    assert weights_digest(state) != weights_digest({"c": torch.zeros(2), "b": torch.tensor(1.5)})


@pytest.mark.slow
def test_default_pretrained_clip_matches_the_reference_digest(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOCLIP_CACHE", str(tmp_path))
    path = pretrain.pretrained_clip_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert weights_digest(state) == pretrain.EXPECTED_DIGEST
