"""Multi-label data: label sets read from one joined column or from 0/1 columns, multi-hot encoding,
and iterative stratification for the splits textcls makes itself.

A text's labels are kept as a sorted tuple of label names in the frame's `label` column (an empty
tuple is "no label", which is allowed), so the rest of the data pipeline can treat a label set like a
single label: count it, compare it across splits, look it up.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from textcls.data.io import DataError, label_sort_key

LabelSet = tuple[str, ...]
_TRUE, _FALSE = {"1", "1.0", "true"}, {"0", "0.0", "false", ""}


def read_label_sets(
    frame: pd.DataFrame,
    split: str,
    label_column: str,
    label_columns: Sequence[str] | None,
    separator: str,
) -> pd.Series:
    """Each row's labels as a sorted tuple of names, from `label_columns` (one 0/1 column per label)
    or from `label_column` (names joined by `separator`, or a list of names as in hub datasets)."""
    if label_columns:
        return _from_indicator_columns(frame, split, list(label_columns))
    if label_column not in frame.columns:
        raise DataError(
            f"{split} data has no label column '{label_column}'; its columns are "
            f"{', '.join(repr(str(c)) for c in frame.columns)}: set data.label_column, or data.label_columns "
            "for one 0/1 column per label"
        )
    return frame[label_column].map(lambda cell: _split_cell(cell, separator)).reset_index(drop=True)


def _split_cell(cell, separator: str) -> LabelSet:
    if cell is None or (isinstance(cell, float) and cell != cell):
        return ()
    if isinstance(cell, (list, tuple, np.ndarray)):
        names = [str(v).strip() for v in cell]
    else:
        names = str(cell).split(separator)
    return tuple(sorted({n.strip() for n in names if n.strip()}, key=label_sort_key))


def _from_indicator_columns(frame: pd.DataFrame, split: str, columns: list[str]) -> pd.Series:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{split} data has no column {', '.join(repr(c) for c in missing)} of data.label_columns; its "
            f"columns are {', '.join(repr(str(c)) for c in frame.columns)}"
        )
    flags = np.zeros((len(frame), len(columns)), dtype=bool)
    for j, column in enumerate(columns):
        cells = frame[column].map(lambda v: str(v).strip().lower() if v is not None else "")
        bad = ~cells.isin(_TRUE | _FALSE)
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise DataError(
                f"{split} column '{column}' holds {frame[column].iloc[row]!r} at row {row}: each of "
                "data.label_columns must hold 0 or 1 (empty counts as 0)"
            )
        flags[:, j] = cells.isin(_TRUE).to_numpy()
    names = sorted(columns, key=label_sort_key)
    order = [columns.index(n) for n in names]
    return pd.Series([tuple(names[k] for k in np.flatnonzero(row)) for row in flags[:, order]])


def multi_hot(label_sets: Sequence[LabelSet], label_names: list[str]) -> np.ndarray:
    """A (texts, labels) float32 matrix with 1 where the text carries the label."""
    index = {name: i for i, name in enumerate(label_names)}
    out = np.zeros((len(label_sets), len(label_names)), dtype=np.float32)
    for row, labels in enumerate(label_sets):
        out[row, [index[name] for name in labels]] = 1.0
    return out


def names_of(label_sets: Sequence[LabelSet]) -> list[str]:
    """Every label that occurs, sorted."""
    return sorted({name for labels in label_sets for name in labels}, key=label_sort_key)


def positives(label_sets: Sequence[LabelSet], label_names: list[str]) -> list[int]:
    """Texts carrying each label, in `label_names` order."""
    return multi_hot(label_sets, label_names).sum(0).astype(int).tolist()


def iterative_split(
    label_sets: Sequence[LabelSet], fractions: dict[str, float], seed: int
) -> dict[str, np.ndarray]:
    """Row indices of "train" and of each split in `fractions`, stratified over every label at once.

    Iterative stratification (Sechidis et al. 2011, with the second-order refinement of Szymanski and
    Kajdanowicz 2017) from the `iterative-stratification` package: a random or per-label split would
    leave rare labels out of validation. The splits are taken one after the other from what remains.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    matrix = multi_hot(label_sets, names_of(label_sets)).astype(int)
    remaining = np.arange(len(label_sets))
    out, left = {}, 1.0
    for name, fraction in fractions.items():
        share = fraction / left
        if fraction <= 0 or round(len(remaining) * share) < 1:
            continue
        splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=share, random_state=seed)
        keep, take = next(splitter.split(np.zeros(len(remaining)), matrix[remaining]))
        out[name] = np.sort(remaining[take])
        remaining, left = remaining[keep], left - fraction
    out["train"] = np.sort(remaining)
    return out
