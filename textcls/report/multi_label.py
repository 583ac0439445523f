"""The test report of a multi-label classifier: scores at its per-label thresholds and at a fixed 0.5,
a per-label table, label cardinality, the label pairs it confuses, and the texts it gets wrong.

The decisions are those of the logged test/* metrics: each label whose sigmoid probability reaches
its threshold (textcls/thresholds.py `decide`), scored by `compute_multilabel_scores`. A text is
"misclassified" when its predicted label set is not exactly its true set; each of its missed true
labels is then paired with each label it was wrongly given, which shows the labels the model takes
for one another (a single-label confusion matrix has no equivalent when a text has several labels).
"""

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from textcls.data.multilabel import multi_hot
from textcls.metrics import compute_multilabel_scores
from textcls.report.markdown import md_table, shortened, texts_of
from textcls.report.part import ReportPart, run_record
from textcls.thresholds import FIXED_THRESHOLD, Thresholds, cardinality_alert, decide

TOP_PAIRS = 10
FIGURE = "label_f1"


def per_label_table(
    y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str], thresholds: Thresholds
) -> pd.DataFrame:
    """Precision, recall, F1, support (true texts), predicted texts and threshold of each label."""
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    tuned = thresholds.tuned or [False] * len(label_names)
    return pd.DataFrame(
        {
            "label": label_names,
            "precision": p,
            "recall": r,
            "f1": f,
            "support": s,
            "predicted": np.asarray(y_pred).sum(0).astype(int),
            "threshold": thresholds.values,
            "tuned": tuned,
        }
    )


