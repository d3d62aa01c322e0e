"""Retrieval metrics and loss against the official RetrievalMetric / NormSoftmaxLoss numbers and hand values."""

from __future__ import annotations

import pytest
import torch
from chronoclip_stan import STAN
from chronoclip_stan.retrieval import encode_pairs, match_ranks, retrieval_metrics

from core.clip import build_clip
from core.objectives import symmetric_infonce


def test_metrics_match_official_retrieval_metric(golden: dict) -> None:
    got = retrieval_metrics(golden["metric_text"], golden["metric_video"])
    for key in ("R1", "R5", "R10", "MdR", "MnR"):
        assert got[key] == pytest.approx(golden[f"metric_{key}"].item(), abs=1e-9), key
    assert got["R1"] == 67.5 and got["MnR"] == 1.625  # the official values, spelled out


def test_norm_softmax_loss_matches_official(golden: dict) -> None:
    loss = 2 * symmetric_infonce(golden["metric_video"], golden["metric_text"], 100.0, gather=False)
    torch.testing.assert_close(loss, golden["metric_nce_scale100"], atol=1e-4, rtol=1e-6)


def test_ranks_by_hand() -> None:
    sim = torch.tensor([[0.9, 0.1, 0.5, 0.2],    # match first          -> rank 1
                        [0.8, 0.3, 0.7, 0.1],    # two score higher     -> rank 3
                        [0.2, 0.1, 0.2, 0.6],    # one higher, one tied -> rank 2 (ties favour the match)
                        [0.4, 0.9, 0.8, 0.0]])   # all higher           -> rank 4
    assert match_ranks(sim).tolist() == [1, 3, 2, 4]


def test_metrics_by_hand_both_directions() -> None:
    video = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    text = torch.tensor([[1.0, 0.1], [-0.1, 1.0], [0.0, -1.0], [1.0, 0.0]])
    # caption -> videos (cosines worked out by hand):
    #   t0: v0 .995 best                                  -> rank 1
    #   t1: v1 .995 best                                  -> rank 1
    #   t2: v2 0, v3 1 higher, v0 0 tied                  -> rank 2
    #   t3: v3 0, v0 1 higher, v1 0 tied                  -> rank 2
    assert retrieval_metrics(text, video) == {"R1": 50.0, "R5": 100.0, "R10": 100.0, "MdR": 1.5, "MnR": 1.5}
    # video -> captions: v0 (t3 higher) 2, v1 1, v2 (t1 higher) 2, v3 (t2 higher) 2
    assert retrieval_metrics(text, video, direction="v2t") == {
        "R1": 25.0, "R5": 100.0, "R10": 100.0, "MdR": 2.0, "MnR": 1.75}
    with pytest.raises(ValueError, match="paired row by row"):
        retrieval_metrics(text[:3], video)


def test_encode_pairs_runs_the_model() -> None:
    torch.manual_seed(0)
    model = STAN().build(build_clip("test"), num_frames=4, depth=1, task="retrieval").eval()
    clips = torch.randn(3, 4, 3, 32, 32)
    captions = ["a red circle", "a blue square", "a green triangle"]
    text, video = encode_pairs(model, [{"video": clips[:2], "captions": captions[:2]},
                                       {"video": clips[2:], "captions": captions[2:]}])
    with torch.no_grad():
        torch.testing.assert_close(video, model.encode_video(clips))
        torch.testing.assert_close(text, model.encode_text(captions))
