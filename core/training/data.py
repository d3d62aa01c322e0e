"""What a run trains and evaluates on: shards, class lists, descriptions, and the loaders over them.

Two sources, one pipeline (``core.data.make_video_loader``):

* **real data**: ``data.train_shards`` / ``data.val_shards`` with class lists from ``data.class_names`` /
  ``data.val_class_names`` (``core.io.read_class_list``) or the shards' manifests; an evaluation-only run
  (a method without trainable parameters, e.g. ``--method clip``) may give ``data.val_shards`` alone;
* **the synthetic dataset** (neither training nor validation shards): trains on its base classes and
  evaluates on ``val_base`` (base classes) and ``val_novel`` (held-out compositions), including the
  time-reversal pairs.

The evaluation splits are :class:`core.eval.sets.EvalSet` objects, evaluated by ``core.eval.engine``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.config import expand_path
from core.data.loader import VideoLoader, make_video_loader
from core.data.reader import expand_shards, shard_sizes
from core.distributed import WorldInfo
from core.eval.sets import EvalSet, manifest_classes
from core.io import read_class_list, read_descriptions

__all__ = ["RunData", "make_train_loader", "resolve_data"]


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


def _shards_arg(value: Any) -> str | list[str]:
    return [expand_path(v) for v in value] if isinstance(value, (list, tuple)) else expand_path(value)


def resolve_data(config: Mapping[str, Any]) -> RunData:
    """The run's data from ``config["data"]`` (the synthetic dataset when neither training nor validation
    shards are given)."""
    data = config["data"]
    descriptions = read_descriptions(data["descriptions"]) if data.get("descriptions") else None
    if data["train_shards"] is None and data["val_shards"] is None:
        from core.data.synthetic import synthetic_dataset

        ds = synthetic_dataset()
        sets = [EvalSet(split, "", ds.splits[split].pattern, list(ds.splits[split].class_names),
                        reversal_pairs=ds.pairs_in(split), dataset="synthetic", catalog_split=split,
                        class_origin=f"synthetic {split}") for split in ("val_base", "val_novel")]
        return RunData(ds.train.pattern, ds.train.class_names, data["train_size"] or ds.train.num_samples, sets,
                       descriptions, synthetic=True)
    train_shards = _shards_arg(data["train_shards"]) if data["train_shards"] is not None else None
    # evaluation-only runs (a method without trainable parameters) may give validation shards alone
    listed = train_shards if train_shards is not None else _shards_arg(data["val_shards"])
    if data["class_names"]:
        class_names = read_class_list(data["class_names"])
    else:
        class_names = manifest_classes(listed)
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
            val_names, origin = read_class_list(data["val_class_names"]), str(data["val_class_names"])
        elif data["class_names"]:
            val_names, origin = class_names, str(data["class_names"])
        else:
            val_names, origin = (manifest_classes(val_shards) or class_names), "manifest.json"
        sets.append(EvalSet("val", "", val_shards, list(val_names), class_origin=origin))
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


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
