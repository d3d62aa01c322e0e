"""Helpers for the test suites of core and of the method packages: crafted malicious checkpoints, and the
top-1 agreement of two precisions (:func:`top1_agreement`).

The security tests (``tests/security``, ``methods/*/tests/test_*_payload.py``) check that no loading path of
the project runs code from a file. These helpers build such files: a pickle that reduces to a shell command
touching a marker file (:func:`shell_payload`), the ``torch.storage._load_from_bytes`` gadget that hides the
same payload in bytes (:func:`load_from_bytes_payload`), and :func:`splice_payload`, which adds a payload as
one more key of the top-level dict of an existing ``torch.save`` zip file, so that a genuine checkpoint still
holds all its weights. Nothing here is used outside tests.
"""

from __future__ import annotations

import io
import os
import pickle
import shlex
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["Agreement", "load_from_bytes_payload", "shell_payload", "splice_payload", "top1_agreement"]


class _Shell:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


class _Gadget:
    def __init__(self, data: bytes):
        self.data = data

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        import torch

        return torch.storage._load_from_bytes, (self.data,)


def shell_payload(marker: str | os.PathLike) -> Any:
    """An object whose unpickling runs ``touch marker`` through ``os.system``."""
    return _Shell(f"touch {shlex.quote(str(marker))}")


def load_from_bytes_payload(marker: str | os.PathLike) -> Any:
    """An object that unpickles as ``torch.storage._load_from_bytes(b)``, ``b`` a legacy ``torch.save`` of
    :func:`shell_payload` (``_load_from_bytes`` calls ``torch.load(weights_only=False)`` on it)."""
    import torch

    buffer = io.BytesIO()
    torch.save(shell_payload(marker), buffer, _use_new_zipfile_serialization=False)
    return _Gadget(buffer.getvalue())


def _payload_ops(payload: Any) -> bytes:
    ops = pickle.dumps(payload, protocol=2)
    assert ops[:2] == b"\x80\x02" and ops[-1:] == b"."
    return ops[2:-1]


def splice_payload(source: str | os.PathLike, target: str | os.PathLike, payload: Any, key: str = "_extra") -> Path:
    """Copy the ``torch.save`` zip ``source`` to ``target`` with ``payload`` added to its top-level dict.

    The pickle's last opcodes are extended (push ``key``, the payload's opcodes, SETITEM), every other record
    is copied unchanged: the file loads with the same weights and the payload runs in any reader that
    unpickles freely.
    """
    source, target = Path(source), Path(target)
    with zipfile.ZipFile(source) as archive:
        records = [(info, archive.read(info)) for info in archive.infolist()]
    name = next(info.filename for info, _ in records if info.filename.endswith("/data.pkl"))
    key_bytes = key.encode()
    extra = b"X" + len(key_bytes).to_bytes(4, "little") + key_bytes + _payload_ops(payload) + b"s"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as out:
        for info, data in records:
            if info.filename == name:
                assert data[-1:] == b".", "pickle does not end with STOP"
                data = data[:-1] + extra + b"."
            out.writestr(info.filename, data)
    return target


@dataclass(frozen=True)
class Agreement:
    """How often two precisions pick the same class: over all clips, and over the decided ones (the reference's
    top-1 leads its runner-up by more than the margin; the rest are near-ties either precision breaks its own way)."""

    clips: int
    same: int
    decided: int
    same_decided: int
    max_logit_diff: float

    def __str__(self) -> str:
        return (f"top-1 agreement {self.same}/{self.clips}, on decided clips {self.same_decided}/{self.decided}, "
                f"max |logit diff| {self.max_logit_diff:.3f}")


def top1_agreement(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], margin: float) -> Agreement:
    """:class:`Agreement` of ``(reference, other)`` logit batches, each (clips, classes); decided clips are judged
    on the reference's top-2 margin."""
    clips = same = decided = same_decided = 0
    worst = 0.0
    for reference, other in pairs:
        reference, other = reference.float(), other.float()
        agree = reference.argmax(-1) == other.argmax(-1)
        top2 = reference.topk(2, dim=-1).values
        clear = (top2[:, 0] - top2[:, 1]) > margin
        clips += len(agree)
        same += int(agree.sum())
        decided += int(clear.sum())
        same_decided += int((agree & clear).sum())
        worst = max(worst, float((reference - other).abs().max()))
    return Agreement(clips, same, decided, same_decided, worst)
