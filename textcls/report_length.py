"""The test score by text length: does the model do worse on the long texts it truncates or windows?

The test texts are split into quartiles of their full token length (special tokens included, before
any truncation: `EncodedTexts.text_lengths`), and each quartile is scored on its own: accuracy for a
single-label model, macro F1 for a multi-label one (as `compute_multilabel_scores`, at the model's
thresholds). Written as by_length.csv, `by_length` in metrics.json and a table in report.md.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score

from textcls.data.multilabel import multi_hot
from textcls.metrics import compute_multilabel_scores
from textcls.report_markdown import md_table
from textcls.thresholds import Thresholds, decide

FILE = "by_length.csv"
QUARTILES = 4


def length_buckets(lengths: np.ndarray, n: int = QUARTILES) -> np.ndarray:
    """The bucket (0 .. n-1) of each length: quantiles of `lengths`, ties kept in one bucket, so
    there are fewer buckets when many texts share a length; numbered without gaps."""
    lengths = np.asarray(lengths)
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, n + 1)))
    # bucket i holds lengths in (edges[i], edges[i + 1]], the first one also the shortest
    raw = np.searchsorted(edges[1:-1], lengths, side="left")
    return np.unique(raw, return_inverse=True)[1]  # an interpolated edge can leave a bucket empty


def by_length_table(
    lengths: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, multi_label: bool
) -> pd.DataFrame:
    """One row per length bucket: its token range (`min_tokens`, `max_tokens`), `rows` and score
    (`accuracy`, or `f1_macro` for 0/1 matrices of a multi-label model), shortest bucket first."""
    lengths = np.asarray(lengths)
    buckets = length_buckets(lengths)
    rows = []
    for b in range(int(buckets.max()) + 1 if len(buckets) else 0):
        mask = buckets == b
        if multi_label:
            score = {"f1_macro": compute_multilabel_scores(y_true[mask], y_pred[mask])["f1_macro"]}
        else:
            score = {"accuracy": float(accuracy_score(y_true[mask], y_pred[mask]))}
        span = {"min_tokens": int(lengths[mask].min()), "max_tokens": int(lengths[mask].max())}
        rows.append({"bucket": b + 1, **span, "rows": int(mask.sum()), **score})
    return pd.DataFrame(rows)


def write_by_length(
    folder: Path,
    metrics: dict,
    test: pd.DataFrame,
    probs: np.ndarray,
    label_names: list[str],
    lengths: np.ndarray,
    thresholds: Thresholds | None = None,
) -> pd.DataFrame:
    """Add the score by text length to a written test report in `folder`.

    Writes by_length.csv, adds `by_length` (the table's rows) to `metrics` and metrics.json, and
    appends the table to report.md.

    Args:
        folder: The report folder (metrics.json and report.md already written).
        metrics: The report's metrics, updated in place.
        test: The test rows, in the order of `probs`: `label` (a name, or a tuple of names).
        probs: Class probabilities (softmax), or each label's sigmoid for a multi-label model.
        label_names: Names in the column order of `probs`.
        lengths: Each test text's full length in tokens, in the order of `probs`.
        thresholds: A multi-label model's per-label cut-offs (None: single-label, argmax decides).

    Returns:
        The by-length table.
    """
    if thresholds is None:
        y_true = test["label"].map({name: i for i, name in enumerate(label_names)}).to_numpy()
        y_pred = probs.argmax(1)
    else:
        y_true = multi_hot(test["label"].tolist(), label_names).astype(int)
        y_pred = decide(probs, thresholds).numpy().astype(int)
    table = by_length_table(lengths, y_true, y_pred, multi_label=thresholds is not None)
    table.to_csv(folder / FILE, index=False)
    metrics["by_length"] = table.to_dict(orient="records")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    score = "macro F1" if thresholds is not None else "accuracy"
    shown = table.assign(
        tokens=[f"{a}-{b}" for a, b in zip(table["min_tokens"], table["max_tokens"], strict=True)]
    )
    shown = shown[["bucket", "tokens", "rows", table.columns[-1]]].rename(columns={table.columns[-1]: score})
    lines = [
        "## By text length",
        "",
        f"The test texts in quartiles of their full length in tokens (before truncation), and the {score} "
        "of each; a drop on the longest texts means they lose what decides their label.",
        "",
        md_table(shown),
        "",
    ]
    with open(folder / "report.md", "a", encoding="utf-8") as md:
        md.write("\n" + "\n".join(lines))
    return table
