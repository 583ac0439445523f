"""The classification metrics, defined once for the logged values, the test report and the baselines.

Macro averages (F1, precision, recall) run over the classes that are present in the split: in its true
labels or in its predictions. A class with no examples and no predictions has no precision, recall or F1
(each is 0/0); counting it as 0 would mark down a perfect model on a split that happens to lack a class,
and make the score depend on classes the split never mentions. This is torchmetrics' rule (it skips
classes with tp + fp + fn = 0), used for the values logged during training and so for checkpoint
selection, and scikit-learn's when given those classes, used for the arrays of the report and the
baselines; tests/test_report.py checks that the two agree. A class present in only one of the two
counts, with 0 where its precision or recall is 0/0. Weighted averages weigh by support, so absent
classes do not count there either.

Multi-label metrics (`compute_multilabel_scores`, and the logged ones of the multi-label task in textcls/tasks/) follow torchmetrics'
multi-label rule instead: macro averages run over every label, a label with no positives and no
predictions scoring 0; micro averages pool all (text, label) decisions; subset accuracy is the share
of texts whose predicted label set is exactly right, Hamming loss the share of wrong decisions.
"""

import numpy as np
from sklearn.metrics import accuracy_score, hamming_loss, log_loss, precision_recall_fscore_support

from textcls.calibration import brier_score, expected_calibration_error


def compute_multilabel_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """The scores of the logged multi-label metrics (textcls/tasks/) for 0/1 matrices (texts x labels), with scikit-learn."""
    y_true, y_pred = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    out = {}
    for average in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        out |= {f"f1_{average}": float(f), f"precision_{average}": float(p), f"recall_{average}": float(r)}
    out["subset_acc"] = float(accuracy_score(y_true, y_pred))
    out["hamming_loss"] = float(hamming_loss(y_true, y_pred))
    out["rows"] = len(y_true)
    return out


def present_labels(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """The class indices that macro averages run over: those in the true labels or the predictions."""
    return np.union1d(y_true, y_pred)


def f1_macro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro F1 of class-index labels and predictions, over the classes present in either."""
    return compute_scores(y_true, y_pred)["f1_macro"]


def compute_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, macro/weighted F1 and macro precision/recall of class-index labels and predictions."""
    labels = present_labels(y_true, y_pred)
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    _, _, fw, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="weighted", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(f),
        "f1_weighted": float(fw),
        "precision_macro": float(p),
        "recall_macro": float(r),
    }


def compute_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict:
    """The scores of `compute_scores` for the most probable classes, log loss, calibration (ECE with 15
    bins and Brier score, textcls/calibration.py) and the number of rows."""
    return {
        **compute_scores(y_true, probs.argmax(1)),
        "loss": float(log_loss(y_true, _normalised(probs), labels=np.arange(probs.shape[1]))),
        "ece": expected_calibration_error(probs, y_true),
        "brier": brier_score(probs, y_true),
        "rows": len(y_true),
    }


def _normalised(probs: np.ndarray) -> np.ndarray:
    """Probabilities in float64 that sum to 1 at float64 precision: float32 ones (a softmax, a scikit-learn
    classifier on float32 features) are off by 1e-7, which scikit-learn's log loss warns about."""
    probs = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1)
    return probs / probs.sum(1, keepdims=True)
