"""Weights by name: open_clip tags through an offline hub cache, the released-checkpoint registry with sha256
checks, and one loader for every source (registry name, authors' file, run directory, model.pt)."""

from __future__ import annotations

import io
import shutil

import open_clip
import pytest
import torch
from safetensors.torch import save as save_safetensors

import core
import core.weights as W
from core.clip import build_clip, tokenize
from tests.tools.conftest import put_in_hub


def _torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_openai_tag_resolves_to_the_hub_cache_offline(offline_hub):
    # open_clip's own registry says where OpenAI's ViT-B-16 lives on the hub; a tiny stand-in file is cached there.
    repo = open_clip.get_pretrained_cfg("ViT-B-16", "openai")["hf_hub"].rstrip("/")
    cached = put_in_hub(offline_hub, repo, "open_clip_pytorch_model.bin", b"tiny")
    weights = W.resolve_clip_weights("ViT-B-16", "openai")
    assert weights.path.resolve() == cached.resolve() and weights.quick_gelu is True
    assert weights.source == "open_clip ViT-B-16:openai"


def test_uncached_tag_offline_is_a_clear_error_and_unknown_tags_list_the_valid_ones(offline_hub):
    with pytest.raises(W.WeightsNotFoundError, match="HF_HUB_OFFLINE"):
        W.resolve_clip_weights("ViT-B-16", "openai")
    with pytest.raises(ValueError, match="laion2b_s34b_b88k"):
        W.resolve_clip_weights("ViT-B-16", "no-such-tag")
    with pytest.raises(ValueError, match="--model"):
        W.resolve_clip_weights(None, "openai")


def test_build_clip_and_the_trainer_backbone_load_a_tag(offline_hub, monkeypatch, test_clip_state):
    # a tag registered in open_clip's registry for the `test` preset, hosted (here: cached) as safetensors
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, "test",
                        {"chronotest": {"hf_hub": "chronoclip/test-clip/", "quick_gelu": True}})
    put_in_hub(offline_hub, "chronoclip/test-clip", "open_clip_model.safetensors",
               save_safetensors({k: v.contiguous() for k, v in test_clip_state.items()}))
    reference = build_clip("test")
    reference.load_state_dict(test_clip_state)
    tokens = tokenize(["a red square"])
    loaded = build_clip("test", pretrained="chronotest")
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_text(tokens), reference.encode_text(tokens), rtol=0, atol=0)
    from core.training.backbone import build_backbone

    clip, cfg = build_backbone("test", "chronotest")
    assert cfg["quick_gelu"] is True
    torch.testing.assert_close(clip.state_dict()["text_projection"], test_clip_state["text_projection"])


def test_registry_is_data_with_no_invented_hashes():
    registry = W.released_weights()
    assert {"t2l-zero-shot-k400", "tcclip-zero-shot-k400", "ila-k400-b16-8f", "stan-mug-weights"} <= set(registry)
    assert {e.method for e in registry.values()} == {"t2l", "tcclip", "ila", "stan"}
    for entry in registry.values():
        assert entry.paper and entry.hosted and (entry.url or entry.hub_repo)
        assert entry.sha256 is None or len(entry.sha256) == 64
    assert registry["ila-k400-l14-336-16f"].frames == 16 and registry["t2l-zero-shot-k400"].frames == 8


def _inject(monkeypatch, **entries):
    registry = dict(W.released_weights())
    for name, fields in entries.items():
        registry[name] = W.ReleasedWeights(name=name, **fields)
    monkeypatch.setattr(W, "released_weights", lambda: registry)


BASE = dict(method="vifi", protocol="zero-shot", backbone="test", frames=4, paper="n/a")


def test_drive_hosted_name_says_where_to_download_and_where_to_put_it(offline_hub, monkeypatch, tmp_path,
                                                                       test_clip_state):
    data = _torch_bytes(test_clip_state)
    _inject(monkeypatch, **{"vifi-test": dict(BASE, hosted="google-drive", url="https://drive.example/f",
                                              file="vifi_test.pt", sha256=W.hashlib.sha256(data).hexdigest())})
    target = W.weights_cache_dir() / "vifi" / "vifi_test.pt"
    with pytest.raises(W.WeightsNotFoundError) as error:
        core.load_official("vifi", "vifi-test")
    assert "https://drive.example/f" in str(error.value) and str(target) in str(error.value)
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    model = core.load_official("vifi", "vifi-test")  # verified, then converted by vifi's load_official
    torch.testing.assert_close(model.clip.state_dict()["text_projection"], test_clip_state["text_projection"])
    target.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one flipped bit
    with pytest.raises(W.ChecksumError, match="sha256"):
        core.load_official("vifi", "vifi-test")


