"""Video embeddings of a folder, saved with their file names (``python -m core.predict videos/ --features out.npz``).

Each video is read as ``core.predict`` reads it (the model's frame count at segment centres, its input size and
normalisation; ``views`` clips x crops averaged), embedded by the method's ``encode_video`` and L2-normalised.

Files: ``.npz`` (numpy) or ``.safetensors``; both hold ``embeddings`` (N, E) float32 and the names, plus the
method and frame count, so text search (:mod:`core.search`) can run on them later without decoding again::

    data = core.features.load_features("out.npz")   # Features(names, embeddings, method, frames, source)
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["FEATURE_SUFFIXES", "Features", "embed_videos", "frames_for", "load_features", "save_features"]

FEATURE_SUFFIXES = (".npz", ".safetensors")


@dataclass
class Features:
    """L2-normalised video embeddings with the file each row came from."""

    names: list[str]
    embeddings: np.ndarray  # (N, E) float32
    method: str | None = None
    frames: int | None = None
    source: str | None = None
    failed: dict[str, str] = field(default_factory=dict)  # video -> why it could not be read

    def meta(self) -> dict[str, Any]:
        return {"method": self.method, "frames": self.frames, "source": self.source}


def frames_for(loaded, frames: int | None = None) -> int:
    """Frames per clip for ``loaded``: :func:`core.eval.settings.resolve_num_frames`, as ``core.predict`` uses it."""
    from core.eval.settings import method_settings, resolve_num_frames

    count, _ = resolve_num_frames(fixed=loaded.model.num_frames, requested=frames, stored=loaded.trained_frames,
                                  method_default=method_settings(loaded.method)[0]["fully-supervised"]["frames"])
    return count


def embed_videos(loaded, videos: Sequence[str | os.PathLike], *, frames: int | None = None,
                 views: tuple[int, int] = (1, 1), device: str = "cpu", progress: bool = False) -> Features:
    """Embeddings of ``videos`` (undecodable ones are reported on stderr and listed in ``failed``)."""
    from tqdm import tqdm

    from core.data.decoding import DecodeError
    from core.eval.sources import input_size_of
    from core.predict import read_clip

    model = loaded.model.to(device).eval()
    num_frames = frames_for(loaded, frames)
    clips, crops = views
    names: list[str] = []
    rows: list[torch.Tensor] = []
    failed: dict[str, str] = {}
    for path in tqdm(list(videos), desc="embedding", unit="video", disable=not progress):
        try:
            clip = read_clip(path, num_frames=num_frames, input_size=input_size_of(model), mean=model.input_mean,
                             std=model.input_std, clips=clips, crops=crops,
                             sampling="segment_center" if clips == 1 else "segment")
        except DecodeError as error:
            print(f"skipping {path}: {error}", file=sys.stderr)
            failed[str(path)] = str(error)
            continue
        with torch.inference_mode():
            views_emb = F.normalize(model.encode_video(clip.to(device)).float(), dim=-1)  # (V, E)
        rows.append(F.normalize(views_emb.mean(0), dim=-1).cpu())
        names.append(str(path))
    width = rows[0].shape[0] if rows else 0
    embeddings = torch.stack(rows).numpy() if rows else np.zeros((0, width), np.float32)
    return Features(names, embeddings.astype(np.float32), loaded.method, num_frames, getattr(loaded, "source", None),
                    failed)


def save_features(path: str | os.PathLike, features: Features) -> Path:
    """Write ``features`` to ``path`` (``.npz`` or ``.safetensors``) atomically.

    Raises:
        ValueError: another suffix.
    """
    from core.io import atomic_write_bytes

    path = Path(path)
    if path.suffix not in FEATURE_SUFFIXES:
        raise ValueError(f"--features {path}: use a .npz or .safetensors file name")
    if path.suffix == ".npz":
        import io

        buffer = io.BytesIO()
        np.savez(buffer, embeddings=features.embeddings, names=np.array(features.names, dtype=str),
                 meta=np.array(json.dumps(features.meta())))
        data = buffer.getvalue()
    else:
        from safetensors.torch import save

        data = save({"embeddings": torch.from_numpy(np.ascontiguousarray(features.embeddings))},
                    metadata={"names": json.dumps(features.names), **{k: json.dumps(v) for k, v in
                                                                    features.meta().items()}})
    atomic_write_bytes(path, data)
    return path


def load_features(path: str | os.PathLike) -> Features:
    """Features written by :func:`save_features`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a features file of this format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"features file {str(path)!r} not found")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "embeddings" not in data or "names" not in data:
                raise ValueError(f"{path} is not a chronoclip features file (needs 'embeddings' and 'names')")
            meta = json.loads(str(data["meta"])) if "meta" in data else {}
            return Features([str(n) for n in data["names"]], data["embeddings"].astype(np.float32), **meta)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            if "names" not in metadata or "embeddings" not in handle.keys():
                raise ValueError(f"{path} is not a chronoclip features file (needs 'embeddings' and names metadata)")
            embeddings = handle.get_tensor("embeddings").float().numpy()
        meta = {k: json.loads(metadata[k]) for k in ("method", "frames", "source") if k in metadata}
        return Features(json.loads(metadata["names"]), embeddings, **meta)
    raise ValueError(f"{path}: features files are .npz or .safetensors")
