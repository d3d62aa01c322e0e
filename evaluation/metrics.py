"""The metrics of ``python -m evaluation``: defined once, in :mod:`core.eval.metrics` (re-exported here).

Accuracies in percent; one tie rule (a tie counts at its expected value); see :mod:`core.eval.metrics`.
"""

from core.eval.metrics import (  # noqa: F401 - the public names of this module
    AGGREGATIONS,
    aggregate_views,
    confusion_matrix,
    harmonic_mean,
    mean_class_accuracy,
    mean_std,
    pair_accuracy,
    per_class_accuracy,
    topk_accuracy,
    topk_credit,
)

__all__ = ["AGGREGATIONS", "aggregate_views", "confusion_matrix", "harmonic_mean", "mean_class_accuracy", "mean_std",
           "pair_accuracy", "per_class_accuracy", "topk_accuracy", "topk_credit"]
