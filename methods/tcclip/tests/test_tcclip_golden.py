"""Parity with the authors' code in float64: a tiny random TC-CLIP saved in their checkpoint format and run by
their eval forward (fixtures/README.md says how). Everything goes through ``core.load_official`` like a user's file.
"""

from __future__ import annotations

import sys

import pytest
import torch
from chronoclip_tcclip import wise_ft
from chronoclip_tcclip.convert import convert_state_dict

import core

# A faithful float64 implementation agrees with the official one to ~1e-14 (spec §11).
TOL = 1e-8


@pytest.fixture(scope="module")
def model(official_checkpoint, clip_file):
    return core.load_official("tcclip", official_checkpoint, clip=clip_file).double()


def test_config_inside_the_checkpoint_is_read_without_omegaconf(model):
    # T = 4, the tiny VP level (3) and K = 96 come from the pickled DictConfig, read as inert placeholders
    assert model.num_frames == 4
    assert model.vp_levels == (2,)
    assert model.settings.num_context == 96 and model.settings.num_seeds == 58 and model.settings.merge_r == (100,) * 3
    assert "omegaconf" not in sys.modules


def test_logits_match_the_official_forward(model, golden):
    texts = model.class_texts(golden["eval_names"])
    assert texts[0] == "Apply Eye Makeup" and texts[1] == "brush hair"
    with torch.no_grad():
        logits = model.classify(golden["video4"], texts)
        embedding = model.encode_video(golden["video4"])
    assert logits.dtype == torch.float64
    torch.testing.assert_close(logits, golden["logits_t4"], rtol=0, atol=TOL)
    torch.testing.assert_close(embedding, golden["embedding_t4"], rtol=0, atol=TOL)


def test_llm_rephrased_names_with_77_tokens(model, golden):
    with torch.no_grad():
        logits = model.classify(golden["video4"], model.class_texts(golden["llm_names"]))
    torch.testing.assert_close(logits, golden["logits_t4_llm"], rtol=0, atol=TOL)


def test_other_frame_count_and_k_with_capped_merge_rounds(official_checkpoint, clip_file, golden):
    # 8 x 58 = 464 seeds -> 16 tokens: rounds 100, 100, 100, 82, 41, 20, 5 (the cnt // 2 caps bind)
    model = core.load_official("tcclip", official_checkpoint, clip=clip_file, num_frames=8, context_token_k=16).double()
    names = model.class_texts(golden["eval_names"])
    with torch.no_grad():
        logits = model.classify(golden["video8"], names)
        out = model._vision(golden["video8"])
    torch.testing.assert_close(logits, golden["logits_t8_k16"], rtol=0, atol=TOL)
    # the official seed counts of the last block's context tokens, in the official token order
    torch.testing.assert_close(out.sizes[2], golden["sizes_t8_k16"], rtol=0, atol=0)
    assert out.sizes[2].sum(dim=1).flatten().tolist() == [8 * 58] * 2


def test_wise_ft_matches_the_official_fusion(official_checkpoint, clip_file, golden):
    finetuned = core.load_official("tcclip", official_checkpoint, clip=clip_file)
    names = finetuned.class_texts(golden["eval_names"])
    fused = wise_ft(finetuned, clip_file, 0.7).double()
    loaded = core.load_official("tcclip", official_checkpoint, clip=clip_file, wise_ft=0.7).double()
    with torch.no_grad():
        torch.testing.assert_close(fused.classify(golden["video4"], names), golden["logits_t4_wise07"], rtol=0, atol=TOL)
        torch.testing.assert_close(loaded.classify(golden["video4"], names), golden["logits_t4_wise07"], rtol=0,
                                   atol=TOL)


def test_training_loss_and_gradients_match(official_checkpoint, clip_file, golden):
    model = core.load_official("tcclip", official_checkpoint, clip=clip_file).double().train()
    batch = {"video": golden["video4"], "label": golden["train_target"].argmax(-1), "target": golden["train_target"],
             "class_texts": model.class_texts(golden["eval_names"])}
    out = model.training_forward(batch)
    torch.testing.assert_close(out["loss"], golden["train_loss"], rtol=0, atol=TOL)
    out["loss"].backward()
    # the official gradients of every tensor with <= 1024 elements, renamed (and q/k/v biases packed) like weights
    expected, _ = convert_state_dict(golden["train_grads"])
    params = dict(model.named_parameters())
    assert len(expected) > 60
    for name, grad in expected.items():
        torch.testing.assert_close(params[name].grad, grad, rtol=1e-8, atol=1e-12, msg=name)
    assert golden["grad_none"] == []   # the official run too: every parameter receives a gradient
