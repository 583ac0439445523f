"""Reading data: files and hub datasets as memory-mapped Arrow (`datasets`), and the label names.

`read_dataset` is what the data module reads: the rows stay in Arrow files on disk (the `datasets`
cache under textcls's cache folder, or the file itself for Parquet and saved datasets), so a file
larger than memory can be read. `read_table` is the reader of small inputs as a pandas frame; it also
says, in one line, what is wrong with a file the Arrow readers refuse.
"""

import json
from pathlib import Path

import pandas as pd

SPLITS = ("train", "validation", "test")
PROGRESS_BYTES = 100 << 20  # `datasets` shows its progress bar when reading a larger file
BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class DataError(ValueError):
    """Input data that cannot be used as given; the message says what is wrong and how to fix it."""


def read_dataset(path: str, encoding: str = "utf-8", cache_dir: str | None = None):
    """Read a CSV, TSV, JSONL/JSON, Parquet file or a `datasets.save_to_disk` folder as a memory-mapped
    `datasets.Dataset` (CSV and TSV cells as strings, as `read_table` reads them).

    A file that `datasets` cannot read, or reads differently from `read_table` (a JSONL line that is not
    one object), is read by `read_table`, which says in one line what is wrong, or reads it into memory.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        return _saved_dataset(p)
    loaded = _load_arrow(p, encoding, cache_dir) if p.is_file() and p.suffix.lower() in BUILDERS else None
    if loaded is None:  # read_table names the problem and its fix in one line, or reads the file
        return in_memory(read_table(path, encoding))
    if not len(loaded):
        raise DataError(f"'{path}' has no data rows")
    return loaded


def _load_arrow(path: Path, encoding: str, cache_dir: str | None):
    """The file read by `datasets` into an Arrow file in the cache, or None where `read_table` should
    read it (a problem found, or no column read)."""
    import datasets

    suffix = path.suffix.lower()
    try:
        options = _builder_options(path, suffix, encoding)
    except (ValueError, OSError, LookupError, pd.errors.ParserError):  # e.g. an empty file, not UTF-8
        return None
    was_enabled = datasets.is_progress_bar_enabled()
    if path.stat().st_size < PROGRESS_BYTES:  # a bar for a file read in a few seconds is noise
        datasets.disable_progress_bars()
    try:
        loaded = datasets.load_dataset(
            BUILDERS[suffix],
            data_files=str(path.resolve()),
            split="train",
            cache_dir=str(cache_dir or _datasets_cache()),
            **options,
        )
    except (datasets.exceptions.DatasetGenerationError, ValueError, OSError):
        return None
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
    return loaded if loaded.column_names else None


def _datasets_cache() -> Path:
    from textcls.data.tokens import default_cache_dir

    return default_cache_dir() / "datasets"


def _builder_options(path: Path, suffix: str, encoding: str) -> dict:
    """What the `datasets` reader of this file needs to read it as `read_table` does; raises what a
    cheap look at the file finds wrong (read_table then says it in one line)."""
    import datasets

    if suffix in (".csv", ".tsv"):
        sep = "\t" if suffix == ".tsv" else ","
        header = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding=encoding, nrows=0)
        strings = datasets.Features({str(c): datasets.Value("string") for c in header.columns})
        return {"sep": sep, "features": strings, "keep_default_na": False, "encoding": encoding}
    if suffix in (".jsonl", ".json"):
        if _starts_with_array(path, encoding):
            _read_json_array(path, encoding)  # the checks of each item, with their messages
        else:
            _check_json_lines(path, encoding)
        return {"encoding": encoding}
    return {}


def _check_json_lines(path: Path, encoding: str) -> None:
    """Refuse a line that is not one JSON object (pyarrow would skip, split or wrap some)."""
    with open(path, encoding=encoding) as f:
        for line in f:
            if line.strip() and not isinstance(json.loads(line), dict):
                raise ValueError("a line is not a JSON object")


def in_memory(frame: pd.DataFrame):
    """A frame that `read_table` read as a `datasets.Dataset` (columns mixing types as `Json`)."""
    import datasets

    try:
        return datasets.Dataset.from_pandas(frame, preserve_index=False)
    except (TypeError, ValueError):  # pyarrow's ArrowTypeError/ArrowInvalid: a column of mixed types
        return datasets.Dataset.from_list(frame.astype(object).where(frame.notna(), None).to_dict("records"))


def read_table(path: str, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV, TSV, JSONL/JSON, Parquet file or a `datasets.save_to_disk` folder into a frame of strings."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"data file '{path}' does not exist: check the path (relative to {Path.cwd()})")
    if p.is_dir():
        return _saved_dataset(p).to_pandas()
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


def _saved_dataset(path: Path):
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise DataError(
            f"'{path}' is a folder but not a saved dataset: point at a data file or a `save_to_disk` folder"
        ) from err
    if isinstance(loaded, datasets.DatasetDict):
        raise DataError(f"'{path}' holds several splits ({', '.join(loaded)}): point at one split's folder")
    return loaded


def load_hub_dataset(
    name: str, config_name: str | None, label_column: str, cache_dir: str | None = None
) -> dict:
    """Load every split of a Hugging Face dataset (by hub name or `save_to_disk` folder) as
    memory-mapped `datasets.Dataset`s.

    Integer labels of a `ClassLabel` column become their names ("World", not 0), and lists of them
    (multi-label datasets) lists of names.
    """
    import datasets

    try:
        if Path(name).expanduser().is_dir():
            loaded = datasets.load_from_disk(str(Path(name).expanduser()))
        else:
            loaded = datasets.load_dataset(name, config_name, cache_dir=cache_dir)
    except (FileNotFoundError, ConnectionError) as err:  # also the hub's DatasetNotFoundError; offline
        raise DataError(
            f"dataset '{name}' was not found ({' '.join(str(err).split())}): check data.dataset_name, "
            "point it at a `save_to_disk` folder, or run with network access to the Hugging Face hub"
        ) from err
    if isinstance(loaded, datasets.Dataset):
        loaded = {"train": loaded}
    return {split: _label_names_of(ds, label_column) for split, ds in loaded.items()}


def _label_names_of(ds, label_column: str):
    """`ds` with the ids of a `ClassLabel` column (or of lists of them) replaced by their names."""
    import datasets

    feature = ds.features.get(label_column)
    if isinstance(feature, datasets.ClassLabel):
        names, value = feature.names, datasets.Value("string")

        # -1 marks an unlabelled row (e.g. GLUE test sets)
        def name_of(ids):  # noqa: E306
            return {label_column: [names[i] if i is not None and i >= 0 else None for i in ids]}
    elif isinstance(getattr(feature, "feature", None), datasets.ClassLabel):  # multi-label: lists of ids
        names, value = feature.feature.names, datasets.List(datasets.Value("string"))

        def name_of(ids):
            return {label_column: [[names[i] for i in row] for row in ids]}
    else:
        return ds
    features = ds.features.copy()
    features[label_column] = value
    return ds.map(name_of, input_columns=label_column, batched=True, features=features)


def label_sort_key(label: str) -> tuple:
    """Integers sort numerically ("2" before "10"), then names alphabetically."""
    try:
        return (0, int(label), "")
    except ValueError:
        return (1, 0, label)


def label_str(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()
