"""The rows to check and their folds: every training and validation row, with the file and source row
it came from, split into k folds as the task stratifies (by class, or iteratively over every label)."""

import numpy as np
import pandas as pd

from textcls.label_issues.errors import LabelIssuesError


def pooled_rows(data) -> pd.DataFrame:
    """The training and validation rows of `data` (a TextClassificationData) in one frame: `text`
    (`text_pair`), `label`, (`id`), and `file` and `row`, where each row sits in its input.

    `row` is the 0-based position among the data rows of that file (the data module counts rows before
    it drops empty texts and splits validation off train, so it survives both).
    """
    parts = []
    for split in ("train", "validation"):
        if split not in data.frames:
            continue
        frame = data.frames[split].copy()
        frame["file"] = source_name(data, split)
        parts.append(frame)
    if not parts:
        raise LabelIssuesError("no training data to check: set data.train_file or data.dataset_name")
    return pd.concat(parts, ignore_index=True)


def source_name(data, split: str) -> str:
    """The input a split's rows come from: its own file (or dataset split), else the training one it was
    split off."""
    hp = data.hparams
    if hp.dataset_name:
        own = split in data.hub_frames and split not in data.unlabelled_splits
        return f"{hp.dataset_name}:{split if own else 'train'}"
    return str(hp.val_file if split == "validation" and hp.val_file else hp.train_file)


def assign_folds(labels: pd.Series, folds: int, seed: int, multi_label: bool) -> np.ndarray:
    """The fold (0..folds-1) of each row, stratified: scikit-learn's StratifiedKFold for one label per
    text, iterative stratification (`iterative-stratification`) over every label for label sets."""
    from sklearn.model_selection import StratifiedKFold

    if len(labels) < folds:
        raise LabelIssuesError(f"--folds {folds} is more than the {len(labels)} rows to check")
    x = np.zeros(len(labels))
    if multi_label:
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        from textcls.data.multilabel import multi_hot, names_of

        y = multi_hot(labels.tolist(), names_of(labels.tolist())).astype(int)
        splitter = MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        y = labels.to_numpy()
        # a class with fewer rows than folds cannot be in every fold: scikit-learn warns, and it stays in some
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    out = np.full(len(labels), -1)
    for k, (_, held_out) in enumerate(splitter.split(x, y)):
        out[held_out] = k
    return out
