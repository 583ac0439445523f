"""What the data check adds for multi-label data: label sets per text, texts with no label, and which
labels occur together.

In multi-label mode each frame's `label` column holds a sorted tuple of label names (textcls/data/
multilabel.py). The checks that look at single labels (unseen, variant and small labels) run on each
label of each set (`label_occurrences`); what only a set has is computed here.
"""

from collections import Counter
from itertools import combinations

import pandas as pd

NO_LABEL_WARNING = 0.5  # a split where more texts than this carry no label is worth a second look
TOP_PAIRS = 10


def label_occurrences(frame: pd.DataFrame, multi_label: bool) -> pd.Series:
    """One entry per (text, label): the `label` column itself for single-label data, each label of each
    set for multi-label data. The index is the row's, so a text with two labels occurs twice."""
    if not multi_label:
        return frame["label"]
    return frame["label"].explode().dropna()


def label_set_stats(frame: pd.DataFrame) -> dict:
    """Mean labels per text (label cardinality), the most any text has, and the texts with no label."""
    sizes = frame["label"].map(len)
    empty = int((sizes == 0).sum())
    return {
        "label_cardinality": round(float(sizes.mean()), 4) if len(sizes) else 0.0,
        "max_labels_per_text": int(sizes.max()) if len(sizes) else 0,
        "no_label_rows": empty,
        "no_label_share": round(empty / max(len(frame), 1), 4),
    }


def co_occurrence(frame: pd.DataFrame, top: int = TOP_PAIRS) -> list[dict]:
    """The `top` label pairs carried by the most texts together, most frequent first."""
    counts = Counter(pair for labels in frame["label"] for pair in combinations(labels, 2))
    return [{"labels": list(pair), "texts": n} for pair, n in counts.most_common(top)]


def no_label_messages(splits: dict, share: float = NO_LABEL_WARNING) -> list[str]:
    """A sentence for each split where more than `share` of the texts carry no label."""
    return [
        f"{info['no_label_share']:.0%} of {split} texts ({info['no_label_rows']}) carry no label: if that is "
        "not expected, check data.label_separator (or data.label_columns)"
        for split, info in splits.items()
        if info["no_label_share"] > share
    ]


def render_lines(report: dict) -> list[str]:
    """The multi-label part of the printed report: cardinality per split and the top label pairs."""
    lines = ["Labels per text:"]
    for split, info in report["splits"].items():
        lines.append(
            f"  {split:<10} mean {info['label_cardinality']:.2f}  max {info['max_labels_per_text']}  "
            f"no label {info['no_label_rows']} ({info['no_label_share']:.1%})"
        )
    pairs = report.get("co_occurrence") or []
    lines.append("Labels most often together in train:" + ("" if pairs else " none (no text has two labels)"))
    lines += [f"  {' + '.join(p['labels'])}: {p['texts']} texts" for p in pairs]
    return lines
