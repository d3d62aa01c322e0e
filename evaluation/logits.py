"""Per-video logits saved beside every report, so re-scoring needs no new forward pass.

``reports/<run>/logits/<entry>_<set>.npz`` holds, for one model on one evaluation set:

==================  ==================================================================================
``keys``            (N,) sample keys
``labels``          (N,) true class ids (index ``class_names``)
``view_logits``     (N, V, C) float32 logits of every view (temporal clips x spatial crops)
``class_names``     (C,) the evaluated class list
``aggregation``     the view aggregation the report used
==================  ==================================================================================

:func:`rescore` recomputes top-1/top-5/mean-class/per-class accuracy under another view aggregation (or a
subset of views) from such a file::

    python -c "from evaluation.logits import rescore; print(rescore('reports/x/logits/final_val.npz', 'logit_mean'))"
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["load_logits", "per_class_dict", "rescore", "save_logits"]


def save_logits(path: str | os.PathLike, predictions, class_names: list[str]) -> Path:
    """Write ``predictions`` (:class:`evaluation.engine.Predictions` with ``view_logits``) to ``path`` (.npz).

    Raises:
        ValueError: the predictions kept no per-view logits.
    """
    from core.io import atomic_write_bytes

    if predictions.view_logits is None:
        raise ValueError("these predictions kept no per-view logits (run_classifier(keep_view_logits=True))")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, keys=np.array(predictions.keys, dtype=str), labels=predictions.labels.numpy(),
                        view_logits=predictions.view_logits.float().numpy(),
                        class_names=np.array(class_names, dtype=str),
                        aggregation=np.array(predictions.aggregation))
    return atomic_write_bytes(path, buffer.getvalue())


def load_logits(path: str | os.PathLike) -> dict[str, Any]:
    """The arrays of a logits file (``view_logits`` as a float32 tensor, ``labels`` as long)."""
    with np.load(Path(path), allow_pickle=False) as data:
        return {"keys": [str(k) for k in data["keys"]], "labels": torch.from_numpy(data["labels"]).long(),
                "view_logits": torch.from_numpy(data["view_logits"]).float(),
                "class_names": [str(c) for c in data["class_names"]], "aggregation": str(data["aggregation"])}


def per_class_dict(predictions: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict[str, float | None]:
    """Class name -> top-1 accuracy in percent (None for a class with no video)."""
    from evaluation.metrics import per_class_accuracy

    values = per_class_accuracy(predictions, labels, len(class_names)).tolist()
    return {name: (None if np.isnan(v) else round(float(v), 4)) for name, v in zip(class_names, values)}


def rescore(path: str | os.PathLike, aggregation: str | None = None, views: list[int] | None = None
            ) -> dict[str, Any]:
    """Metrics of a saved logits file under ``aggregation`` (default: the report's) over ``views`` (default all)."""
    from evaluation.metrics import aggregate_views, mean_class_accuracy, topk_accuracy

    data = load_logits(path)
    logits = data["view_logits"] if views is None else data["view_logits"][:, views]
    aggregation = aggregation or data["aggregation"]
    scores = aggregate_views(logits, aggregation)
    labels, names = data["labels"], data["class_names"]
    predictions = scores.argmax(1)
    return {"aggregation": aggregation, "views": logits.shape[1], "num_videos": len(labels),
            "top1": topk_accuracy(scores, labels, 1), "top5": topk_accuracy(scores, labels, 5),
            "mean_class_top1": mean_class_accuracy(predictions, labels, len(names)),
            "per_class_top1": per_class_dict(predictions, labels, names)}
