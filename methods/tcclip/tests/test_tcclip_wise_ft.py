"""WiSE-FT (spec §7): which tensors are fused, with which weights, in which precision."""

from __future__ import annotations

import pytest
import torch
from chronoclip_tcclip import WISE_FT_EXCLUDED, wise_ft

import core
from core.clip import build_clip


@pytest.fixture(scope="module")
def pair():
    """A 'fine-tuned' TC-CLIP and the state of the CLIP it started from (fp32, as open_clip saves it)."""
    torch.manual_seed(0)
    zeroshot = build_clip("test")
    state = {k: v.clone() for k, v in zeroshot.state_dict().items()}
    model = core.load_method("tcclip").build(zeroshot, num_frames=4, context_token_k=6)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    return model, state


def test_fused_values_by_hand(pair):
    model, state = pair
    fused = wise_ft(model, state, 0.7)
    p_ft, p_fused = dict(model.named_parameters()), dict(fused.named_parameters())
    # a LayerNorm weight is used as loaded; a Linear weight as the official fp16-rounding builder loads it
    ln = "clip.visual.ln_post.weight"
    torch.testing.assert_close(p_fused[ln], 0.3 * state["visual.ln_post.weight"] + 0.7 * p_ft[ln], rtol=0, atol=1e-6)
    fc = "clip.transformer.resblocks.0.mlp.c_fc.weight"
    rounded = state["transformer.resblocks.0.mlp.c_fc.weight"].half().float()
    assert torch.equal(p_fused[fc], (1 - 0.7) * rounded + 0.7 * p_ft[fc])
    # logit_scale is interpolated too (the paper's description leaves it out)
    torch.testing.assert_close(p_fused["clip.logit_scale"], 0.3 * state["logit_scale"] + 0.7 * p_ft["clip.logit_scale"])
    # the method's own tensors and the (frozen, outside the official model) token table keep the fine-tuned value
    kept = [n for n in p_ft if any(k in n for k in WISE_FT_EXCLUDED)] + ["clip.token_embedding.weight"]
    assert len(kept) > 10
    for name in kept:
        assert torch.equal(p_fused[name], p_ft[name]), name
    assert fused is not model and not torch.equal(p_fused[ln], p_ft[ln])   # the input model is untouched


def test_alpha_one_is_the_finetuned_model_and_alpha_is_checked(pair):
    model, state = pair
    fused = wise_ft(model, state, 1.0)
    for (name, a), b in zip(model.named_parameters(), fused.parameters()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        wise_ft(model, state, 1.5)
    with pytest.raises(ValueError, match="visual.proj"):
        wise_ft(model, {k: v for k, v in state.items() if k != "visual.proj"}, 0.5)


def test_fusion_runs_in_fp32_and_keeps_the_model_dtype(pair):
    model, state = pair
    fused64 = wise_ft(model.double(), state, 0.7)
    fused32 = wise_ft(model.float(), state, 0.7)
    assert fused64.clip.visual.proj.dtype == torch.float64
    assert torch.equal(fused64.clip.visual.proj, fused32.clip.visual.proj.double())


def test_evaluation_finds_this_fusion():
    from evaluation.wiseft import find_method_wise_ft

    assert find_method_wise_ft("tcclip") is wise_ft
