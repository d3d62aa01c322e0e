"""Fixtures of the practitioner tools: a Hugging Face hub cache in the hub's own layout, a tiny finished run,
and short generated videos (all offline, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.clip import build_clip, infer_clip_config
from core.runs import MODEL_FILE, model_file_payload

# A fixed revision hash, as the hub writes it into refs/main.
REVISION = "0123456789abcdef0123456789abcdef01234567"
CLASSES = ["red square moving left", "red square moving right", "green triangle moving up"]


def put_in_hub(cache: Path, repo: str, filename: str, data: bytes) -> Path:
    """Write ``data`` as ``repo``/``filename`` in a hub cache (models--org--name/refs/main + snapshots/<rev>/)."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(REVISION)
    snapshot = folder / "snapshots" / REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / filename).write_bytes(data)
    return snapshot / filename


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty hub cache; HF_HUB_OFFLINE=1 so nothing can be fetched."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CHRONOCLIP_CACHE", str(tmp_path / "chronoclip-cache"))
    return cache


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished core.train run directory (model.pt, config.yaml) of a `test`-preset vifi on 4 frames."""
    from evaluation.sources import build_untrained

    root = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    model = build_untrained("vifi", clip="test", num_frames=4)
    config = {"method": "vifi", "clip": {"model": "test", "pretrained": None}, "data": {"num_frames": 4}}
    payload = model_file_payload(method="vifi", clip_config=infer_clip_config(model.clip.state_dict()), num_frames=4,
                                 method_options={}, class_names=CLASSES, descriptions=None,
                                 state_dict=model.state_dict(), step=10, config=config)
    torch.save(payload, root / MODEL_FILE)
    (root / "config.yaml").write_text(json.dumps(config))
    return root


def _video_bytes(color: str, shape: str, motion: str, frames: int, seed: int = 0) -> bytes:
    from core.data.encoding import encode_video
    from core.data.synthetic import render_clip

    return encode_video(render_clip(color, shape, motion, size=64, num_frames=frames,
                                    rng=np.random.default_rng(seed)), fps=8.0, keyint=4)


@pytest.fixture(scope="session")
def video_folder(tmp_path_factory) -> Path:
    """Three 1.5 s clips in a folder (one in a subfolder)."""
    root = tmp_path_factory.mktemp("videos")
    (root / "a.mp4").write_bytes(_video_bytes("red", "square", "moving left", 12))
    (root / "b.mp4").write_bytes(_video_bytes("green", "triangle", "moving up", 12, seed=1))
    (root / "more").mkdir()
    (root / "more" / "c.mp4").write_bytes(_video_bytes("red", "square", "moving right", 12, seed=2))
    return root


@pytest.fixture(scope="session")
def long_video(tmp_path_factory) -> Path:
    """A 4 s untrimmed video at 8 fps: 2 s of one action, then 2 s of another."""
    from core.data.encoding import encode_video
    from core.data.synthetic import render_clip

    first = render_clip("red", "square", "moving left", size=64, num_frames=16, rng=np.random.default_rng(0))
    second = render_clip("green", "triangle", "moving up", size=64, num_frames=16, rng=np.random.default_rng(1))
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    path.write_bytes(encode_video(np.concatenate([first, second]), fps=8.0, keyint=4))
    return path


@pytest.fixture(scope="session")
def test_clip_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return build_clip("test").state_dict()