def label_cardinality(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Mean labels per text, true and predicted."""
    return {"true": float(np.mean(y_true.sum(1))), "predicted": float(np.mean(y_pred.sum(1)))}


def confused_pairs(
    y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str], top: int = TOP_PAIRS
) -> list[dict]:
    """The `top` (missed true label, wrongly predicted label) pairs over the texts, most frequent first:
    a text that misses A and is wrongly given B counts once for (A, B)."""
    missed = (y_true > 0) & ~(y_pred > 0)
    extra = (y_pred > 0) & ~(y_true > 0)
    counts = missed.T.astype(int) @ extra.astype(int)  # [a, b]: texts missing a and given b
    cells = sorted(zip(*np.nonzero(counts), strict=True), key=lambda c: (-counts[c], c))
    return [
        {"missed": label_names[a], "predicted_instead": label_names[b], "texts": int(counts[a, b])}
        for a, b in cells[:top]
    ]


def mistakes_table(
    test: pd.DataFrame, y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str], separator: str = ";"
) -> pd.DataFrame:
    """The texts whose predicted label set is not exactly the true one, with their true, predicted,
    missing and extra labels (joined by `separator`), the most wrong decisions first."""
    names = np.asarray(label_names, dtype=object)

    def joined(mask: np.ndarray) -> list[str]:
        return [separator.join(names[row]) for row in mask]

    truth, pred = y_true > 0, y_pred > 0
    out = pd.DataFrame(
        {
            "row": test["row"].to_numpy(),
            **texts_of(test),
            "true_labels": joined(truth),
            "predicted_labels": joined(pred),
            "missing_labels": joined(truth & ~pred),
            "extra_labels": joined(pred & ~truth),
            "wrong_decisions": (truth != pred).sum(1),
        }
    )
    out = out[out["wrong_decisions"] > 0]
    return out.sort_values("wrong_decisions", ascending=False, kind="stable").reset_index(drop=True)


def plot_label_f1(table: pd.DataFrame, title: str):
    """Horizontal bars of each label's F1, with its support in the tick labels."""
    from matplotlib.figure import Figure

    n = len(table)
    fig = Figure(figsize=(8, max(3.0, 0.28 * n + 1.5)), layout="constrained")
    ax = fig.add_subplot()
    ticks = [f"{name} ({support})" for name, support in zip(table["label"], table["support"], strict=True)]
    ax.barh(np.arange(n), table["f1"], color=["tab:blue" if t else "tab:gray" for t in table["tuned"]])
    ax.set_yticks(np.arange(n), ticks, fontsize=max(6, 11 - n // 10))
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 (grey: the global threshold, not tuned)")
    ax.set_title(title)
    return fig


def report_part(
    folder: Path,
    test: pd.DataFrame,
    probs: np.ndarray,
    label_names: list[str],
    thresholds: Thresholds,
    info: dict,
    separator: str = ";",
) -> ReportPart:
    """The multi-label part of the report of probabilities `probs` (rows of `test`, in order); writes
    its tables into `folder`.

    Entries of metrics.json: scores at `thresholds` and at 0.5, the thresholds and the labels that kept
    the global one, label cardinality, the most confused label pairs. Files: per_label.csv,
    predictions.csv, misclassified.csv (missing and extra labels per text); figure: label_f1.

    Args:
        folder: Where to write.
        test: The test rows: `text`, `label` (a tuple of label names) and `row`.
        probs: Each label's probability (sigmoid), one row per test row, columns in `label_names` order.
        label_names: Label names in index order.
        thresholds: The per-label cut-offs the decisions use (the model's).
        info: What produced the predictions (see `compose_report`), with `split_rows` (texts per split).
        separator: What joins label names in the CSV files.
    """
    y_true = multi_hot(test["label"].tolist(), label_names).astype(int)
    y_pred = decide(probs, thresholds).numpy().astype(int)
    fixed = decide(probs, Thresholds.constant(FIXED_THRESHOLD, len(label_names))).numpy().astype(int)
    metrics = compute_multilabel_scores(y_true, y_pred)
    metrics[f"at_threshold_{FIXED_THRESHOLD}"] = compute_multilabel_scores(y_true, fixed)
    metrics["thresholds"] = dict(zip(label_names, thresholds.values, strict=True))
    metrics["fallback_labels"] = thresholds.fallback_labels(label_names)
    metrics["label_cardinality"] = cardinality = label_cardinality(y_true, y_pred)
    metrics["undiscriminating_labels"] = thresholds.undiscriminating_labels(label_names)
    metrics["alerts"] = []
    metrics["confused_label_pairs"] = confused_pairs(y_true, y_pred, label_names)
    metrics.update(run_record(info))
    alert = cardinality_alert(cardinality["true"], cardinality["predicted"])

    table = per_label_table(y_true, y_pred, label_names, thresholds)
    table.to_csv(folder / "per_label.csv", index=False)
    mistakes = mistakes_table(test, y_true, y_pred, label_names, separator)
    mistakes.to_csv(folder / "misclassified.csv", index=False)
    predictions = pd.DataFrame(
        {
            "row": test["row"].to_numpy(),
            **texts_of(test),
            "true_labels": [separator.join(s) for s in test["label"]],
            "predicted_labels": [separator.join(np.asarray(label_names)[row > 0]) for row in y_pred],
            **{f"prob_{name}": probs[:, j] for j, name in enumerate(label_names)},
        }
    )
    predictions.to_csv(folder / "predictions.csv", index=False)
    figures = {FIGURE: plot_label_f1(table, f"{info['model']}: F1 per label ({len(test)} test texts)")}
    lines = multilabel_markdown(metrics, table, mistakes)
    return ReportPart(metrics, [alert] if alert else [], figures, lines)


def multilabel_markdown(metrics: dict, table: pd.DataFrame, mistakes: pd.DataFrame) -> list[str]:
    """report.md's multi-label lines: scores (tuned and 0.5), per-label table, label cardinality,
    confused pairs and mistakes."""
    fixed = metrics[f"at_threshold_{FIXED_THRESHOLD}"]
    names = [k for k, v in metrics.items() if isinstance(v, float) and k in fixed]
    out = ["## Metrics", ""]
    scores = pd.DataFrame(
        {
            "metric": names,
            "per-label thresholds": [metrics[k] for k in names],
            f"threshold {FIXED_THRESHOLD}": [fixed[k] for k in names],
        }
    )
    out += [md_table(scores), "", f"{metrics['rows']} test texts.", ""]
    fallback = metrics["fallback_labels"]
    if fallback:
        out += [
            f"Labels with too few validation positives to tune their threshold, which keep the global "
            f"one: {', '.join(fallback)}.",
            "",
        ]
    unlearnt = metrics["undiscriminating_labels"]
    if unlearnt:
        out += [
            "Labels whose best validation threshold did hardly better than giving the label to every "
            f"text, which keep the global threshold: {', '.join(unlearnt)}.",
            "",
        ]
    out += ["## Per label", "", md_table(table), ""]
    cardinality = metrics["label_cardinality"]
    out += [
        "## Labels per text",
        "",
        f"True {cardinality['true']:.3f}, predicted {cardinality['predicted']:.3f} labels per text.",
        "",
    ]
    out += ["## Most confused label pairs", ""]
    pairs = metrics["confused_label_pairs"]
    lines = [
        f"- {p['missed']} missed, {p['predicted_instead']} given instead: {p['texts']} texts" for p in pairs
    ]
    out += (lines or ["- none: no text missed one label while being given another"]) + [""]
    out += ["## Texts with the most wrong labels", ""]
    if len(mistakes):
        shown = ["row", *texts_of(mistakes), "true_labels", "missing_labels", "extra_labels"]
        top = mistakes.head(5)[shown]
        out += [md_table(top.assign(**shortened(top)).fillna("")), ""]
    else:
        out += ["None: every test text got exactly its labels.", ""]
    return out


def comparison_table(rows: list[dict]) -> pd.DataFrame:
    """The comparison of models on the same test rows: macro and micro F1, subset accuracy, macro F1
    at 0.5 and training time."""

    def number(value) -> str:
        return "" if value is None or value != value else f"{value:.4f}"

    key = f"at_threshold_{FIXED_THRESHOLD}"
    return pd.DataFrame(
        {
            "model": [r["model"] for r in rows],
            "macro F1": [number(r.get("f1_macro")) for r in rows],
            "micro F1": [number(r.get("f1_micro")) for r in rows],
            "subset accuracy": [number(r.get("subset_acc")) for r in rows],
            f"macro F1 at {FIXED_THRESHOLD}": [number((r.get(key) or {}).get("f1_macro")) for r in rows],
            "training time (s)": [
                "" if r.get("train_seconds") is None else f"{r['train_seconds']:.1f}" for r in rows
            ],
        }
    )


def length_score(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The score of a group of texts (e.g. a length bucket): its macro F1 of the 0/1 decisions."""
    return {"f1_macro": compute_multilabel_scores(np.asarray(y_true).astype(int), y_pred)["f1_macro"]}
