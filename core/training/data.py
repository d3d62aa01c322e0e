"""What a run trains and evaluates on: shards, class lists, descriptions, and the loaders over them.

Two sources, one pipeline (``core.data.make_video_loader``):

* **real data**: ``data.train_shards`` / ``data.val_shards`` with class lists from ``data.class_names`` /
  ``data.val_class_names`` or the shards' manifests;
* **the synthetic dataset** (no data keys): trains on its base classes and evaluates on ``val_base``
  (base classes) and ``val_novel`` (held-out compositions), including the time-reversal pairs.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import expand_path
from core.data.loader import VideoLoader, make_video_loader
from core.data.reader import expand_shards, shard_sizes
from core.data.shards import read_manifest
from core.distributed import WorldInfo

__all__ = ["EvalSet", "RunData", "make_eval_loader", "make_train_loader", "read_class_names", "read_descriptions",
           "resolve_data"]


@dataclass(frozen=True)
class EvalSet:
    """One evaluation split: its shards, the class list its labels index, and reversal label pairs."""

    name: str
    shards: str | list[str]
    class_names: list[str]
    reversal_pairs: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class RunData:
    """Resolved data of a run.

    Attributes:
        train_shards: training shard URLs (None for evaluation-only runs without training data).
        class_names: the training class list (labels index it).
        train_size: training samples per epoch.
        eval_sets: splits evaluated during and after training (the first is "the" validation split).
        descriptions: class name -> description, for methods that classify with descriptions.
        synthetic: whether this is the embedded synthetic dataset.
    """

    train_shards: str | list[str] | None
    class_names: list[str]
    train_size: int
    eval_sets: list[EvalSet]
    descriptions: dict[str, str] | None = None
    synthetic: bool = False


def _catalog_reference(value: str) -> tuple[str, str] | None:
    """``"ucf101"`` / ``"ucf101:base"`` -> (dataset, part) when it names a catalog dataset, not a file."""
    from core.data import catalog

    name, _, part = str(value).partition(":")
    if Path(expand_path(value)).exists() or name not in catalog.list_datasets():
        return None
    return name, part


def read_class_names(source: str | os.PathLike) -> list[str]:
    """Class names in label order.

    ``source`` is a catalog reference (``kinetics400``, ``ucf101:base``: ``core.data.catalog.class_names``) or a
    file: CSV ``id,name`` (TC-CLIP's ``labels/*.csv``; also without the header), a JSON list or
    ``{"0": name, ...}`` object, or plain text with one name per line.

    Raises:
        FileNotFoundError: neither a catalog dataset nor an existing file.
        ValueError: the file holds no names, or CSV ids that are not 0..C-1 in order.
    """
    from core.data import catalog

    reference = _catalog_reference(source)
    if reference is not None:
        return catalog.class_names(reference[0], reference[1] or "all")
    path = Path(expand_path(source))
    if not path.is_file():
        raise FileNotFoundError(f"class list {str(path)!r} not found (data.class_names / data.val_class_names): pass "
                                f"a file or a catalog dataset ({', '.join(catalog.list_datasets())}[:base|novel])")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        obj = json.loads(text)
        names = [obj[k] for k in sorted(obj, key=int)] if isinstance(obj, dict) else list(obj)
    elif path.suffix.lower() == ".csv":
        rows = [r for r in csv.reader(text.splitlines()) if r]
        if rows and [h.strip().lower() for h in rows[0][:2]] == ["id", "name"]:
            return catalog.read_label_csv(path)
        ids = [int(r[0]) for r in rows]
        if ids != list(range(len(ids))):
            raise ValueError(f"{path}: class ids must be 0..C-1 in order, got {ids[:5]}...")
        names = [",".join(r[1:]).strip() for r in rows]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ValueError(f"class list {path} is empty")
    return [str(n) for n in names]


def read_descriptions(source: str | os.PathLike) -> dict[str, str]:
    """Class name -> description: a catalog reference (``ucf101:t2l``: the dataset's T2L descriptions), T2L's
    ``SNo,Class Name,GPT3 discription`` CSV (newlines inside a description deleted, as T2L does), or a JSON
    object name -> text."""
    from core.data import catalog

    reference = _catalog_reference(source)
    if reference is not None:
        name, kind = reference[0], reference[1] or "t2l"
        which = (catalog.dataset_info(name).get("descriptions", {}).get(kind) or {}).get("classes", "all")
        return dict(zip(catalog.class_names(name, which), catalog.descriptions(name, kind, which)))
    path = Path(expand_path(source))
    if not path.is_file():
        raise FileNotFoundError(f"descriptions file {str(path)!r} not found (data.descriptions)")
    if path.suffix.lower() == ".json":
        obj = json.loads(path.read_text(encoding="utf-8-sig"))
        if not isinstance(obj, dict):
            raise ValueError(f"{path}: expected a JSON object class name -> description")
        return {str(k): str(v) for k, v in obj.items()}
    return catalog.read_t2l_descriptions(path)


def _manifest_classes(shards: str | Sequence[str]) -> list[str] | None:
    urls = expand_shards(shards)
    manifest = read_manifest(os.path.dirname(os.path.abspath(urls[0])))
    return manifest.get("classes") if manifest else None


def _shards_arg(value: Any) -> str | list[str]:
    return [expand_path(v) for v in value] if isinstance(value, (list, tuple)) else expand_path(value)


def resolve_data(config: Mapping[str, Any]) -> RunData:
    """The run's data from ``config["data"]`` (the synthetic dataset when no shards are given)."""
    data = config["data"]
    descriptions = read_descriptions(data["descriptions"]) if data.get("descriptions") else None
    if data["train_shards"] is None:
        from core.data.synthetic import synthetic_dataset

        ds = synthetic_dataset()
        sets = [EvalSet(split, ds.splits[split].pattern, ds.splits[split].class_names, ds.pairs_in(split))
                for split in ("val_base", "val_novel")]
        return RunData(ds.train.pattern, ds.train.class_names, data["train_size"] or ds.train.num_samples, sets,
                       descriptions, synthetic=True)
    train_shards = _shards_arg(data["train_shards"]) if data["train_shards"] is not None else None
    # evaluation-only runs (a frozen method) may give validation shards alone
    listed = train_shards if train_shards is not None else _shards_arg(data["val_shards"])
    if data["class_names"]:
        class_names = read_class_names(data["class_names"])
    else:
        class_names = _manifest_classes(listed)
        if not class_names:
            raise ValueError("no class names: the shards have no manifest with classes; pass --class-names FILE "
                             "(data.class_names)")
    train_size = data["train_size"] if train_shards is not None else 0
    if train_size is None:
        sizes = shard_sizes(expand_shards(train_shards))
        if sizes is None:
            raise ValueError("the training set size is unknown (remote shards or no manifest.json); set "
                             "data.train_size=<samples per epoch>")
        train_size = sum(sizes)
    sets = []
    if data["val_shards"] is not None:
        val_shards = _shards_arg(data["val_shards"])
        if data["val_class_names"]:
            val_names = read_class_names(data["val_class_names"])
        else:
            val_names = (_manifest_classes(val_shards) or class_names) if not data["class_names"] else class_names
        sets.append(EvalSet("val", val_shards, val_names))
    return RunData(train_shards, class_names, int(train_size), sets, descriptions)


def make_train_loader(run_data: RunData, config: Mapping[str, Any], *, mean: Sequence[float], std: Sequence[float],
                      world: WorldInfo, epoch: int, epoch_batches: int, seed: int) -> VideoLoader:
    """The training loader of one rank: ``epoch_batches`` micro-batches per epoch."""
    data = config["data"]
    return make_video_loader(
        run_data.train_shards, train=True, num_frames=data["num_frames"], input_size=data["input_size"],
        mean=mean, std=std, batch_size=config["train"]["micro_batch_size"], sampling=data["train_sampling"],
        augment=data["augment"], num_workers=data["num_workers"], world_size=world.world_size, rank=world.rank,
        seed=seed, epoch=epoch, epoch_batches=epoch_batches, timeout=data["decode_timeout"],
        shuffle_buffer=data["shuffle_buffer"], pin_memory=_cuda_available(), decoder=data["decoder"])


def make_eval_loader(eval_set: EvalSet, config: Mapping[str, Any], *, mean: Sequence[float], std: Sequence[float],
                     world: WorldInfo) -> VideoLoader:
    """An evaluation loader of one rank (every sample exactly once over all ranks)."""
    data = config["data"]
    return make_video_loader(
        eval_set.shards, train=False, num_frames=data["num_frames"], input_size=data["input_size"], mean=mean,
        std=std, batch_size=config["eval"]["batch_size"], sampling=data["test_sampling"],
        views=tuple(int(v) for v in data["test_views"]), num_workers=data["num_workers"],
        world_size=world.world_size, rank=world.rank, seed=config["train"]["seed"], timeout=data["decode_timeout"],
        pin_memory=_cuda_available(), decoder=data["decoder"])


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
