"""Parity with the authors' code: a tiny random T2L checkpoint written and evaluated by the official scripts.

The fixture (tests/fixtures/, see its README) holds a checkpoint in the official training format and the
official forward's outputs for it; here it goes through ``core.load_official`` like a user's file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from chronoclip_t2l.convert import to_official_key

import core
from core.clip import tokenize

FIXTURES = Path(__file__).parent / "fixtures"
TOL = 1e-4


@pytest.fixture(scope="module")
def golden() -> dict:
    return torch.load(FIXTURES / "t2l_tiny_golden.pt", weights_only=True)


@pytest.fixture()
def model() -> torch.nn.Module:
    return core.load_official("t2l", FIXTURES / "t2l_tiny_official.pt")


def test_architecture_is_inferred_from_the_weights(model, golden):
    geometry = golden["geometry"]
    assert model.num_frames == geometry["T"] == 4
    assert len(model.clip.visual.transformer.resblocks) == geometry["vision_layers"]
    assert model.clip.visual.conv1.weight.shape == (geometry["vision_width"], 3, geometry["patch"], geometry["patch"])
    assert model.clip.text_projection.shape == (geometry["text_width"], geometry["embed_dim"])
    # Every tensor comes out fp32 although the file mixes fp16 and fp32, and the frozen temporal embedding
    # is carried (the fixture's is random, non-zero).
    assert {p.dtype for p in model.state_dict().values()} == {torch.float32}
    assert model.temporal_embedding.abs().sum() > 0
    assert not model.training


def test_tokens_match_the_official_tokenizer(golden):
    assert torch.equal(tokenize(golden["class_texts"]), golden["tokens"])


def test_eval_logits_match_the_official_forward(model, golden):
    with torch.no_grad():
        frames = model.encode_frames(golden["video"])
        text = model.encode_texts(golden["class_texts"])
        logits = model.classify(golden["video"], golden["class_texts"])
    torch.testing.assert_close(frames, golden["frame_features"], atol=TOL, rtol=TOL)
    torch.testing.assert_close(text, golden["text_features"], atol=TOL, rtol=TOL)
    torch.testing.assert_close(logits, golden["logits"], atol=TOL, rtol=0)
    print("golden logits (official):", golden["logits"][0].tolist())
    print("max |ours - official| logits:", (logits - golden["logits"]).abs().max().item())


def test_reversed_frames_change_the_video_embedding(model, golden):
    with torch.no_grad():
        forward = model.encode_video(golden["video"])
        backward = model.encode_video(golden["video"].flip(1))
    torch.testing.assert_close(backward, golden["reversed_video_features"], atol=TOL, rtol=TOL)
    # A frame-mean model gives the same embedding for both orders; T2L must not.
    assert (forward - backward).abs().max() > 0.05


def test_training_loss_and_gradients_match_the_official_step(model, golden):
    # The official train.py loop body with every dropout at 0 (deterministic): same loss terms and the same
    # gradients on exactly the tensors the official filter trains ('prompt' / 'Adapter' in the name).
    model.train()
    model.token_dropout = 0.0
    out = model.training_forward(
        {"video": golden["video"], "label": golden["labels"], "class_texts": golden["class_texts"]})
    expected = golden["train"]
    for term in ("loss_v2t", "loss_t2v", "loss_tfd", "loss"):
        torch.testing.assert_close(out[term], expected[term], atol=1e-5, rtol=1e-5)
    out["loss"].backward()
    grads = {to_official_key(n): p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert set(grads) == set(expected["grads"])
    for name, grad in expected["grads"].items():
        torch.testing.assert_close(grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)
