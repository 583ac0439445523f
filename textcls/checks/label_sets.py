"""What the data check adds for multi-label data: label sets per text, texts with no label, and which
labels occur together (asked for by `MultiLabel`'s `check_*` methods).

Each text's labels are a sorted tuple of label names (textcls/data/multilabel.py). The checks that look
at single labels (unseen, variant and small labels) run on each label of each set (the task's
`occurrences`); what only a set has is computed here.
"""

from collections import Counter
from itertools import combinations

import pandas as pd

from textcls.checks.problems import problem

NO_LABEL_WARNING = 0.5  # a split where more texts than this carry no label is worth a second look
TOP_PAIRS = 10


def label_set_stats(labels: pd.Series) -> dict:
    """Mean labels per text (label cardinality), the most any text has, and the texts with no label."""
    sizes = labels.map(len)
    empty = int((sizes == 0).sum())
    return {
        "label_cardinality": round(float(sizes.mean()), 4) if len(sizes) else 0.0,
        "max_labels_per_text": int(sizes.max()) if len(sizes) else 0,
        "no_label_rows": empty,
        "no_label_share": round(empty / max(len(labels), 1), 4),
    }


def co_occurrence(labels: pd.Series, top: int = TOP_PAIRS) -> list[dict]:
    """The `top` label pairs carried by the most texts together, most frequent first."""
    counts = Counter(pair for names in labels for pair in combinations(names, 2))
    return [{"labels": list(pair), "texts": n} for pair, n in counts.most_common(top)]


def no_label_problems(splits: dict, share: float = NO_LABEL_WARNING) -> list[dict]:
    """A warning for each split where more than `share` of the texts carry no label."""
    return [
        problem(
            "warning",
            "no_label",
            f"{info['no_label_share']:.0%} of {split} texts ({info['no_label_rows']}) carry no label: if that "
            "is not expected, check data.label_separator (or data.label_columns)",
        )
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
