"""Reading data: files and hub datasets into frames of text and label, with labels normalised."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

SPLITS = ("train", "validation", "test")


class DataError(ValueError):
    """Input data that cannot be used as given; the message says what is wrong and how to fix it."""


def read_table(path: str, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV, TSV, JSONL/JSON, Parquet file or a `datasets.save_to_disk` folder into a frame of strings."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"data file '{path}' does not exist: check the path (relative to {Path.cwd()})")
    if p.is_dir():
        return _read_saved_dataset(p)
    suffix = p.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            frame = pd.read_csv(
                p, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False, encoding=encoding
            )
        elif suffix == ".json" and _starts_with_array(p, encoding):
            frame = _read_json_array(p, encoding)
        elif suffix in (".jsonl", ".json"):
            frame = _read_jsonl(p, encoding)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        else:
            raise DataError(
                f"'{path}' has an unknown extension '{suffix}': use .csv, .tsv, .jsonl, .json or .parquet"
            )
    except UnicodeDecodeError as err:
        raise DataError(
            f"'{path}' is not valid {encoding} text ({err.reason} at byte {err.start}): "
            "set --data.encoding to the file's encoding, e.g. latin-1 or cp1252"
        ) from err
    except pd.errors.EmptyDataError as err:
        raise DataError(f"'{path}' is empty") from err
    except pd.errors.ParserError as err:
        raise DataError(f"'{path}' is not well-formed {suffix[1:].upper()}: {str(err).strip()}") from err
    except DataError:
        raise
    except LookupError as err:
        raise DataError(f"unknown data.encoding '{encoding}': use e.g. utf-8, latin-1 or cp1252") from err
    except OSError as err:
        raise DataError(f"cannot read '{path}': {err.strerror or err}") from err
    except ValueError as err:  # e.g. pyarrow.ArrowInvalid: not a Parquet file
        raise DataError(f"'{path}' cannot be read as {suffix[1:].upper()}: {err}") from err
    if frame.empty:
        raise DataError(f"'{path}' has no data rows")
    return frame


def _read_jsonl(path: Path, encoding: str) -> pd.DataFrame:
    rows = []
    with open(path, encoding=encoding) as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(
                    f"'{path}' line {line_no} is not valid JSON ({err.msg}): JSONL needs one JSON object per line"
                ) from err
            if not isinstance(rows[-1], dict):
                raise DataError(f"'{path}' line {line_no} is not a JSON object")
    return pd.DataFrame(rows)


def _starts_with_array(path: Path, encoding: str) -> bool:
    with open(path, encoding=encoding) as f:
        while chunk := f.read(4096):
            if chunk.strip():
                return chunk.lstrip().lstrip("\ufeff").startswith("[")
    return False


def _read_json_array(path: Path, encoding: str) -> pd.DataFrame:
    """A .json file holding one array of objects, one per row."""
    with open(path, encoding=encoding) as f:
        try:
            rows = json.load(f)
        except json.JSONDecodeError as err:
            raise DataError(f"'{path}' is not valid JSON ({err.msg} at line {err.lineno})") from err
    bad = next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
    if bad is not None:
        raise DataError(f"'{path}' item {bad} is not a JSON object: the array must hold one object per row")
    return pd.DataFrame(rows)


def _read_saved_dataset(path: Path) -> pd.DataFrame:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise DataError(
            f"'{path}' is a folder but not a saved dataset: point at a data file or a `save_to_disk` folder"
        ) from err
    if isinstance(loaded, datasets.DatasetDict):
        raise DataError(f"'{path}' holds several splits ({', '.join(loaded)}): point at one split's folder")
    return loaded.to_pandas()


def load_hub_dataset(name: str, config_name: str | None, label_column: str) -> dict[str, pd.DataFrame]:
    """Load every split of a Hugging Face dataset (by hub name or `save_to_disk` folder) as frames.

    Integer labels of a `ClassLabel` column become their names ("World", not 0), and lists of them
    (multi-label datasets) lists of names.
    """
    import datasets

    try:
        if Path(name).expanduser().is_dir():
            loaded = datasets.load_from_disk(str(Path(name).expanduser()))
        else:
            loaded = datasets.load_dataset(name, config_name)
    except (FileNotFoundError, ConnectionError) as err:  # also the hub's DatasetNotFoundError; offline
        raise DataError(
            f"dataset '{name}' was not found ({' '.join(str(err).split())}): check data.dataset_name, "
            "point it at a `save_to_disk` folder, or run with network access to the Hugging Face hub"
        ) from err
    if isinstance(loaded, datasets.Dataset):
        loaded = {"train": loaded}
    frames = {}
    for split, ds in loaded.items():
        frame = ds.to_pandas()
        feature = ds.features.get(label_column)
        if isinstance(feature, datasets.ClassLabel):
            # -1 marks an unlabelled row (e.g. GLUE test sets)
            frame[label_column] = [feature.int2str(int(v)) if v >= 0 else None for v in frame[label_column]]
        elif isinstance(getattr(feature, "feature", None), datasets.ClassLabel):  # multi-label: lists of ids
            names = feature.feature.int2str
            frame[label_column] = [[names(int(v)) for v in ids] for ids in frame[label_column]]
        frames[split] = frame
    return frames


def label_sort_key(label: str) -> tuple:
    """Integers sort numerically ("2" before "10"), then names alphabetically."""
    try:
        return (0, int(label), "")
    except ValueError:
        return (1, 0, label)


def _label_str(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def clean_split(
    frame: pd.DataFrame,
    split: str,
    columns: dict[str, str],
    empty_texts: str = "drop",
    unlabelled: str = "error",
) -> tuple[pd.DataFrame | None, list[int]]:
    """Keep the `columns` (our name -> source column: `text`, optional `text_pair`, `label` and `id`), add
    the source `row` number, drop (or refuse) rows with an empty text (either text of a pair) and
    normalise labels to strings.

    Rows without a label are refused, or with `unlabelled="drop"` left out (the frame is None when
    no row has a label). Returns the clean frame and the source rows of the empty texts it dropped.
    """
    missing = [col for col in columns.values() if col not in frame.columns]
    if missing:
        raise DataError(
            f"{split} data has no column {', '.join(repr(c) for c in missing)}; its columns are "
            f"{', '.join(repr(str(c)) for c in frame.columns)}: set data.text_column / data.label_column"
        )
    out = pd.DataFrame({name: frame[col] for name, col in columns.items()}).reset_index(drop=True)
    out["row"] = np.arange(len(out))  # the row number in the source, for reports and leakage checks
    texts = [name for name in ("text", "text_pair") if name in columns]  # a pair's two texts alike
    for name in texts:
        if not out[name].map(lambda t: isinstance(t, str) or t is None or t != t).all():
            raise DataError(
                f"{split} column '{columns[name]}' holds non-text values (e.g. numbers): "
                f"check data.{name}_column points at the text"
            )
    empty = np.logical_or.reduce([out[n].isna() | (out[n].fillna("").str.strip() == "") for n in texts])
    empty = pd.Series(empty, index=out.index)
    empty_rows = out.loc[empty, "row"].tolist()
    if empty.any():
        what = "texts" if len(texts) == 1 else "texts or second texts"
        if empty_texts == "error":
            raise DataError(
                f"{split} data has {int(empty.sum())} empty {what} (first at row {int(empty.idxmax())}): "
                "remove them or set data.empty_texts=drop"
            )
        rank_zero_warn(f"{split}: dropped {int(empty.sum())} empty or whitespace-only {what}")
        out = out[~empty].reset_index(drop=True)
    if "label" in columns:
        missing_label = out["label"].isna() | (out["label"].astype(str).str.strip() == "")
        if missing_label.any() and unlabelled == "drop":
            if missing_label.all():
                return None, empty_rows
            rank_zero_info(f"{split}: left out {int(missing_label.sum())} rows without a label")
            out = out[~missing_label].reset_index(drop=True)
        elif missing_label.any():
            raise DataError(
                f"{split} data has {int(missing_label.sum())} rows without a label "
                f"(first at source row {int(out.loc[missing_label.idxmax(), 'row'])}): fill or remove them"
            )
        out["label"] = out["label"].map(_label_str)
    if out.empty:
        raise DataError(f"{split} data has no usable rows")
    return out, empty_rows
