"""Dataset definitions as data: class lists, base/novel partitions, split lists, class descriptions.

The files live in the repository's ``datasets/`` folder, which the wheel installs as the data-only
package ``chronoclip_datasets`` (never ``datasets``: that name belongs to the Hugging Face library).
They are read through :func:`data_file`, which uses ``importlib.resources`` and falls back to the
repository folder when chronoclip runs from a checkout that is not installed.

Each dataset folder has a ``dataset.json`` naming its files::

    {"name": "ucf101", "title": "UCF-101", "doc": "docs/datasets/ucf101.md",
     "class_lists": {"all": "classes.csv", "base": "base.csv", "novel": "novel.csv"},
     "descriptions": {"t2l": {"file": "descriptions_t2l.csv", "classes": "all"}},
     "rephrased": {"all": "rephrased.json", "base": ..., "novel": ...},
     "splits": {"zero_shot/val1": {"file": "splits/val1.txt.gz", "format": "path-label", "classes": "all"}, ...},
     "missing": [what could not be shipped, and what to use instead]}

A split's ``classes`` names the class list its labels index (base-to-novel splits index the base or
novel half). The file formats of the reference repositories have one reader each:

* class lists: CSV with header ``id,name`` (:func:`read_label_csv`);
* split lists: ``<relative/path> <label>`` (TC-CLIP, ILA) and ``<frames_dir> <num_frames> <label>``
  (T2L) (:func:`read_split_file`), plain or gzipped;
* T2L descriptions: CSV ``SNo,Class Name,GPT3 discription`` with multi-line quoted texts whose
  newlines are deleted (:func:`read_t2l_descriptions`);
* rephrased names (TC-CLIP/FROSTER): JSON ``{"0": "Name: sentence", ...}`` in id order
  (:func:`read_rephrased_json`).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "SplitEntry",
    "class_names",
    "data_file",
    "dataset_info",
    "descriptions",
    "list_datasets",
    "read_label_csv",
    "read_rephrased_json",
    "read_split",
    "read_split_file",
    "read_t2l_descriptions",
    "rephrased_names",
]

_PACKAGE = "chronoclip_datasets"
_REPO_FOLDER = Path(__file__).resolve().parents[2] / "datasets"


@lru_cache(maxsize=1)
def _root():
    """The datasets root: the installed ``chronoclip_datasets`` package, else the repository folder."""
    try:
        root = resources.files(_PACKAGE)
        if _join(root, "ucf101", "dataset.json").is_file():
            return root
    except (ModuleNotFoundError, NotADirectoryError, TypeError):
        # An editable install can expose the package as a namespace whose path is setuptools' editable
        # path hook, which importlib.resources cannot list; the checkout's folder is then the source.
        pass
    if (_REPO_FOLDER / "ucf101" / "dataset.json").is_file():
        return _REPO_FOLDER
    raise FileNotFoundError(f"dataset files not found: neither the package {_PACKAGE!r} nor {_REPO_FOLDER} has "
                            f"them; reinstall chronoclip (pip install .) or run from a full checkout")


def _join(root, *parts: str):
    # one part per joinpath call: a namespace package's MultiplexedPath (Python 3.10, 3.11) takes only one
    for part in parts:
        root = root.joinpath(part)
    return root


def data_file(*parts: str):
    """A file under the datasets root (an ``importlib.resources`` Traversable or a Path)."""
    return _join(_root(), *parts)


def _read_text(resource) -> str:
    data = resource.read_bytes()
    if resource.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8-sig")


def list_datasets() -> list[str]:
    """Names of the datasets in the catalog (``hmdb51``, ``kinetics400``, ...)."""
    return sorted(p.name for p in _root().iterdir() if p.is_dir() and _join(p, "dataset.json").is_file())


@cache
def dataset_info(name: str) -> dict[str, Any]:
    """The parsed ``dataset.json`` of ``name``."""
    if name not in list_datasets():
        raise ValueError(f"unknown dataset {name!r}; the catalog has {list_datasets()}")
    return json.loads(_read_text(data_file(name, "dataset.json")))


def _entry(name: str, section: str, key: str):
    table = dataset_info(name)[section]
    if key not in table:
        raise ValueError(f"{name} has no {section} entry {key!r}; available: {sorted(table)}")
    return table[key]


# ---------------------------------------------------------------------------------------------------------------
# File readers


def read_label_csv(source) -> list[str]:
    """Class names in id order from a CSV with header ``id,name``; ids must be 0..C-1 in row order."""
    text = _read_text(source) if not isinstance(source, (str, os.PathLike)) else _read_text(Path(source))
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [h.strip().lower() for h in rows[0][:2]] != ["id", "name"]:
        raise ValueError(f"{source}: expected a CSV with header 'id,name'")
    names = []
    for position, row in enumerate(rows[1:]):
        if not row:
            continue
        if int(row[0]) != position:
            raise ValueError(f"{source}: row {position + 2} has id {row[0]}, expected {position} (ids = row order)")
        names.append(",".join(row[1:]))
    return names


@dataclass(frozen=True)
class SplitEntry:
    """One line of a split list."""

    path: str  # relative video path (path-label) or the frames directory's basename without extension (t2l)
    label: int
    num_frames: int | None = None  # T2L lists only: frames the authors extracted


def read_split_file(source, list_format: str = "path-label") -> list[SplitEntry]:
    """Entries of a split list (plain or ``.gz``).

    ``path-label``: ``<relative/path> <label>`` (TC-CLIP, ILA; the label is the last field, so paths may
    contain spaces). ``t2l``: ``<frames_dir> <num_frames> <label>``; the directory is an absolute path on
    the authors' machine, so ``path`` keeps its basename with any video extension removed (match it to
    a video by file stem).
    """
    text = _read_text(source) if not isinstance(source, (str, os.PathLike)) else _read_text(Path(source))
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            if list_format == "t2l":
                directory, frames, label = line.rsplit(maxsplit=2)
                stem = directory.rstrip("/").rsplit("/", 1)[-1]
                if stem.rsplit(".", 1)[-1].lower() in ("mp4", "avi", "webm", "mkv"):
                    stem = stem.rsplit(".", 1)[0]
                entries.append(SplitEntry(stem, int(label), int(frames)))
            elif list_format == "path-label":
                path, label = line.rsplit(maxsplit=1)
                entries.append(SplitEntry(path, int(label)))
            else:
                raise ValueError(f"unknown split list format {list_format!r}; use 'path-label' or 't2l'")
        except ValueError as error:
            if "unknown split" in str(error):
                raise
            raise ValueError(f"{source}:{number}: cannot parse {line!r} as {list_format}") from None
    return entries


def read_t2l_descriptions(source) -> dict[str, str]:
    """T2L's ``GPT_discription`` CSV -> {class name: description}, every ``\\n`` deleted (not replaced)."""
    text = _read_text(source) if not isinstance(source, (str, os.PathLike)) else _read_text(Path(source))
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or len(rows[0]) < 3:
        raise ValueError(f"{source}: expected the header 'SNo,Class Name,GPT3 discription'")
    return {row[1]: row[2].replace("\n", "") for row in rows[1:] if len(row) >= 3}


