"""Splitting: stratified validation/test splits off the training data, and the per-split label table.

What a label is (one per text, or a set) is the task's to say (textcls/tasks/): it is passed in.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
from lightning.pytorch.utilities import rank_zero_warn

from textcls.data.io import DataError, label_sort_key
from textcls.data.rows import Split


def stratified_split(
    labels: Sequence[str] | pd.Series, fractions: dict[str, float], seed: int
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Split row indices per class so each split keeps the class proportions.

    Each class gives each split its rounded share of rows. Returns the indices of "train" and of each
    split in `fractions`, and the classes too small to be split: those whose share of a split rounds
    to no row (their rows stay in train). Works on label codes: a categorical series costs no string
    per row.
    """
    rng = np.random.default_rng(seed)
    codes, names = label_codes(labels if isinstance(labels, pd.Series) else pd.Series(labels, dtype=object))
    order = np.argsort(codes, kind="stable")  # each class's rows in ascending order
    groups = np.split(order, np.cumsum(np.bincount(codes, minlength=len(names)))[:-1])
    by_label = {name: rows for name, rows in zip(names, groups, strict=True) if len(rows)}
    out: dict[str, list[np.ndarray]] = {"train": [], **{name: [] for name in fractions}}
    too_small = []
    for label in sorted(by_label, key=label_sort_key):
        rows = rng.permutation(by_label[label])
        # a class too small for its share of a split (it rounds to 0 rows) stays out of that split
        takes = {name: round(len(rows) * frac) for name, frac in fractions.items() if frac > 0}
        if len(rows) - sum(takes.values()) < 1:
            too_small.append(label)
            out["train"].append(rows)
            continue
        if not all(takes.values()):
            too_small.append(label)
        start = 0
        for name, n in takes.items():
            out[name].append(rows[start : start + n])
            start += n
        out["train"].append(rows[start:])
    result = {
        name: np.sort(np.concatenate(parts)) if parts else np.array([], int) for name, parts in out.items()
    }
    return result, too_small


def label_codes(labels: pd.Series) -> tuple[np.ndarray, list]:
    """Each row's label as a small integer, and the labels: a categorical series's own codes (a byte a
    row), else codes by hashing (numpy would compare strings without their trailing NUL characters)."""
    if isinstance(labels.dtype, pd.CategoricalDtype):
        return labels.cat.codes.to_numpy(), list(labels.cat.categories)
    return pd.factorize(labels)


def split_train(
    train: Split, fractions: dict[str, float], seed: int, train_sample: int | None, task
) -> dict[str, Split]:
    """Split validation/test rows off `train` as the task stratifies them (by class, or by every label at
    once), then sample `train_sample` training rows; `task` (textcls/tasks/) also checks what is left.
    The splits are selections of `train`'s rows: their texts stay on disk."""
    parts, too_small = task.split(train.labels, fractions, seed)
    if too_small:
        rank_zero_warn(
            f"classes too small to split were kept in train only: {', '.join(too_small)} "
            "(they will be missing from validation/test)"
        )
    splits = {split: train.take(rows) for split, rows in parts.items() if len(rows)}
    if train_sample and train_sample < len(splits["train"]):
        splits["train"] = splits["train"].sample(train_sample, seed)
    task.check_train(splits["train"].labels)
    return splits


def check_eval_labels(labels: dict[str, pd.Series], task) -> None:
    """Refuse validation/test labels that never occur in train: the model could never predict them."""
    known = set(task.names_in(labels["train"])) if "train" in labels else set()
    for split, split_labels in labels.items():
        unseen = sorted(set(task.names_in(split_labels)) - known, key=label_sort_key)
        if known and unseen:
            raise DataError(
                f"labels in {split} never occur in train: {', '.join(unseen)}; fix the labels or add "
                "training examples"
            )


def distribution_table(counts: dict[str, dict[str, int]], rows: dict[str, int] | None = None) -> str:
    """Rows and share of each label per split, as aligned text; `counts` maps split -> label -> rows.

    `rows` gives each split's number of texts when a text can carry several labels (by default the
    counts' sum)."""
    names = sorted({name for split in counts.values() for name in split}, key=label_sort_key)
    totals = rows or {split: sum(c.values()) for split, c in counts.items()}
    width = max(len(n) for n in [*names, "label"])
    lines = [f"{'label':<{width}} " + " ".join(f"{s:>16}" for s in counts)]
    for name in names:
        cells = [
            f"{c.get(name, 0):>8} ({c.get(name, 0) / max(totals[s], 1):5.1%})" for s, c in counts.items()
        ]
        lines.append(f"{name:<{width}} " + " ".join(cells))
    lines.append(f"{'rows':<{width}} " + " ".join(f"{totals[s]:>16}" for s in counts))
    return "\n".join(lines)
