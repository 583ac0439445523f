"""The test report of a classifier that gives each text one class: metrics (with the calibration
entries when the uncalibrated probabilities are given), per-class table, confusion matrix, the most
confident mistakes, and its columns of the comparison with other models.

Files: per_class.csv, classification_report.txt, confusion_matrix.csv (and the figures
confusion_matrix, with calibration reliability_diagram and precision_coverage), predictions.csv and
misclassified.csv (most confident mistakes first).
"""

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

from textcls.calibration import (
    DEFAULT_TARGET_PRECISION,
    Calibration,
    calibration_metrics,
    plot_precision_coverage,
    plot_reliability,
)
from textcls.metrics import compute_metrics, present_labels
from textcls.report.markdown import md_table, shortened, texts_of
from textcls.report.part import ReportPart, run_record


def report_part(
    folder: Path,
    test: pd.DataFrame,
    probs: np.ndarray,
    label_names: list[str],
    info: dict,
    calibration: Calibration | None = None,
    raw_probs: np.ndarray | None = None,
    target_precision: float | None = None,
) -> ReportPart:
    """The single-label part of the report of predictions `probs` (rows of `test`, in order); writes
    its tables into `folder`.

    Args:
        folder: Where to write.
        test: The test rows: `text`, `label` and `row` (the row number in the source file).
        probs: Class probabilities, one row per test row, columns in `label_names` order.
        label_names: Class names in index order.
        info: What produced the predictions (see `compose_report`).
        calibration: The temperature and validation confidences behind temperature-scaled `probs`
            (None: temperature 1, no validation record).
        raw_probs: The softmax before scaling; when given, the report measures the calibration.
        target_precision: The target precision whose validation cut-off is measured on these rows
            (default 0.95).
    """
    index = {name: i for i, name in enumerate(label_names)}
    y_true = test["label"].map(index).to_numpy()
    y_pred = probs.argmax(1)
    metrics = {**compute_metrics(y_true, probs), "alerts": [], **run_record(info)}
    figures = {}
    if raw_probs is not None:
        calibration, target = calibration or Calibration(), target_precision or DEFAULT_TARGET_PRECISION
        metrics.update(calibration_metrics(y_true, probs, raw_probs, calibration, target))
        metrics["loss_uncalibrated"] = compute_metrics(y_true, raw_probs)["loss"]
        title = f"{info['model']} ({len(test)} test texts)"
        figures["reliability_diagram"] = plot_reliability(y_true, probs, raw_probs, title)
        figures["precision_coverage"] = plot_precision_coverage(y_true, probs, calibration, target, title)

    table = per_class_table(y_true, y_pred, label_names)
    table.to_csv(folder / "per_class.csv", index=False)
    present = present_labels(y_true, y_pred)  # its averages are those of metrics.json (textcls/metrics.py)
    text_report = classification_report(
        y_true,
        y_pred,
        labels=present,
        target_names=[label_names[i] for i in present],
        digits=4,
        zero_division=0,
    )
    (folder / "classification_report.txt").write_text(text_report)

    matrix = confusion_matrix(y_true, y_pred, labels=np.arange(len(label_names)))
    pd.DataFrame(matrix, index=label_names, columns=label_names).rename_axis("true \\ predicted").to_csv(
        folder / "confusion_matrix.csv"
    )
    title = f"{info['model']}: confusion matrix ({len(test)} test texts)"
    figures["confusion_matrix"] = plot_confusion(matrix, label_names, title)

    predictions = pd.DataFrame(
        {
            "row": test["row"].to_numpy(),
            **texts_of(test),
            "true_label": test["label"].to_numpy(),
            "predicted_label": [label_names[i] for i in y_pred],
            "confidence": probs.max(1),
        }
    )
    predictions.to_csv(folder / "predictions.csv", index=False)
    mistakes = predictions[predictions["true_label"] != predictions["predicted_label"]]
    mistakes = mistakes.sort_values("confidence", ascending=False, kind="stable")
    mistakes.to_csv(folder / "misclassified.csv", index=False)
    lines = summary_markdown(metrics, table, matrix, label_names, mistakes)
    return ReportPart(metrics, figures=figures, lines=lines)


def per_class_table(y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str]) -> pd.DataFrame:
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(len(label_names)), zero_division=0
    )
    return pd.DataFrame({"label": label_names, "precision": p, "recall": r, "f1": f, "support": s})


def plot_confusion(matrix: np.ndarray, label_names: list[str], title: str):
    """The confusion matrix with counts in the cells; size and fonts scale with the number of classes."""
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(label_names)
    side = min(40.0, max(5.0, 0.45 * n + 3))
    font = max(5, 12 - n // 6)
    fig = Figure(figsize=(side, side * 0.9), layout="constrained")
    ax = fig.add_subplot()
    ConfusionMatrixDisplay(matrix, display_labels=label_names).plot(
        ax=ax, values_format="d", xticks_rotation="vertical", colorbar=n <= 30, text_kw={"fontsize": font}
    )
    ax.tick_params(labelsize=font + 1)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title)
    return fig


def biggest_confusions(matrix: np.ndarray, label_names: list[str], top: int = 5) -> list[str]:
    """The largest off-diagonal cells in words: "12 Business texts predicted as Sci/Tech"."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    cells = sorted(((off[i, j], i, j) for i, j in zip(*np.nonzero(off), strict=True)), key=lambda c: -c[0])
    return [f"{n} {label_names[i]} texts predicted as {label_names[j]}" for n, i, j in cells[:top]]


def summary_markdown(
    metrics: dict, table: pd.DataFrame, matrix: np.ndarray, label_names: list[str], mistakes: pd.DataFrame
) -> list[str]:
    """report.md's single-label lines: metrics, per-class table, confusions, mistakes."""
    out = ["## Metrics", ""]
    hidden = ("model", "checkpoint", "alerts", "temperature_note")
    shown = {k: v for k, v in metrics.items() if k not in hidden}
    values = pd.Series(list(shown.values()), dtype=object)  # keeps counts as integers
    out += [md_table(pd.DataFrame({"metric": list(shown), "value": values})), ""]
    if metrics.get("temperature_note"):
        out += [f"Temperature {metrics['temperature']}, the raw softmax: {metrics['temperature_note']}.", ""]
    out += ["## Per class", "", md_table(table), ""]
    confusions = biggest_confusions(matrix, label_names)
    out += ["## Biggest confusions", ""]
    out += (
        [f"- {c}" for c in confusions] if confusions else ["- none: every test text was classified correctly"]
    )
    out += ["", "## Most confident mistakes", ""]
    if len(mistakes):
        top = mistakes.head(5)[["row", *texts_of(mistakes), "true_label", "predicted_label", "confidence"]]
        out += [md_table(top.assign(**shortened(top))), ""]
    else:
        out += ["None.", ""]
    return out


def comparison_table(rows: list[dict]) -> pd.DataFrame:
    """The comparison of models on the same test rows: accuracy, macro F1 and training time."""
    frame = pd.DataFrame(rows)[["model", "accuracy", "f1_macro", "train_seconds"]]
    frame["train_seconds"] = frame["train_seconds"].map(lambda s: "" if s is None or s != s else f"{s:.1f}")
    return frame.rename(columns={"f1_macro": "macro F1", "train_seconds": "training time (s)"})


def length_score(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The score of a group of texts (e.g. a length bucket): its accuracy."""
    return {"accuracy": float(accuracy_score(y_true, y_pred))}