def read_rephrased_json(source) -> list[str]:
    """FROSTER/TC-CLIP rephrased names ``{"0": "Name: sentence", ...}`` -> texts in id order."""
    text = _read_text(source) if not isinstance(source, (str, os.PathLike)) else _read_text(Path(source))
    table = json.loads(text)
    keys = sorted(table, key=int)
    if [int(k) for k in keys] != list(range(len(keys))):
        raise ValueError(f"{source}: keys must be '0'..'{len(keys) - 1}'")
    return [table[k] for k in keys]


# ---------------------------------------------------------------------------------------------------------------
# Catalog accessors


def class_names(name: str, which: str = "all") -> list[str]:
    """Class names in id order: ``which`` = ``all``, ``base``, ``novel`` or another list of the dataset
    (e.g. ``exclusive`` or ``zs_split1`` for ``kinetics600``; see ``dataset_info(name)["class_lists"]``)."""
    return read_label_csv(data_file(name, _entry(name, "class_lists", which)))


def descriptions(name: str, source: str = "t2l", which: str = "all") -> list[str]:
    """Class descriptions aligned with ``class_names(name, which)`` (T2L's GPT descriptions by default).

    Raises:
        ValueError: a class of the list has no description.
    """
    entry = _entry(name, "descriptions", source)
    table = read_t2l_descriptions(data_file(name, entry["file"]))
    names = class_names(name, which)
    missing = [n for n in names if n not in table]
    if missing:
        raise ValueError(f"{name}: no {source} description for {len(missing)} classes, e.g. {missing[:3]}")
    return [table[n] for n in names]


def rephrased_names(name: str, which: str = "all") -> list[str]:
    """TC-CLIP's LLM-rephrased class texts (from FROSTER) in id order of ``class_names(name, which)``."""
    return read_rephrased_json(data_file(name, _entry(name, "rephrased", which)))


def read_split(name: str, split: str) -> tuple[list[SplitEntry], list[str]]:
    """A shipped split list and the class names its labels index.

    ``split`` is a key of ``dataset_info(name)["splits"]``, e.g. ``zero_shot/val1``,
    ``few_shot/train1_16shot``, ``base2novel/fs_base_s1_train``, ``base2novel/novel_val``.
    """
    entry = _entry(name, "splits", split)
    return read_split_file(data_file(name, entry["file"]), entry["format"]), class_names(name, entry["classes"])
