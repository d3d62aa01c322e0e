"""Method discovery through entry points, option checks, and the clip/vifi baselines."""

from __future__ import annotations

from importlib import metadata

import pytest
import torch

import core
from core.clip import build_clip
from core.method import Method, UnknownMethodError


def test_core_baselines_are_registered():
    methods = core.list_methods()
    assert {"clip", "vifi"} <= set(methods)
    assert methods["clip"].startswith("chronoclip ")


def test_unknown_method_lists_the_installed_ones():
    with pytest.raises(UnknownMethodError) as info:
        core.load_method("nope")
    assert "installed: " in str(info.value) and "clip" in str(info.value) and "vifi" in str(info.value)


def test_two_distributions_claiming_one_name_is_an_error(monkeypatch):
    fake = [metadata.EntryPoint("ila", "pkg_a:ILA", "chronoclip.methods"),
            metadata.EntryPoint("ila", "pkg_b:ILA", "chronoclip.methods")]
    monkeypatch.setattr(metadata, "entry_points", lambda group: fake)
    with pytest.raises(RuntimeError, match="two installed distributions register method 'ila'"):
        core.load_method("ila")


def test_unknown_build_options_name_the_valid_ones():
    with pytest.raises(ValueError, match=r"method_options of method 'vifi': unknown option 'colour'; valid: template"):
        core.load_method("vifi").build(build_clip("test"), num_frames=4, colour="red")
    with pytest.raises(ValueError, match=r"load_official options \['colour'\] are not understood by method 'tcclip'"):
        core.load_method("tcclip").load_official(__file__, colour="red")


def test_frozen_clip_trains_nothing_and_vifi_trains_everything():
    clip_model = core.load_method("clip").build(build_clip("test"), num_frames=4)
    assert clip_model.trainable_parameter_count() == 0
    vifi = core.load_method("vifi").build(build_clip("test"), num_frames=4)
    assert vifi.trainable_parameter_count() == sum(p.numel() for p in vifi.parameters())
    names = {g["name"]: g for g in vifi.param_groups(0.1)}
    assert names["no_decay"]["weight_decay"] == 0.0 and names["decay"]["lr_scale"] == 1.0
    assert any(p is vifi.clip.logit_scale for p in names["no_decay"]["params"])


def test_frame_average_is_blind_to_frame_order():
    torch.manual_seed(0)
    model = core.load_method("clip").build(build_clip("test"), num_frames=4).eval()
    video = torch.randn(2, 4, 3, 32, 32)
    texts = model.class_texts(["red circle moving left", "red circle moving right"])
    assert texts[0] == "a photo of a red circle moving left."
    with torch.no_grad():
        forward, backward = model.classify(video, texts), model.classify(video.flip(1), texts)
    torch.testing.assert_close(forward, backward, rtol=0, atol=1e-5)


def test_method_subclass_contract():
    class Broken(Method):
        name = "broken"

        def _build(self, clip, *, num_frames, options):
            return torch.nn.Linear(1, 1)

    with pytest.raises(TypeError, match="not a core.VideoModel"):
        Broken().build(build_clip("test"), num_frames=2)
    with pytest.raises(FileNotFoundError, match="broken checkpoint"):
        Broken().load_official("/nonexistent.pth")


def test_default_method_is_the_installed_one_of_lowest_rank(monkeypatch):
    import core.method

    assert core.method.default_method() == "ila"  # ILA (rank 0) when installed
    real = core.method._entry_points()
    monkeypatch.setattr(core.method, "_entry_points", lambda: {k: v for k, v in real.items() if k in ("clip", "vifi")})
    assert core.method.default_method() == "vifi"  # core alone: the ViFi-CLIP baseline
