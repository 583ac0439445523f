"""Cleaning a split on Arrow: the columns it needs, empty texts dropped or refused, labels normalised.

Texts are tested batch by batch with pyarrow compute and never become Python strings; a label column
is dictionary-encoded batch by batch, so only its distinct values are normalised in Python.
"""

import json
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from textcls.data.io import DataError, in_memory, label_str
from textcls.data.rows import Split, rows_of

BATCH = 50_000
# what Python's str.strip() removes (pyarrow's own whitespace test differs on a few control characters)
WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


def clean_split(
    source,
    split: str,
    columns: dict[str, str],
    empty_texts: str = "drop",
    unlabelled: str = "error",
) -> tuple[Split | None, list[int]]:
    """Keep the `columns` of `source` (a `datasets.Dataset`, or a pandas frame; our name -> source
    column: `text`, optional `text_pair`, `label` and `id`), drop (or refuse) rows with an empty text
    (either text of a pair) and normalise labels to strings (a categorical series).

    Rows without a label are refused, or with `unlabelled="drop"` left out (the split is None when
    no row has a label). Returns the clean split and the source rows of the empty texts it dropped.
    """
    if isinstance(source, pd.DataFrame):
        source = in_memory(source)
    missing = [col for col in columns.values() if col not in source.column_names]
    if missing:
        raise DataError(
            f"{split} data has no column {', '.join(repr(c) for c in missing)}; its columns are "
            f"{', '.join(repr(str(c)) for c in source.column_names)}: set data.text_column / data.label_column"
        )
    texts = [name for name in ("text", "text_pair") if name in columns]  # a pair's two texts alike
    empty = np.zeros(len(source), dtype=bool)
    for name in texts:
        empty |= _blank_texts(source, columns[name], split, name)
    empty_rows = np.flatnonzero(empty).tolist()
    if empty_rows:
        what = "texts" if len(texts) == 1 else "texts or second texts"
        if empty_texts == "error":
            raise DataError(
                f"{split} data has {len(empty_rows)} empty {what} (first at row {empty_rows[0]}): "
                "remove them or set data.empty_texts=drop"
            )
        rank_zero_warn(f"{split}: dropped {len(empty_rows)} empty or whitespace-only {what}")
    keep = ~empty
    labels = None
    if "label" in columns:
        codes, names = label_codes(column_of(source, columns["label"]))
        missing_label = keep & (codes < 0)
        if missing_label.any() and unlabelled == "drop":
            if missing_label.sum() == keep.sum():
                return None, empty_rows
            rank_zero_info(f"{split}: left out {int(missing_label.sum())} rows without a label")
        elif missing_label.any():
            raise DataError(
                f"{split} data has {int(missing_label.sum())} rows without a label "
                f"(first at source row {int(np.argmax(missing_label))}): fill or remove them"
            )
        keep &= ~missing_label
        labels = pd.Series(pd.Categorical.from_codes(codes[keep], names)).cat.remove_unused_categories()
    rows = np.flatnonzero(keep)
    if not len(rows):
        raise DataError(f"{split} data has no usable rows")
    if getattr(source, "_indices", None) is not None:  # rows selected before: their table, in order
        source = source.flatten_indices()
    kept = source if len(rows) == len(source) else rows_of(source, rows)
    return Split(_named(kept, {k: v for k, v in columns.items() if k != "label"}), rows, labels), empty_rows


def column_of(ds, name: str) -> pa.ChunkedArray:
    """A column of a `datasets.Dataset` as Arrow, in its rows' order (in place unless rows were selected)."""
    if getattr(ds, "_indices", None) is None:
        return ds.data.column(name)
    return ds.select_columns([name]).with_format("arrow")[:][name]


def _batches(ds, name: str):
    column = column_of(ds, name)
    for start in range(0, len(column), BATCH):
        yield column.slice(start, BATCH)


def _blank_texts(source, column: str, split: str, name: str) -> np.ndarray:
    """Where the texts of `column` are empty or whitespace; refuses a column of numbers or other values."""
    out = []
    for batch in _batches(source, column):
        if not (pa.types.is_string(batch.type) or pa.types.is_large_string(batch.type)):
            values = python_values(batch)  # JSON of mixed types, or a column that is not text at all
            if not all(isinstance(t, str) or t is None or t != t for t in values):
                raise DataError(
                    f"{split} column '{column}' holds non-text values (e.g. numbers): "
                    f"check data.{name}_column points at the text"
                )
            batch = pa.chunked_array(
                [pa.array([t if isinstance(t, str) else None for t in values], pa.string())]
            )
        blank = pc.or_kleene(pc.is_null(batch), pc.equal(pc.utf8_length(pc.utf8_trim(batch, WHITESPACE)), 0))
        out.append(pc.fill_null(blank, True).to_numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def label_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Each row's label as a code into the normalised label names (-1: no label), and the names.

    A label is the cell as a string without outer white space (1.0 read as a number is "1"); an empty
    cell, or one of only white space, is no label.
    """
    names: dict[str, int] = {}
    codes = []
    for batch in column.chunks or [pa.array([], pa.string())]:
        try:
            encoded = pc.dictionary_encode(batch)
            indices, values = encoded.indices, encoded.dictionary.to_pylist()
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # e.g. JSON of mixed types: few rows
            values = python_values(pa.chunked_array([batch]))
            indices = pa.array(np.arange(len(values)))
        lookup = np.array([_code(v, names) for v in values] + [-1], dtype=np.int32)
        codes.append(lookup[pc.fill_null(indices, -1).to_numpy(zero_copy_only=False)])
    return (np.concatenate(codes) if codes else np.zeros(0, np.int32)), list(names)


def python_values(batch: pa.ChunkedArray) -> list:
    """The cells as Python values (a JSON column of mixed types decoded, as `datasets` reads it)."""
    if isinstance(batch.type, pa.JsonType):
        return [
            json.loads(v) if v is not None else None for v in batch.cast(batch.type.storage_type).to_pylist()
        ]
    return batch.to_pylist()


def _code(value, names: dict[str, int]) -> int:
    if value is None or (isinstance(value, float) and value != value):
        return -1
    label = label_str(value)
    return -1 if not label else names.setdefault(label, len(names))


def _named(ds, columns: dict[str, str]):
    """`ds` with the source `columns` under our names (text, text_pair, id), in that order."""
    ds = ds.select_columns(list(dict.fromkeys(columns.values())))
    firsts = {}
    for name, col in columns.items():
        if col in firsts:  # the same source column twice (e.g. the id is the text): a second copy
            ds = ds.add_column(name, column_of(ds, firsts[col] if firsts[col] in ds.column_names else col))
        else:
            firsts[col] = name
    ds = ds.rename_columns({col: name for col, name in firsts.items() if col != name})
    return ds.select_columns(list(columns))
