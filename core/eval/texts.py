"""Class texts for an evaluated class list: plain names, LLM descriptions (T2L) or LLM-rephrased names (TC-CLIP).

The method decides how a class list becomes texts (``VideoModel.class_texts(names, descriptions)``:
CLIP/ViFi wrap names in "a photo of a {}.", TC-CLIP normalises them, T2L uses the description verbatim);
this module only finds the ``descriptions`` mapping for the chosen mode:

* ``names``: none;
* ``descriptions``: T2L's GPT description CSV (``SNo,Class Name,GPT3 discription``; newlines deleted),
  from ``--descriptions FILE`` or the catalog;
* ``rephrased``: FROSTER's JSON (``{"0": "Name: sentence", ...}`` in class order) that TC-CLIP's LLM
  variant uses, from ``--descriptions FILE`` or the catalog.

When a mode needs a mapping that does not exist (the synthetic dataset has no LLM texts), the class name
itself stands in for its description and the report says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.method import VideoModel

__all__ = ["read_description_file", "resolve_class_texts"]


def read_description_file(path: str | os.PathLike, class_names: Sequence[str]) -> dict[str, str]:
    """Class name -> text from a description file: T2L's CSV or a JSON object name -> text
    (``core.io.read_descriptions``), or a rephrased-name JSON (FROSTER / TC-CLIP: ``{"0": text, ...}`` or a
    list, in class order), which is aligned with ``class_names`` by position.

    Raises:
        FileNotFoundError: missing file.
        ValueError: a positional JSON of the wrong length, or a malformed file.
    """
    from core.io import read_descriptions

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"description file {str(path)!r} not found")
    if path.suffix.lower() == ".json":
        obj = json.loads(path.read_text(encoding="utf-8-sig"))
        positional = isinstance(obj, list) or (isinstance(obj, dict) and all(str(k).isdigit() for k in obj))
        if positional:
            values = [obj[k] for k in sorted(obj, key=int)] if isinstance(obj, dict) else list(obj)
            if len(values) != len(class_names):
                raise ValueError(f"{path} holds {len(values)} texts for {len(class_names)} classes; a rephrased-name "
                                 f"JSON must list every class of the evaluated split in label order")
            return {name: str(value) for name, value in zip(class_names, values)}
    return read_descriptions(path)


def _catalog_mapping(mode: str, dataset: str, which: str | None, class_names: Sequence[str]) -> dict[str, str] | None:
    """The catalog's T2L descriptions / rephrased names of ``dataset``'s class list ``which``, keyed by name."""
    if not dataset:
        return None
    from core.data import catalog

    if dataset not in catalog.list_datasets():
        return None
    which = which or "all"
    try:
        listed = catalog.class_names(dataset, which)
        texts = catalog.descriptions(dataset, "t2l", which) if mode == "descriptions" else \
            catalog.rephrased_names(dataset, which)
    except (KeyError, ValueError, FileNotFoundError):
        return None
    if list(listed) != list(class_names) or len(texts) != len(listed):
        return None  # the evaluated list is not that catalog list: do not guess an alignment
    return dict(zip(listed, texts))


def resolve_class_texts(model: VideoModel, class_names: Sequence[str], mode: str, *, dataset: str = "",
                        split: str | None = None, descriptions_file: str | os.PathLike | None = None,
                        run_descriptions: Mapping[str, str] | None = None) -> tuple[list[str], str]:
    """The texts ``model`` classifies ``class_names`` with, and a note on where they came from.

    Args:
        model: the evaluated model (its ``class_texts`` builds the final strings).
        class_names: the evaluated class list.
        mode: ``names``, ``descriptions`` or ``rephrased``.
        dataset, split: catalog dataset and class-list name (``all``, ``base``, ``zs_split1``) to look up.
        descriptions_file: explicit mapping file (takes precedence over everything else).
        run_descriptions: the descriptions the model's training run used, when they cover the class list.
    """
    names = list(class_names)
    if mode == "names":
        return model.class_texts(names), "class names"
    mapping = read_description_file(descriptions_file, names) if descriptions_file is not None else None
    origin = str(descriptions_file) if mapping is not None else ""
    if mapping is None:
        mapping = _catalog_mapping(mode, dataset, split, names)
        origin = f"catalog ({dataset} {split or 'all'})"
    if mapping is None and run_descriptions and all(n in run_descriptions for n in names):
        mapping, origin = dict(run_descriptions), "the training run"
    if mapping is None:
        # No LLM texts exist for this class list (e.g. the synthetic dataset): the name is its own description.
        mapping = {n: n for n in names}
        origin = f"class names (no {mode} known for {dataset or 'this dataset'})"
    return model.class_texts(names, mapping), f"{mode} from {origin}"
