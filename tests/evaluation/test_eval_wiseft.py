"""WiSE-FT: the generic CLIP-weight fusion by hand, and the lookup of a method's own fusion."""

from __future__ import annotations

import pytest
import torch

import core
from core.clip import build_clip
from evaluation.sources import build_untrained
from evaluation.wiseft import find_method_wise_ft, generic_wise_ft, wise_ft


def test_generic_fusion_is_alpha_on_the_finetuned_side(tmp_path):
    torch.manual_seed(0)
    finetuned = build_untrained("vifi", clip="test", num_frames=4)
    torch.manual_seed(1)
    zeroshot = build_clip("test").state_dict()
    before = {k: v.clone() for k, v in finetuned.state_dict().items()}
    fused = generic_wise_ft(finetuned, zeroshot, 0.3)
    for name, param in fused.clip.named_parameters():
        expected = 0.7 * zeroshot[name] + 0.3 * before[f"clip.{name}"]
        assert torch.allclose(param, expected, atol=1e-6), name
    # the input model is untouched; alpha 1 gives it back, alpha 0 gives zero-shot CLIP
    assert all(torch.equal(v, before[k]) for k, v in finetuned.state_dict().items())
    assert torch.equal(generic_wise_ft(finetuned, zeroshot, 1.0).clip.visual.proj, finetuned.clip.visual.proj)
    assert torch.equal(generic_wise_ft(finetuned, zeroshot, 0.0).clip.visual.proj, zeroshot["visual.proj"])
    # a file works as the zero-shot source
    path = tmp_path / "clip.pt"
    torch.save(zeroshot, path)
    assert torch.equal(generic_wise_ft(finetuned, path, 0.3).clip.logit_scale, fused.clip.logit_scale)


def test_generic_fusion_rejects_other_architectures_and_bad_alpha():
    finetuned = build_untrained("vifi", clip="test", num_frames=4)
    other = build_clip("tiny").state_dict()
    with pytest.raises(ValueError, match="do not fit the model's CLIP"):
        generic_wise_ft(finetuned, other, 0.5)
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\]"):
        generic_wise_ft(finetuned, build_clip("test").state_dict(), 1.5)


def test_baselines_use_the_generic_fusion_and_say_so():
    assert find_method_wise_ft("vifi") is None
    model = build_untrained("vifi", clip="test", num_frames=4)
    _, how = wise_ft(model, "vifi", build_clip("test").state_dict(), 0.7)
    assert how == "generic CLIP-weight fusion (alpha=0.7)"


@pytest.mark.skipif("tcclip" not in core.list_methods(), reason="chronoclip-tcclip not installed")
def test_tcclip_brings_its_own_fusion():
    import chronoclip_tcclip

    assert find_method_wise_ft("tcclip") is chronoclip_tcclip.wise_ft
