"""What is evaluated: one evaluation-set type for the trainer's validation, every protocol and ``compare``.

An :class:`EvalSet` is a set of shards plus the class list their labels index (optionally a subset of it
through ``label_map``) and the time-reversal class pairs inside it. The class list of a shard set comes
from a file (``core.io.read_class_list``) or from the ``manifest.json`` the shard writer records
(:func:`manifest_classes`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EvalSet", "manifest_classes"]


@dataclass
class EvalSet:
    """One evaluated split.

    Attributes:
        group: the column it belongs to in a report (``HMDB-51``, ``base``, ``val_base``).
        split: split name within the group (``1``, ``val``; empty for the trainer's splits).
        shards: shard pattern/list for ``core.data.make_video_loader``.
        class_names: the evaluated class list (C names); scores are over exactly these.
        label_map: shard label -> index in ``class_names``; samples with other labels are skipped
            (``None``: the shard labels already index ``class_names``).
        reversal_pairs: (a, b) index pairs into ``class_names`` of classes that are time reversals.
        dataset: catalog name used to find class lists, descriptions and rephrased names (``hmdb51``).
        catalog_split: the catalog class list the labels index (``all``, ``base``, ``novel``, ``zs_split1``).
        class_origin: where the class list came from (for the report).
    """

    group: str
    split: str
    shards: Any
    class_names: list[str]
    label_map: dict[int, int] | None = None
    reversal_pairs: list[tuple[int, int]] = field(default_factory=list)
    dataset: str = ""
    catalog_split: str | None = None
    class_origin: str = ""

    @property
    def name(self) -> str:
        """``group split`` (``base val``, ``HMDB-51 2``), or the group alone (``val_base``)."""
        return f"{self.group} {self.split}".strip()


def manifest_classes(shards: str | Sequence[str]) -> list[str] | None:
    """The class list recorded in the ``manifest.json`` beside local shards (``None``: remote or none)."""
    from core.data.reader import expand_shards
    from core.data.shards import read_manifest

    urls = expand_shards(shards)
    if not urls or "://" in urls[0] or urls[0].startswith("pipe:"):
        return None
    manifest = read_manifest(os.path.dirname(os.path.abspath(urls[0])))
    classes = manifest.get("classes") if manifest else None
    return [str(c) for c in classes] if classes else None
