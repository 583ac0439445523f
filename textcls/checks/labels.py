"""The data check's label and text problems: labels only in validation/test, labels that differ only by
case or spacing, small or missing classes, and empty texts (repeated texts: checks/duplicates.py).

The label checks read `occurrences`: one entry per (text, label), indexed by row, so a text with
several labels counts once for each (the task's `occurrences`).
"""

from collections import defaultdict

import pandas as pd

from textcls.checks.problems import problem
from textcls.data.io import label_sort_key


def unseen_labels(occurrences: dict[str, pd.Series], labels: list[str], given: bool) -> list[dict]:
    """An error for each of validation/test with labels not in `labels` (`given`: data.labels, else train's)."""
    out = []
    known = set(labels)
    where = "the given data.labels" if given else "train"
    for split in ("validation", "test"):
        if split not in occurrences:
            continue
        split_labels = occurrences[split]
        unseen = sorted(set(split_labels) - known, key=label_sort_key)
        if unseen:
            n = split_labels[split_labels.isin(unseen)].index.nunique()
            out.append(
                problem(
                    "error",
                    "labels_not_in_train",
                    f"labels in {split} never occur in {where}: {', '.join(unseen)} ({n} rows); fix the "
                    "labels or add training examples",
                    unseen,
                )
            )
    return out


def label_variants(occurrences: dict[str, pd.Series]) -> list[dict]:
    """An error naming labels that differ only by case or spacing."""
    groups = defaultdict(set)
    for split_labels in occurrences.values():
        for label in split_labels.unique():
            groups[" ".join(label.split()).casefold()].add(label)
    variants = [sorted(names) for names in groups.values() if len(names) > 1]
    if not variants:
        return []
    named = "; ".join(" / ".join(repr(n) for n in names) for names in variants)
    return [
        problem(
            "error",
            "label_variants",
            f"labels that differ only by case or spacing would be trained as different classes: {named}; "
            "write each label one way",
            variants,
        )
    ]


def small_classes(
    occurrences: dict[str, pd.Series], labels: list[str], minimum: int, what: str = "examples"
) -> list[dict]:
    """Warnings for classes with fewer than `minimum` training `what`, and for classes absent from an
    evaluation split."""
    out = []
    for split, split_labels in occurrences.items():
        counts = split_labels.value_counts()
        if split == "train":
            small = [f"{n} ({int(counts.get(n, 0))})" for n in labels if int(counts.get(n, 0)) < minimum]
            if small:
                out.append(
                    problem(
                        "warning",
                        "small_classes",
                        f"train has fewer than {minimum} {what} of {len(small)} classes: {', '.join(small)}",
                        small,
                    )
                )
            continue
        missing = [n for n in labels if n not in counts.index]
        if missing:
            out.append(
                problem(
                    "warning",
                    "classes_missing",
                    f"{split} has no examples of {len(missing)} classes: {', '.join(missing)} "
                    "(their recall and F1 cannot be measured there)",
                    missing,
                )
            )
    return out


def empty_texts(empty_rows: dict[str, list[int]], examples: int) -> list[dict]:
    """A warning for each split that had empty texts (dropped while reading; their source rows)."""
    return [
        problem(
            "warning",
            "empty_texts",
            f"{split} had {len(rows)} empty or whitespace-only texts, dropped (source rows "
            f"{', '.join(map(str, rows[:examples]))}{', ...' if len(rows) > examples else ''})",
            rows[:examples],
        )
        for split, rows in empty_rows.items()
        if rows
    ]
