"""Splitting: stratified validation/test splits off the training data, and the per-split label table.

What a label is (one per text, or a set) is the task's to say (textcls/tasks/): it is passed in.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
from lightning.pytorch.utilities import rank_zero_warn

from textcls.data.io import DataError, label_sort_key


def stratified_split(
    labels: Sequence[str], fractions: dict[str, float], seed: int
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Split row indices per class so each split keeps the class proportions.

    Each class gives each split its rounded share of rows. Returns the indices of "train" and of each
    split in `fractions`, and the classes too small to be split: those whose share of a split rounds
    to no row (their rows stay in train).
    """
    rng = np.random.default_rng(seed)
    # grouped in Python: numpy compares strings without their trailing NUL characters
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    out: dict[str, list[np.ndarray]] = {"train": [], **{name: [] for name in fractions}}
    too_small = []
    for label in sorted(by_label, key=label_sort_key):
        rows = rng.permutation(np.asarray(by_label[label]))
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


def split_train(
    train: pd.DataFrame, fractions: dict[str, float], seed: int, train_sample: int | None, task
) -> dict[str, pd.DataFrame]:
    """Split validation/test rows off `train` as the task stratifies them (by class, or by every label at
    once), then sample `train_sample` training rows; `task` (textcls/tasks/) also checks what is left."""
    parts, too_small = task.split(train["label"], fractions, seed)
    if too_small:
        rank_zero_warn(
            f"classes too small to split were kept in train only: {', '.join(too_small)} "
            "(they will be missing from validation/test)"
        )
    frames = {split: train.iloc[rows].reset_index(drop=True) for split, rows in parts.items() if len(rows)}
    if train_sample and train_sample < len(frames["train"]):
        frames["train"] = frames["train"].sample(n=train_sample, random_state=seed).reset_index(drop=True)
    task.check_train(frames["train"]["label"])
    return frames


def check_eval_labels(frames: dict[str, pd.DataFrame], task) -> None:
    """Refuse validation/test labels that never occur in train: the model could never predict them."""
    known = set(task.names_in(frames["train"]["label"])) if "train" in frames else set()
    for split, frame in frames.items():
        unseen = sorted(set(task.names_in(frame["label"])) - known, key=label_sort_key)
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
