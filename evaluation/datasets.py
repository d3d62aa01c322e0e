"""What a protocol evaluates on: named sets of shards with the class list their labels index.

Real data: shards written by ``chronoclip-shards`` from an official split list (one shard set per
split, e.g. HMDB-51 ``val1.txt``), whose labels index that split's class list. The class list comes
from, in order: ``--classes FILE`` (``core.io.read_class_list``), the shard set's ``manifest.json`` (the writer records it), or the
dataset catalog (``core.data.catalog``) by dataset name and split.

The embedded synthetic dataset (``core.data.synthetic``) stands in for every protocol when no data is
given: its ``val_base`` / ``val_novel`` splits hold base / novel classes (held-out compositions), and
its reversal pairs (a class and its time-reversed partner) measure temporal modelling:

==================  ==============================================================================
protocol            synthetic stand-in
==================  ==============================================================================
zero-shot           the novel classes (never trained on), 3 "splits" of 3/4 of them each, drawn with
                    seeds 1..3 (as K-600's 3 splits of 160 of its 220 new classes)
few-shot            ``val_base`` against all base classes
base-to-novel       ``val_base`` (base classes) and ``val_novel`` (novel classes)
fully-supervised    ``val_base`` against all base classes, multi-view
==================  ==============================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from core.eval.sets import EvalSet, manifest_classes
from core.io import read_class_list

__all__ = ["ALIASES", "SYNTHETIC", "EvalSet", "catalog_name", "display_name", "real_set", "synthetic_sets"]

SYNTHETIC = "synthetic"

#: Recipe of the synthetic stand-in (``None``: ``core.data.synthetic``'s default). Tests set a smaller one.
SYNTHETIC_RECIPE = None


def _subset_pairs(pairs: Sequence[tuple[int, int]], label_map: Mapping[int, int]) -> list[tuple[int, int]]:
    return [(label_map[a], label_map[b]) for a, b in pairs if a in label_map and b in label_map]


def synthetic_sets(protocol: str, *, root: str | os.PathLike | None = None, zero_shot_splits: int = 3,
                   zero_shot_fraction: float = 0.75) -> dict[str, list[EvalSet]]:
    """The synthetic stand-ins of ``protocol`` (see the module docstring), generated on first use.

    Returns:
        group name -> its splits (``base-to-novel``: groups ``base`` and ``novel``).
    """
    from core.data.synthetic import synthetic_dataset

    data = synthetic_dataset(root, SYNTHETIC_RECIPE)
    val_base, val_novel = data.splits["val_base"], data.splits["val_novel"]
    base = EvalSet("synthetic base", "val", val_base.pattern, list(val_base.class_names),
                   reversal_pairs=data.pairs_in("val_base"), dataset=SYNTHETIC, catalog_split="val_base",
                   class_origin="synthetic val_base")
    novel = EvalSet("synthetic novel", "val", val_novel.pattern, list(val_novel.class_names),
                    reversal_pairs=data.pairs_in("val_novel"), dataset=SYNTHETIC, catalog_split="val_novel",
                    class_origin="synthetic val_novel")
    if protocol == "zero-shot":
        sets = []
        count = max(2, round(zero_shot_fraction * len(novel.class_names)))
        for split in range(1, zero_shot_splits + 1):
            chosen = sorted(np.random.default_rng(split).choice(len(novel.class_names), count, replace=False).tolist())
            label_map = {old: new for new, old in enumerate(chosen)}
            sets.append(EvalSet("synthetic novel", str(split), novel.shards, [novel.class_names[i] for i in chosen],
                                label_map=label_map, reversal_pairs=_subset_pairs(novel.reversal_pairs, label_map),
                                dataset=SYNTHETIC, catalog_split="val_novel",
                                class_origin=f"synthetic val_novel, seeded subset {split}"))
        return {"synthetic novel": sets}
    if protocol == "base-to-novel":
        base.group, novel.group = "base", "novel"
        return {"base": [base], "novel": [novel]}
    if protocol in ("few-shot", "fully-supervised"):
        return {"synthetic base": [base]}
    raise ValueError(f"unknown protocol {protocol!r}")


#: Short names accepted on the command line for the catalog's datasets.
ALIASES = {"k400": "kinetics400", "k600": "kinetics600", "hmdb": "hmdb51", "ucf": "ucf101", "ucf-101": "ucf101",
           "hmdb-51": "hmdb51", "something-something-v2": "ssv2"}


def catalog_name(name: str) -> str:
    """The catalog's name for a dataset given on the command line (``k600`` -> ``kinetics600``)."""
    return ALIASES.get(name.lower(), name.lower())


def display_name(name: str) -> str:
    """A dataset's title for report columns (``HMDB-51``); the name itself when the catalog lacks it."""
    from core.data import catalog

    name = catalog_name(name)
    if name in catalog.list_datasets():
        return str(catalog.dataset_info(name).get("title", name))
    return name


def _catalog_classes(dataset: str, which: str | None) -> list[str] | None:
    from core.data import catalog

    if not dataset or dataset not in catalog.list_datasets():
        return None
    try:
        return list(catalog.class_names(dataset, which or "all"))
    except (KeyError, ValueError, FileNotFoundError):
        return None


def real_set(group: str, split: str, shards: Any, *, dataset: str = "", catalog_split: str | None = None,
             classes_file: str | os.PathLike | None = None) -> EvalSet:
    """An :class:`EvalSet` over user shards; the class list from ``classes_file``, the manifest or the catalog.

    Raises:
        ValueError: no class list could be found.
    """
    if classes_file is not None:
        names = read_class_list(classes_file)
        origin = str(classes_file)
    else:
        names = manifest_classes(shards)
        origin = "manifest.json"
        if names is None and dataset:
            names = _catalog_classes(dataset, catalog_split)
            origin = f"catalog {dataset} {catalog_split or ''}".strip()
    if not names:
        raise ValueError(f"no class list for {group} {split} ({shards}): the shards have no manifest.json with "
                         f"classes; pass --classes FILE (one name per line or the official id,name CSV) or a "
                         f"--dataset the catalog knows")
    return EvalSet(group, split, shards, names, dataset=dataset, catalog_split=catalog_split, class_origin=origin)
