"""Label corrections (`data.corrections_file`): a reviewed list of rows and the label each should carry,
applied to the rows as read, before validation and test are split off, so every split sees them.

The file is a CSV with the columns `file` (the input the row is in, as `label_issues.csv` names it:
the configured path, or `<dataset_name>:<split>`), `row` (its 0-based position among that input's data
rows) and `label` (the label it should carry; a label set joined by data.label_separator). A row marked
"correct as given" is listed with its own label, so the review is kept. Other columns are ignored.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from lightning.pytorch.utilities import rank_zero_info

from textcls.data.io import DataError, label_sort_key, read_table
from textcls.data.rows import Split

COLUMNS = ("file", "row", "label")


def split_sources(hp) -> dict[str, str]:
    """The name of the input each split is read from (a file as configured, or `<dataset>:<split>`)."""
    if hp.dataset_name:
        return {split: f"{hp.dataset_name}:{split}" for split in ("train", "validation", "test")}
    files = {"train": hp.train_file, "validation": hp.val_file, "test": hp.test_file}
    return {split: str(path) for split, path in files.items() if path}


def read_corrections(path: str, encoding: str = "utf-8") -> pd.DataFrame:
    """The corrections file, checked for its columns and whole-number rows."""
    table = read_table(path, encoding)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(
            f"corrections file '{path}' has no column {', '.join(missing)}: it needs file, row and label"
        )
    rows = pd.to_numeric(table["row"], errors="coerce")
    if rows.isna().any() or (rows % 1 != 0).any() or (rows < 0).any():
        bad = table["row"][rows.isna() | (rows % 1 != 0) | (rows < 0)].iloc[0]
        raise DataError(f"corrections file '{path}': row {bad!r} is not a row number (0, 1, ...)")
    return table.assign(
        row=rows.astype(int), file=table["file"].astype(str), label=table["label"].astype(str)
    )


def apply_corrections(splits: dict[str, Split], path: str | None, hp, task) -> None:
    """Apply the corrections of the file at `path` (none when None) to `splits` (split -> rows as read
    and cleaned, with their source `rows`), in place; a correction to an input that is not read, a row
    that is not there (never was, or was dropped as empty) or a label the data does not have stops with
    one line."""
    if not path:
        return
    table = read_corrections(path, hp.encoding)
    labels = _labels(table, hp, task)
    sources = {_key(name): split for split, name in split_sources(hp).items() if split in splits}
    known = set(task.names_in(pd.concat([s.labels.astype(object) for s in splits.values()])))
    known |= set(hp.labels or ())
    new = {split: rows.labels.astype(object).tolist() for split, rows in splits.items()}  # sets are tuples
    for i, correction in table.iterrows():
        where = f"corrections file '{path}' line {i + 2}"
        split = sources.get(_key(correction["file"]))
        if split is None:
            inputs = ", ".join(split_sources(hp)[s] for s in splits)
            raise DataError(f"{where}: '{correction['file']}' is not an input of this data ({inputs})")
        at = np.flatnonzero(splits[split].rows == correction["row"])
        if not len(at):
            raise DataError(
                f"{where}: {correction['file']} has no row {correction['row']}: not among its data rows as "
                "read (empty texts are dropped); the corrections were made for other data"
            )
        unknown = sorted(set(task.names_in(labels.iloc[[i]])) - known)
        if unknown:
            raise DataError(
                f"{where}: label {', '.join(map(repr, unknown))} is not a label of the data "
                f"({', '.join(sorted(known, key=label_sort_key))})"
            )
        new[split][at[0]] = labels.iloc[i]
    changed = 0
    for split, rows in splits.items():
        changed += sum(a != b for a, b in zip(rows.labels, new[split], strict=True))
        categorical = isinstance(rows.labels.dtype, pd.CategoricalDtype)
        rows.labels = pd.Series(new[split], dtype="category" if categorical else object)
    rank_zero_info(f"corrections: {changed} of the {len(table)} rows in {path} relabelled")


def _labels(table: pd.DataFrame, hp, task) -> pd.Series:
    """The corrections' labels as the task holds labels (a name, or a tuple of names for label sets)."""
    settings = {"label_column": "label", "label_columns": None, "label_separator": hp.label_separator}
    clean = pd.DataFrame({"label": table["label"].str.strip(), "row": range(len(table))})
    return task.read_labels(table, clean, "corrections", settings).reset_index(drop=True)


def _key(name: str) -> str:
    # a file named two ways (relative, absolute) is one input; a dataset split is matched by name
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name
