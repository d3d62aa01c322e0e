"""The on-disk shard format: WebDataset tars of encoded videos plus a JSON sidecar per sample.

A sample ``<key>`` is two tar members: ``<key>.<ext>`` (the video file's bytes, ``ext`` one of
:data:`VIDEO_EXTENSIONS`) and ``<key>.json``::

    {"label": 12, "class_name": "red circle moving left", "source": "train/abc.mp4",
     "num_frames": 300, "reported_frames": 300, "fps": 30.0, "width": 340, "height": 256}

``num_frames`` is the validated count (see ``core.data.decoding``). A shard directory holds
``<prefix>-NNNNNN.tar`` files and a ``manifest.json``::

    {"format": "chronoclip-shards/1", "num_samples": ..., "classes": [...] or null,
     "shards": [{"name": ..., "samples": ..., "bytes": ..., "per_class": {"12": 3, ...}}, ...],
     "per_class": {...}, "skipped": [{"source": ..., "reason": ...}, ...], "options": {...}}

which carries the dataset size to the reader (exact evaluation needs it) and the report of every
input that was skipped and why. Writes are atomic (``core.io``): a tar or JSON file is written under a
temporary name in the same directory, fsync'ed, given the usual 0644 permissions and renamed when
complete, so a crash never leaves a half-written shard that looks finished (the writer removes such
temporary files when it restarts).
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.io import _default_mode, atomic_write_bytes, atomic_write_json

__all__ = [
    "FORMAT",
    "MANIFEST",
    "VIDEO_EXTENSIONS",
    "ShardTarWriter",
    "atomic_write_bytes",
    "atomic_write_json",
    "build_manifest",
    "read_manifest",
    "sanitize_key",
]

FORMAT = "chronoclip-shards/1"
MANIFEST = "manifest.json"
VIDEO_EXTENSIONS = ("mp4", "webm", "avi", "mkv", "mov", "m4v", "mpg", "mpeg", "flv", "3gp", "ogv", "wmv")


def sanitize_key(relative_path: str) -> str:
    """A WebDataset key for a source path: extension dropped, characters other than ``[A-Za-z0-9_/-]`` -> ``_``.

    WebDataset splits member names at the first dot of the basename, so keys must be dot-free.
    """
    stem = relative_path.replace(os.sep, "/")
    stem = stem.rsplit(".", 1)[0] if "." in Path(stem).name else stem
    return re.sub(r"[^A-Za-z0-9_/\-]", "_", stem).strip("/") or "sample"


class ShardTarWriter:
    """Writes one tar shard under a temporary name; :meth:`commit` renames it into place.

    Member metadata is fixed (mtime 0, uid/gid 0) so the same samples give byte-identical shards.
    Use as a context manager: leaving the block without ``commit()`` deletes the temporary file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.fchmod(fd, _default_mode())  # 0644 under the usual umask, like every output (mkstemp gives 0600)
        self._file = os.fdopen(fd, "wb")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.GNU_FORMAT)
        self.samples = 0
        self.bytes = 0
        self.per_class: Counter[int] = Counter()

    def _add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        self._tar.addfile(info, io.BytesIO(data))

    def add(self, key: str, ext: str, video: bytes, meta: dict[str, Any]) -> None:
        """Append one sample: ``<key>.<ext>`` (video bytes) and ``<key>.json`` (``meta``)."""
        if "." in key:
            raise ValueError(f"sample key {key!r} contains a dot; use sanitize_key()")
        self._add(f"{key}.{ext}", video)
        self._add(f"{key}.json", json.dumps(meta, sort_keys=True).encode())
        self.samples += 1
        self.bytes += len(video)
        if meta.get("label") is not None:
            self.per_class[int(meta["label"])] += 1

    def commit(self) -> dict[str, Any]:
        """Close and rename into place; returns the shard's manifest entry."""
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.path)
        self._tmp = None
        return {"name": self.path.name, "samples": self.samples, "bytes": self.bytes,
                "per_class": {str(k): v for k, v in sorted(self.per_class.items())}}

    def __enter__(self) -> ShardTarWriter:
        return self

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tar.close()
            self._file.close()
            Path(self._tmp).unlink(missing_ok=True)


def build_manifest(
    shards: Iterable[dict[str, Any]], *, classes: list[str] | None, skipped: list[dict[str, str]],
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Manifest dict from the shards' entries (see the module docstring)."""
    shards = list(shards)
    per_class: Counter[int] = Counter()
    for shard in shards:
        per_class.update({int(k): v for k, v in shard["per_class"].items()})
    return {
        "format": FORMAT,
        "num_samples": sum(s["samples"] for s in shards),
        "num_shards": len(shards),
        "classes": classes,
        "per_class": {str(k): v for k, v in sorted(per_class.items())},
        "shards": shards,
        "skipped": skipped,
        "options": options or {},
    }


def read_manifest(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of a shard directory, or None when there is none."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} has format {manifest.get('format')!r}, expected {FORMAT!r}; rebuild the shards")
    return manifest