def test_hub_hosted_name_is_fetched_through_the_hub_cache(offline_hub, monkeypatch, test_clip_state):
    data = _torch_bytes(test_clip_state)
    _inject(monkeypatch, **{"vifi-hub": dict(BASE, hosted="huggingface", hub_repo="org/vifi-weights",
                                             hub_file="vifi.pt", sha256=W.hashlib.sha256(data).hexdigest())})
    with pytest.raises(W.WeightsNotFoundError, match="org/vifi-weights"):
        W.resolve_released("vifi-hub")
    put_in_hub(offline_hub, "org/vifi-weights", "vifi.pt", data)
    assert W.resolve_released("vifi-hub").read_bytes() == data
    assert W.describe_source("vifi-hub") == ("registry", "vifi")
    with pytest.raises(KeyError, match="list-weights"):
        W.resolve_released("no-such-name")


def test_load_official_accepts_a_run_directory_and_its_model_file(tiny_run, tmp_path):
    from core.runs import load_run_model

    reference, _ = load_run_model(tiny_run)
    copied = tmp_path / "renamed.pt"
    shutil.copy(tiny_run / "model.pt", copied)  # a model.pt moved away from its run still says what it is
    for source in (tiny_run, tiny_run / "model.pt", copied):
        assert W.describe_source(source) == ("run", "vifi")
        model = core.load_official("vifi", source)
        torch.testing.assert_close(model.state_dict(), reference.state_dict())
    model, info = W.load_video_model(None, tiny_run)  # the method comes from the run
    assert info["method"] == "vifi" and info["num_frames"] == 4
    with pytest.raises(ValueError, match="holds a 'vifi' model"):
        core.load_official("t2l", tiny_run)


def test_an_authors_file_needs_the_method(tmp_path, test_clip_state):
    path = tmp_path / "ckpt.pth"
    torch.save(test_clip_state, path)
    assert W.describe_source(path) == ("file", None)
    with pytest.raises(ValueError, match="--method"):
        W.load_video_model(None, path)
    with pytest.raises(FileNotFoundError, match="list-weights"):
        W.describe_source("not-a-file-or-name")


def test_list_weights_shows_methods_recipes_papers_and_files(offline_hub, capsys):
    from core.train import main

    assert main(["--list-weights"]) == 0
    out = capsys.readouterr().out
    assert "vifi  (chronoclip" in out and "recipes: base2novel, synthetic, zero_shot" in out
    assert "ViFi-CLIP, CVPR 2023" in out
    if "t2l" in core.list_methods():
        assert "t2l-zero-shot-k400" in out and "52.9" in out
        assert "https://drive.google.com/file/d/19QNGgaZjPyq0yz7XJGFccS7MV09KMY_K/view" in out
        assert str(W.weights_cache_dir() / "t2l" / "t2l_zero_shot_k400.pt") in out
    assert main(["--list-methods"]) == 0
    out = capsys.readouterr().out
    assert "recipes:" in out and "released weights" not in out


def test_evaluation_sources_take_any_source_without_method(offline_hub, monkeypatch, tiny_run, test_clip_state):
    from evaluation.sources import load_model

    loaded = load_model(official=tiny_run / "model.pt")  # a run's model file given as --official: loaded as a run
    assert loaded.method == "vifi" and loaded.trained_frames == 4 and loaded.class_names is not None
    target = W.weights_cache_dir() / "vifi" / "v.pt"
    target.parent.mkdir(parents=True)
    torch.save(test_clip_state, target)
    _inject(monkeypatch, **{"vifi-name": dict(BASE, hosted="google-drive", url="https://x", file="v.pt")})
    loaded = load_model(official="vifi-name")  # the registry names the method
    assert loaded.method == "vifi"
    with pytest.raises(ValueError, match="holds a 'vifi' model"):
        load_model(official="vifi-name", method="t2l")
