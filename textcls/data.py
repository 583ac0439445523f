"""Reading, label encoding, splitting, tokenization and batching: the LightningDataModule."""

import hashlib
import itertools
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence, Sized
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler

from textcls.backbone import load_config, load_tokenizer, position_limit

SPLITS = ("train", "validation", "test")
CACHE_VERSION = "1"  # bump when the cached encoding changes shape


class DataError(ValueError):
    """Input data that cannot be used as given; the message says what is wrong and how to fix it."""


# ----------------------------------------------------------------------------- reading


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

    Integer labels of a `ClassLabel` column become their names ("World", not 0).
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
        frames[split] = frame
    return frames


def label_sort_key(label: str) -> tuple:
    """Integers sort numerically ("2" before "10"), then names alphabetically."""
    try:
        return (0, int(label), "")
    except ValueError:
        return (1, 0, label)


# ----------------------------------------------------------------------------- splitting


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


# ----------------------------------------------------------------------------- batching


class EncodedTexts(Dataset):
    """Token ids of many texts in one flat array (a few bytes a token, not a Python list per text)."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, labels: np.ndarray | None):
        self.tokens, self.offsets, self.labels = tokens, offsets, labels
        self.lengths = np.diff(offsets)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> dict:
        item = {"idx": i, "input_ids": self.tokens[self.offsets[i] : self.offsets[i + 1]]}
        if self.labels is not None:
            item["label"] = int(self.labels[i])
        return item


def length_buckets(max_length: int, smallest: int = 16) -> list[int]:
    """Padded widths for compiled models: powers of two from `smallest`, then `max_length` itself."""
    buckets = [smallest]
    while buckets[-1] * 2 < max_length:
        buckets.append(buckets[-1] * 2)
    return sorted({b for b in buckets if b < max_length} | {max_length})


class Collator:
    """Pads each batch to its own longest text (rounded up to `pad_to_multiple_of`), or to the
    smallest of `buckets` that fits it, so that a compiled model sees few distinct shapes."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int = 1, buckets: Sequence[int] | None = None):
        self.pad_token_id, self.pad_to_multiple_of = pad_token_id, pad_to_multiple_of
        self.buckets = sorted(buckets) if buckets else None

    def width(self, longest: int) -> int:
        if self.buckets:
            return next((b for b in self.buckets if b >= longest), longest)
        return math.ceil(longest / self.pad_to_multiple_of) * self.pad_to_multiple_of

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        width = self.width(max(len(item["input_ids"]) for item in items))
        input_ids = torch.full((len(items), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            input_ids[row, :n] = torch.from_numpy(item["input_ids"].astype(np.int64))
            attention_mask[row, :n] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        batch["idx"] = torch.tensor([item["idx"] for item in items])
        if "label" in items[0]:
            batch["labels"] = torch.tensor([item["label"] for item in items])
        return batch


class LengthGroupedBatchSampler(BatchSampler):
    """Batches of texts of similar length, in random order.

    Takes indices from `sampler` (random, or Lightning's distributed wrapper of it), sorts each window
    of `batch_size * window_batches` indices by length, cuts the window into batches and shuffles the
    batches, so padding is small but training stays stochastic.
    """

    def __init__(
        self,
        sampler: Sampler[int],
        batch_size: int,
        drop_last: bool,
        lengths: Sequence[int],
        window_batches: int = 50,
        seed: int = 0,
    ):
        super().__init__(sampler, batch_size, drop_last)
        self.lengths, self.window_batches, self.seed = lengths, window_batches, seed
        self.epoch = 0

    def __iter__(self) -> Iterator[list[int]]:
        # the epoch Lightning gives the sampler, so a resumed run draws the same order
        epoch = getattr(self.sampler, "epoch", self.epoch)
        rng = np.random.default_rng((self.seed, epoch))
        self.epoch += 1
        indices = list(self.sampler)
        window = self.batch_size * self.window_batches
        batches = []
        for start in range(0, len(indices), window):
            chunk = sorted(indices[start : start + window], key=lambda i: self.lengths[i])
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        for i in rng.permutation(len(batches)):
            yield batches[i]


class SeededRandomSampler(RandomSampler):
    """A random order drawn from the seed and the epoch alone (Lightning sets the epoch), so that a
    resumed run, or a second run with the same seed, sees the same batches."""

    def __init__(self, data_source: Sized, seed: int = 0):
        super().__init__(data_source, generator=torch.Generator())
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        self.generator.manual_seed(self.seed * 1_000_003 + self.epoch)
        return super().__iter__()


class ResumableDataLoader(DataLoader):
    """A training DataLoader that Lightning can resume mid-epoch.

    Each pass starts after the batches of the current epoch already done (read from
    `batches_done`; 0 except in a run resumed mid-epoch), so the resumed run continues with the
    batches an uninterrupted run would have seen next. The count is read when the first batch is
    taken, not when the iterator is made: Lightning makes one before it restores the checkpoint.

    Under DDP Lightning re-creates the loader around a DistributedSampler of its own, seeded by
    `seed_everything`; `seed` (data.seed) becomes that sampler's seed, so one seed sets the order.
    """

    def __init__(
        self, *args, batches_done: Callable[[], int] | None = None, seed: int | None = None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.batches_done = batches_done
        for sampler in (self.sampler, getattr(self.batch_sampler, "sampler", None)):
            if seed is not None and isinstance(sampler, DistributedSampler):
                sampler.seed = seed

    def __iter__(self) -> Iterator:
        skip = self.batches_done() if self.batches_done else 0
        yield from itertools.islice(super().__iter__(), skip, None)


class SortedSampler(Sampler[int]):
    """Longest texts first, so evaluation batches carry little padding; outputs are reordered by `idx`."""

    def __init__(self, lengths: Sequence[int]):
        self.order = np.argsort(-np.asarray(lengths), kind="stable").tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


# ----------------------------------------------------------------------------- the data module


class TextClassificationData(L.LightningDataModule):
    """Text classification data: files or a Hugging Face dataset, split, tokenized and batched.

    Args:
        train_file: Training data (.csv, .tsv, .jsonl, .parquet, or a `datasets.save_to_disk` folder).
        val_file: Validation data; when not given, `val_fraction` of the training data is split off.
        test_file: Test data; when not given, `test_fraction` of the training data is split off.
        predict_file: Texts to classify with `predict`; the label column is not needed.
        dataset_name: A Hugging Face dataset (hub name or `save_to_disk` folder) instead of files;
            its train/validation/test splits are used where they exist. Rows without a label (-1, as
            in GLUE test sets) are left out of fit/validate/test with a note, and a split without
            any label is left out entirely (then `*_fraction` splits that data off train).
        dataset_config_name: The hub dataset's configuration name, if it has several.
        text_column: Column holding the text.
        label_column: Column holding the label (strings or integers).
        id_column: Optional column copied to the predictions instead of the text.
        labels: The label names in order. By default the sorted labels of the training split; a
            checkpoint supplies its own so that `test` and `predict` use the labels it was trained on.
        val_fraction: Share of each class split off for validation when there is no `val_file`.
        test_fraction: Share of each class split off for testing when there is no `test_file`.
        train_sample: Train on a random sample of this many training rows (all rows when None).
        seed: Seed of the splits, the sample and the batch order (also under DDP).
        model_name_or_path: The backbone whose tokenizer encodes the texts (linked to the model's).
        max_length: Texts are truncated to this many tokens; at most the backbone's position limit.
        batch_size: Training batch size.
        eval_batch_size: Batch size for validation, test and predict (default: 2 x batch_size).
        group_by_length: Form training batches from texts of similar length (less padding, faster).
        bucket_lengths: Pad batches to a few fixed lengths (powers of two up to max_length) instead of
            their longest text (linked to model.compile).
        num_workers: DataLoader worker processes.
        encoding: Text encoding of the data files.
        empty_texts: What to do with empty or whitespace-only texts: "drop" (with a count) or "error".
        cache_dir: Where tokenized splits are cached (default: ~/.cache/textcls).
        trust_remote_code: Allow the tokenizer to run code from its repository (linked to the model's).
        predict_split: With `dataset_name` and no `predict_file`: the split that `predict` classifies
            (labels are not needed, so an unlabelled test split can be used).
    """

    def __init__(
        self,
        train_file: str | None = None,
        val_file: str | None = None,
        test_file: str | None = None,
        predict_file: str | None = None,
        dataset_name: str | None = None,
        dataset_config_name: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        id_column: str | None = None,
        labels: list[str] | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        train_sample: int | None = None,
        seed: int = 42,
        model_name_or_path: str = "distilbert-base-uncased",
        max_length: int = 128,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        group_by_length: bool = True,
        bucket_lengths: bool = False,
        num_workers: int = 0,
        encoding: str = "utf-8",
        empty_texts: str = "drop",
        cache_dir: str | None = None,
        trust_remote_code: bool = False,
        predict_split: str = "test",
    ):
        super().__init__()
        self.save_hyperparameters()
        if empty_texts not in ("drop", "error"):
            raise DataError(f"data.empty_texts must be 'drop' or 'error', got '{empty_texts}'")
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise DataError(
                f"data.val_fraction ({val_fraction}) and data.test_fraction ({test_fraction}) must each be in "
                "[0, 1) and add up to less than 1"
            )
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise DataError("data.batch_size and data.eval_batch_size must be at least 1")
        if max_length < 2:
            raise DataError(f"data.max_length must be at least 2, got {max_length}")
        self._frames: dict[str, pd.DataFrame] | None = None
        self._split_frames: dict[str, pd.DataFrame] | None = None
        self._hub_frames: dict[str, pd.DataFrame] | None = None
        self._tokenizer = None
        self._token_limit: int | None | bool = False  # not looked up yet
        self.unlabelled_splits: list[str] = []  # dataset splits left out for having no labels
        self.encoded: dict[str, EncodedTexts] = {}
        self.empty_rows: dict[str, list[int]] = {}  # source rows of dropped empty texts, for the data check

    # ------------------------------------------------------------------ raw splits

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.hparams.model_name_or_path, self.hparams.trust_remote_code)
        return self._tokenizer

    def check_max_length(self) -> None:
        """Refuse a max_length beyond the backbone's position limit (it would fail mid-run)."""
        limit = self.token_limit
        if limit is not None and self.hparams.max_length > limit:
            raise DataError(
                f"data.max_length {self.hparams.max_length} is more than backbone "
                f"'{self.hparams.model_name_or_path}' takes ({limit} tokens): set data.max_length to at most {limit}"
            )

    @property
    def token_limit(self) -> int | None:
        """The most tokens a text may have for the backbone (None when it sets no limit)."""
        if self._token_limit is False:
            config = load_config(self.hparams.model_name_or_path, self.hparams.trust_remote_code)
            self._token_limit = position_limit(self.tokenizer, config)
        return self._token_limit

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """The labelled splits as frames with columns `text`, `label` (and `id`), read once."""
        if self._frames is None:
            frames = self.split_frames
            if not self.hparams.labels:
                self._check_eval_labels(frames)
            self._frames = frames
        return self._frames

    @property
    def split_frames(self) -> dict[str, pd.DataFrame]:
        """The splits as read and split, before the check that their labels occur in train (the data
        check reports that itself); read once per process."""
        if self._split_frames is None:
            self._split_frames = self._read_splits()
        return self._split_frames

    @property
    def label_names(self) -> list[str]:
        """Label names in class-index order: given, or the sorted labels of the training split."""
        if self.hparams.labels:
            return list(self.hparams.labels)
        if "train" not in self.frames:
            raise DataError(
                "no training data to take the label names from: set data.train_file or data.labels"
            )
        return sorted(self.frames["train"]["label"].unique().tolist(), key=label_sort_key)

    def hub_frames(self) -> dict[str, pd.DataFrame]:
        """The splits of `dataset_name` as loaded (validation under that name), loaded once."""
        if self._hub_frames is None:
            hp = self.hparams
            sources = load_hub_dataset(hp.dataset_name, hp.dataset_config_name, hp.label_column)
            self._hub_frames = {
                "validation" if k in ("valid", "dev", "val") else k: v for k, v in sources.items()
            }
        return self._hub_frames

    def _read_splits(self) -> dict[str, pd.DataFrame]:
        hp = self.hparams
        if hp.dataset_name:
            sources = self.hub_frames()
        else:
            files = {"train": hp.train_file, "validation": hp.val_file, "test": hp.test_file}
            sources = {split: read_table(path, hp.encoding) for split, path in files.items() if path}
        frames = {}
        for split, frame in sources.items():
            if split not in SPLITS:
                continue
            # a dataset marks unlabelled rows itself (GLUE test sets): they are for predict only
            cleaned = self._clean(frame, split, unlabelled="drop" if hp.dataset_name else "error")
            if cleaned is None:
                self.unlabelled_splits.append(split)
                rank_zero_info(
                    f"{split}: the dataset's {split} split has no labels; left out of fit, validate and test "
                    f"(predict can classify it: data.predict_split={split})"
                )
            else:
                frames[split] = cleaned
        if "train" in frames:
            fractions = {
                split: frac
                for split, frac in (("validation", hp.val_fraction), ("test", hp.test_fraction))
                if split not in frames
            }
            frames.update(self._split_train(frames.pop("train"), fractions))
        return frames

    def _clean(
        self, frame: pd.DataFrame, split: str, need_label: bool = True, unlabelled: str = "error"
    ) -> pd.DataFrame | None:
        """Columns renamed to text/label/id, empty texts dropped, labels as strings. Rows without a
        label are refused, or with `unlabelled="drop"` left out (None when no row has a label)."""
        hp = self.hparams
        columns = {"text": hp.text_column}
        if need_label:
            columns["label"] = hp.label_column
        if hp.id_column:
            columns["id"] = hp.id_column
        missing = [col for col in columns.values() if col not in frame.columns]
        if missing:
            raise DataError(
                f"{split} data has no column {', '.join(repr(c) for c in missing)}; its columns are "
                f"{', '.join(repr(str(c)) for c in frame.columns)}: set data.text_column / data.label_column"
            )
        out = pd.DataFrame({name: frame[col] for name, col in columns.items()}).reset_index(drop=True)
        out["row"] = np.arange(len(out))  # the row number in the source, for reports and leakage checks
        if not out["text"].map(lambda t: isinstance(t, str) or t is None or t != t).all():
            raise DataError(
                f"{split} column '{hp.text_column}' holds non-text values (e.g. numbers): "
                "check data.text_column points at the text"
            )
        empty = out["text"].isna() | (out["text"].fillna("").str.strip() == "")
        if empty.any():
            if hp.empty_texts == "error":
                raise DataError(
                    f"{split} data has {int(empty.sum())} empty texts (first at row {int(empty.idxmax())}): "
                    "remove them or set data.empty_texts=drop"
                )
            rank_zero_warn(f"{split}: dropped {int(empty.sum())} empty or whitespace-only texts")
            self.empty_rows[split] = out.loc[empty, "row"].tolist()
            out = out[~empty].reset_index(drop=True)
        if need_label:
            missing_label = out["label"].isna() | (out["label"].astype(str).str.strip() == "")
            if missing_label.any() and unlabelled == "drop":
                if missing_label.all():
                    return None
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
        return out

    def _split_train(self, train: pd.DataFrame, fractions: dict[str, float]) -> dict[str, pd.DataFrame]:
        hp = self.hparams
        parts, too_small = stratified_split(train["label"].tolist(), fractions, hp.seed)
        if too_small:
            rank_zero_warn(
                f"classes too small to split were kept in train only: {', '.join(too_small)} "
                "(they will be missing from validation/test)"
            )
        frames = {
            split: train.iloc[rows].reset_index(drop=True) for split, rows in parts.items() if len(rows)
        }
        if hp.train_sample and hp.train_sample < len(frames["train"]):
            frames["train"] = (
                frames["train"].sample(n=hp.train_sample, random_state=hp.seed).reset_index(drop=True)
            )
        if frames["train"]["label"].nunique() < 2:
            raise DataError(
                f"the training data has a single class ('{frames['train']['label'].iloc[0]}'): "
                "a classifier needs at least two"
            )
        return frames

    def _check_eval_labels(self, frames: dict[str, pd.DataFrame]) -> None:
        known = set(frames["train"]["label"]) if "train" in frames else set()
        for split, frame in frames.items():
            unseen = sorted(set(frame["label"]) - known, key=label_sort_key)
            if known and unseen:
                raise DataError(
                    f"labels in {split} never occur in train: {', '.join(unseen)}; fix the labels or add "
                    "training examples"
                )

    def read_predict_frame(self) -> pd.DataFrame:
        """The `predict_file` rows (or the `predict_split` of `dataset_name`), text and optional id, in
        input order; labels are not needed."""
        hp = self.hparams
        if hp.predict_file:
            return self._clean(read_table(hp.predict_file, hp.encoding), "predict", need_label=False)
        if hp.dataset_name:
            splits = self.hub_frames()
            if hp.predict_split not in splits:
                raise DataError(
                    f"dataset '{hp.dataset_name}' has no split '{hp.predict_split}' to predict (it has "
                    f"{', '.join(splits)}): set data.predict_split or data.predict_file"
                )
            return self._clean(splits[hp.predict_split], "predict", need_label=False)
        raise DataError("nothing to predict: set data.predict_file")

    def class_counts(self, split: str = "train") -> list[int]:
        """Rows per label (in `label_names` order) in a split."""
        counts = self.frames[split]["label"].value_counts()
        return [int(counts.get(name, 0)) for name in self.label_names]

    # ------------------------------------------------------------------ Lightning hooks

    def setup(self, stage: str) -> None:
        self.check_max_length()
        if stage == "predict":
            self.predict_frame = self.read_predict_frame()
            self.encoded["predict"] = self._encode(self.predict_frame, with_labels=False)
            return
        needed = {"fit": ("train", "validation"), "validate": ("validation",), "test": ("test",)}[stage]
        for split in needed:
            if split not in self.frames and split in self.unlabelled_splits:
                name = "val" if split == "validation" else split
                raise DataError(
                    f"no labelled {split} data: the dataset's {split} split has no labels; set "
                    f"data.{name}_fraction > 0 to split labelled {split} data off train"
                )
            if split not in self.frames:
                raise DataError(
                    f"no {split} data: set data.{'val' if split == 'validation' else split}_file "
                    f"or data.{'val' if split == 'validation' else split}_fraction > 0"
                )
        if stage == "fit":
            self._print_distribution()
        for split in needed:
            self.encoded[split] = self._encode(self.frames[split])

    def _print_distribution(self) -> None:
        names = self.label_names
        width = max(len(n) for n in names + ["label"])
        splits = [s for s in SPLITS if s in self.frames]
        lines = [f"{'label':<{width}} " + " ".join(f"{s:>16}" for s in splits)]
        for i, name in enumerate(names):
            cells = []
            for s in splits:
                n, total = self.class_counts(s)[i], len(self.frames[s])
                cells.append(f"{n:>8} ({n / total:5.1%})")
            lines.append(f"{name:<{width}} " + " ".join(cells))
        lines.append(f"{'rows':<{width}} " + " ".join(f"{len(self.frames[s]):>16}" for s in splits))
        rank_zero_info("Label distribution:\n" + "\n".join(lines))

    def _encode(self, frame: pd.DataFrame, with_labels: bool = True) -> EncodedTexts:
        ids = tokenize_cached(
            frame["text"].tolist(), self.tokenizer, self.hparams.max_length, self.hparams.cache_dir
        )
        labels = None
        if with_labels:
            index = {name: i for i, name in enumerate(self.label_names)}
            unknown = sorted(set(frame["label"]) - set(index), key=label_sort_key)
            if unknown:
                raise DataError(
                    f"labels {', '.join(unknown)} are not among the model's labels ({', '.join(self.label_names)}): "
                    "the data does not match the checkpoint"
                )
            labels = frame["label"].map(index).to_numpy(dtype=np.int64)
        return EncodedTexts(*ids, labels)

    def _pad_multiple(self) -> int:
        # Tensor cores work on tiles of 8; on CPU extra padding is only extra work.
        on_gpu = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return 8 if on_gpu else 1

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        data = self.encoded[split]
        buckets = length_buckets(self.hparams.max_length) if self.hparams.bucket_lengths else None
        collate = Collator(self.tokenizer.pad_token_id, self._pad_multiple(), buckets)
        common = {"collate_fn": collate, "num_workers": self.hparams.num_workers}
        common["persistent_workers"] = self.hparams.num_workers > 0
        # a loader's own generator keeps it from drawing on the global one that dropout uses
        common["generator"] = torch.Generator().manual_seed(self.hparams.seed)
        if not train:
            size = self.hparams.eval_batch_size or 2 * self.hparams.batch_size
            return DataLoader(data, batch_size=size, sampler=SortedSampler(data.lengths), **common)
        common["batches_done"] = self._train_batches_done
        common["seed"] = self.hparams.seed
        sampler = SeededRandomSampler(data, self.hparams.seed)
        if not self.hparams.group_by_length:
            return ResumableDataLoader(data, batch_size=self.hparams.batch_size, sampler=sampler, **common)
        batches = LengthGroupedBatchSampler(
            sampler, self.hparams.batch_size, False, data.lengths, seed=self.hparams.seed
        )
        return ResumableDataLoader(data, batch_sampler=batches, **common)

    def _train_batches_done(self) -> int:
        """Batches of the current epoch already trained on (0 once the epoch is complete)."""
        if self.trainer is None:
            return 0
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return done if done < self.trainer.num_training_batches else 0

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")


def _label_str(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


# ----------------------------------------------------------------------------- tokenization cache


def default_cache_dir() -> Path:
    return Path(os.environ.get("TEXTCLS_CACHE", Path.home() / ".cache" / "textcls"))


def tokenize_cached(
    texts: list[str], tokenizer, max_length: int, cache_dir: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of `texts` as a flat array and offsets, tokenized once and cached on disk.

    The cache key covers the texts themselves, the whole tokenizer (vocabulary, rules and truncation
    side) and `max_length`, so any change to one of them re-tokenizes.
    """
    import datasets

    key = hashlib.sha256()
    for part in (CACHE_VERSION, str(max_length), _tokenizer_fingerprint(tokenizer), *texts):
        key.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    folder = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)

    def encode(batch: dict) -> dict:
        return {"input_ids": tokenizer(batch["text"], truncation=True, max_length=max_length)["input_ids"]}

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        encoded = datasets.Dataset.from_dict({"text": texts}).map(
            encode,
            batched=True,
            batch_size=1000,
            remove_columns=["text"],
            cache_file_name=str(folder / f"tokens-{key.hexdigest()[:32]}.arrow"),
            features=datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int32"))}),
        )
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
    column = encoded.data.column("input_ids").combine_chunks()
    offsets = column.offsets.to_numpy()
    tokens = column.flatten().to_numpy()
    return tokens, offsets - offsets[0]


def _tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        state = repr(sorted(tokenizer.get_vocab().items()))
    else:
        # truncation and padding are per-call settings that the tokenizer remembers: not its identity
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None), spec.pop("padding", None)
        state = json.dumps(spec, sort_keys=True)
    # which end of a long text is cut is a tokenizer attribute, applied at each call
    state += f"|truncation_side={getattr(tokenizer, 'truncation_side', 'right')}"
    return hashlib.sha256((type(tokenizer).__name__ + state).encode()).hexdigest()
