"""The data check's label and text problems: labels only in validation/test, labels that differ only by
case or spacing, small or missing classes, empty and duplicate texts, and texts shared between splits.

The label checks read `occurrences`: one entry per (text, label), indexed by row, so a text with
several labels counts once for each (the task's `occurrences`).
"""

from collections import defaultdict
from itertools import combinations

import pandas as pd

from textcls.checks.problems import problem
from textcls.data.io import SPLITS, label_sort_key

PAIR_JOIN = " ||| "  # how a pair is shown in the problems' examples


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


def examples_of(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    """What makes two rows the same example, and its name: the text, or a pair of texts in either
    order (a paraphrase pair read backwards is the same question)."""
    if "text_pair" not in frame:
        return frame["text"].str.strip(), "texts"
    sides = zip(frame["text"].str.strip(), frame["text_pair"].str.strip(), strict=True)
    return pd.Series([PAIR_JOIN.join(sorted(pair)) for pair in sides], index=frame.index), "pairs"


def duplicates(frames: dict[str, pd.DataFrame], examples: int) -> list[dict]:
    """Warnings for repeated texts (or pairs) within a split, and for those that occur with different labels."""
    out = []
    for split, frame in frames.items():
        text, noun = examples_of(frame)
        repeated = text.duplicated(keep="first")
        if repeated.any():
            shown = text[repeated].drop_duplicates().head(examples).tolist()
            out.append(
                problem(
                    "warning",
                    "duplicate_texts",
                    f"{split} has {int(repeated.sum())} repeated copies of {text[repeated].nunique()} {noun}",
                    shown,
                )
            )
        labels_per_text = frame.assign(text=text).groupby("text")["label"].nunique()
        conflicting = labels_per_text[labels_per_text > 1]
        if len(conflicting):
            out.append(
                problem(
                    "warning",
                    "conflicting_labels",
                    f"{split} has {len(conflicting)} {noun} that occur with different labels",
                    conflicting.index[:examples].tolist(),
                )
            )
    return out


def leakage(frames: dict[str, pd.DataFrame], examples: int) -> list[dict]:
    """A warning for each pair of splits that share texts (or pairs, in either order): scores on the
    later one are optimistic."""
    keys = {split: examples_of(frame) for split, frame in frames.items()}
    texts = {split: set(key) for split, (key, _) in keys.items()}
    out = []
    for a, b in combinations([s for s in SPLITS if s in frames], 2):
        shared, noun = texts[a] & texts[b], keys[a][1]
        if not shared:
            continue
        if texts[a] == texts[b]:
            what = f"{a} and {b} are the same {len(shared)} {noun}: scores on {b} are optimistic"
        else:
            what = f"{len(shared)} {noun} occur in both {a} and {b}: scores on {b} overstate accuracy"
        out.append(problem("warning", "leakage", what, sorted(shared)[:examples]))
    return out
