"""chronoclip evaluation: the papers' four protocols, view aggregation, reports, comparison and profiling.

    python -m evaluation --help                  # protocols: zero-shot, few-shot, base-to-novel, fully-supervised
    python -m evaluation compare --help          # several methods trained and evaluated side by side
    python -m evaluation.profile --help          # parameters, GFLOPs per view, clips/s, peak memory

The metrics are defined once in :mod:`core.eval.metrics` (re-exported by :mod:`evaluation.metrics`); the
evaluation engine, sets, settings and model sources live in :mod:`core.eval`; importing this package is light.
"""

from core.eval.metrics import (
    aggregate_views,
    confusion_matrix,
    harmonic_mean,
    mean_std,
    per_class_accuracy,
    topk_accuracy,
    topk_credit,
)

__all__ = ["aggregate_views", "confusion_matrix", "harmonic_mean", "mean_std", "per_class_accuracy",
           "topk_accuracy", "topk_credit"]
