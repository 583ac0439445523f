"""The test score by text length: does the model do worse on the long texts it truncates or windows?

The test texts are split into quartiles of their full token length (special tokens included, before
any truncation: `EncodedTexts.text_lengths`), and each quartile is scored on its own by the task's
`length_score` (accuracy for one label per text, macro F1 at the thresholds for several). Written as
by_length.csv, `by_length` in metrics.json and the last section of report.md.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from textcls.report.markdown import md_table

FILE = "by_length.csv"
QUARTILES = 4
WORDS = {
    "f1_macro": "macro F1",
    "mae": "mean absolute error",
}  # how report.md names a score (default: its key)


def length_buckets(lengths: np.ndarray, n: int = QUARTILES) -> np.ndarray:
    """The bucket (0 .. n-1) of each length: quantiles of `lengths`, ties kept in one bucket, so
    there are fewer buckets when many texts share a length; numbered without gaps."""
    lengths = np.asarray(lengths)
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, n + 1)))
    # bucket i holds lengths in (edges[i], edges[i + 1]], the first one also the shortest
    raw = np.searchsorted(edges[1:-1], lengths, side="left")
    return np.unique(raw, return_inverse=True)[1]  # an interpolated edge can leave a bucket empty


def by_length_table(
    lengths: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], dict[str, float]],
) -> pd.DataFrame:
    """One row per length bucket: its token range (`min_tokens`, `max_tokens`), `rows` and `score`
    of its rows' targets and decisions (the task's report module's `length_score`), shortest bucket first."""
    lengths = np.asarray(lengths)
    buckets = length_buckets(lengths)
    rows = []
    for b in range(int(buckets.max()) + 1 if len(buckets) else 0):
        mask = buckets == b
        span = {"min_tokens": int(lengths[mask].min()), "max_tokens": int(lengths[mask].max())}
        rows.append({"bucket": b + 1, **span, "rows": int(mask.sum()), **score(y_true[mask], y_pred[mask])})
    return pd.DataFrame(rows)


def by_length_section(
    folder: Path,
    lengths: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], dict[str, float]],
) -> tuple[pd.DataFrame, list[str]]:
    """Write by_length.csv into `folder`; the table and its report.md lines.

    Args:
        folder: The report folder.
        lengths: Each test text's full length in tokens, in the order of `y_true`.
        y_true: The task's targets of the test rows.
        y_pred: The task's decisions on them.
        score: The `length_score` of the task's report module.
    """
    table = by_length_table(lengths, y_true, y_pred, score)
    table.to_csv(folder / FILE, index=False)
    name = table.columns[-1]
    word = WORDS.get(name, name)
    shown = table.assign(
        tokens=[f"{a}-{b}" for a, b in zip(table["min_tokens"], table["max_tokens"], strict=True)]
    )
    shown = shown[["bucket", "tokens", "rows", name]].rename(columns={name: word})
    lines = [
        "## By text length",
        "",
        f"The test texts in quartiles of their full length in tokens (before truncation), and the {word} "
        "of each; a drop on the longest texts means they lose what decides their label.",
        "",
        md_table(shown),
        "",
    ]
    return table, lines
