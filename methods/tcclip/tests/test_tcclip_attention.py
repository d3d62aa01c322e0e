"""The ``sdpa`` attention mode against the default ``official`` order, on the golden fixture's tiny TC-CLIP."""

from __future__ import annotations

import pytest
import torch
from chronoclip_tcclip import vision as _vision

import core


def _run(model, video, texts, monkeypatch):
    """Logits, per-block sizes and every block's seed indices (recorded from the seed selection)."""
    seeds = []
    select = _vision._seed_index
    monkeypatch.setattr(_vision, "_seed_index", lambda probs, settings: seeds.append(select(probs, settings))
                        or seeds[-1])
    with torch.no_grad():
        logits = model.classify(video, texts)
        out = model._vision(video)
    monkeypatch.setattr(_vision, "_seed_index", select)
    return logits, out, seeds


@pytest.mark.parametrize(("dtype", "atol"), [(torch.float64, 1e-10), (torch.float32, 2e-4)])
def test_sdpa_mode_matches_the_official_order(official_checkpoint, clip_file, golden, monkeypatch, dtype, atol):
    kwargs = {"clip": clip_file, "num_frames": 8, "context_token_k": 16}
    official = core.load_official("tcclip", official_checkpoint, **kwargs).to(dtype)
    fused = core.load_official("tcclip", official_checkpoint, attention="sdpa", **kwargs).to(dtype)
    assert fused.settings.attention == "sdpa" and official.settings.attention == "official"
    video = golden["video8"].to(dtype)
    texts = official.class_texts(golden["eval_names"])
    ref_logits, ref_out, ref_seeds = _run(official, video, texts, monkeypatch)
    logits, out, seeds = _run(fused, video, texts, monkeypatch)
    # the seed scores are the official CLS-row softmax computed on its own: the same seeds in the same order
    assert len(seeds) == len(ref_seeds) == 2 * 3
    for got, want in zip(seeds, ref_seeds, strict=True):
        assert torch.equal(got, want)
    for i in ref_out.sizes:
        assert torch.equal(out.sizes[i], ref_out.sizes[i])
    torch.testing.assert_close(logits, ref_logits, rtol=0, atol=atol)
    if dtype == torch.float64:
        torch.testing.assert_close(logits, golden["logits_t8_k16"], rtol=0, atol=1e-8)


def test_unknown_attention_mode_is_refused(official_checkpoint, clip_file):
    with pytest.raises(ValueError, match="option 'attention' must be one of 'official', 'sdpa', got 'flash'"):
        core.load_official("tcclip", official_checkpoint, clip=clip_file, attention="flash")
