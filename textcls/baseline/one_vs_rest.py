"""Baselines for label sets: each of textcls/baseline/trained.py's classifiers, one per label
(scikit-learn's `OneVsRestClassifier`: a binary classifier per label on the same features), with
per-label thresholds tuned on the validation split exactly as the fine-tuned model's are
(`textcls.thresholds.tune_thresholds`), reported at those thresholds and at 0.5 by the multi-label
test report (textcls/report/).

The zero-shot baselines pick one label per text (a softmax over label descriptions, or the NLI
pipeline's single-label mode): they are skipped for label sets, with a note (`skip_reason`).
"""

import time

import numpy as np
from sklearn.multiclass import OneVsRestClassifier

from textcls.metrics import compute_multilabel_scores
from textcls.thresholds import FIXED_THRESHOLD, Thresholds, decide, tune_thresholds

SINGLE_LABEL_ONLY = ("zero_shot", "zero_shot_nli")


def select_one_vs_rest(
    classifier: tuple, x: dict, y: dict, seed: int, features: str, start: float, threshold: float
) -> tuple[np.ndarray, Thresholds, dict]:
    """Fit one-vs-rest classifiers for each value of the hyper-parameter; keep the one with the best
    validation macro F1 at its own tuned thresholds.

    Args:
        classifier: (title, make(value, seed), parameter name, values tried), as in `CLASSIFIERS`.
        x: Features per split (`train`, `validation`, `test`).
        y: 0/1 label matrices (texts x labels) per split.
        seed: The classifier's random state.
        features: What the features are, for the report.
        start: When the work started (`time.perf_counter()`), for the training time.
        threshold: The cut-off of labels too rare on validation to tune.

    Returns:
        The test probabilities (texts x labels), the thresholds tuned on validation and the report's info.
    """
    title, make, param, grid = classifier
    y = {split: matrix.astype(int) for split, matrix in y.items()}
    scores, fitted, tuned = {}, {}, {}
    for value in grid:
        fitted[value] = OneVsRestClassifier(make(value, seed)).fit(x["train"], y["train"])
        probs = fitted[value].predict_proba(x["validation"])
        tuned[value] = tune_thresholds(probs, y["validation"], threshold)
        decisions = decide(probs, tuned[value]).numpy()
        scores[value] = compute_multilabel_scores(y["validation"], decisions)["f1_macro"]
    best = max(grid, key=lambda v: scores[v])  # first of equals: the smallest value tried
    clf, thresholds = fitted[best], tuned[best]
    train_seconds = time.perf_counter() - start
    probs = clf.predict_proba(x["test"])
    inner = type(make(best, seed)).__name__
    info = {
        "model": f"{title} (one-vs-rest)",
        "description": f"{features} and one {inner} per label (one-vs-rest) with {param}={best}, chosen on "
        "validation macro F1 at per-label thresholds tuned on validation (best F1 per label; labels with "
        f"fewer than 5 validation positives keep {threshold}), among "
        f"{', '.join(f'{v}: {scores[v]:.4f}' for v in grid)}.",
        "settings": {param: best},
        "train_seconds": train_seconds,
    }
    return probs, thresholds, info


def skip_reason(method: str) -> str | None:
    """Why baseline `method` does not run on label sets (None: it runs)."""
    if method in SINGLE_LABEL_ONLY:
        return "it gives one label per text and this data is multi-label"
    return None


def summary(metrics: dict) -> str:
    """The test scores printed for a baseline: macro F1 at the tuned thresholds and at 0.5, micro F1."""
    fixed = metrics[f"at_threshold_{FIXED_THRESHOLD}"]["f1_macro"]
    return (
        f"macro F1 {metrics['f1_macro']:.4f} at thresholds tuned on validation ({fixed:.4f} at "
        f"{FIXED_THRESHOLD}), micro F1 {metrics['f1_micro']:.4f}"
    )
