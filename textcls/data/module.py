"""The LightningDataModule: reads the splits once, encodes them, and hands Lightning its loaders.

What each step does lives beside it in this package: `io` (reading, cleaning), `split`
(stratified splits), `tokens` (tokenization and its cache), `batching` (padding, samplers).
"""

from functools import cached_property

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from textcls.backbone import load_config, load_tokenizer, position_limit
from textcls.checkpoint import DEFAULT_MAX_LENGTH
from textcls.data.batching import (
    BlockSortedSampler,
    Collator,
    EncodedTexts,
    LengthGroupedBatchSampler,
    ResumableDataLoader,
    SeededRandomSampler,
    SortedSampler,
    TextWindows,
    WindowSampler,
    length_buckets,
)
from textcls.data.io import SPLITS, DataError, label_sort_key
from textcls.data.rows import FrameView, Split
from textcls.data.sources import SplitReading
from textcls.data.split import check_eval_labels, distribution_table
from textcls.data.tokens import tokenize_cached
from textcls.long_text import TextLayout, takes_segments
from textcls.tasks import Task, task_for


class TextClassificationData(SplitReading, L.LightningDataModule):
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
        text_pair_column: Column holding a second text, for tasks on pairs of texts (paraphrase,
            entailment, similarity): each example is read as the tokenizer's pair input
            (`[CLS] text [SEP] text_pair [SEP]` for BERT, with segment ids where the backbone has
            them), cut `longest_first` to `max_length`.
        label_column: Column holding the label (strings or integers); with `multi_label`, the label
            names joined by `label_separator` (an empty cell is a text with no label).
        problem_type: The kind of task, by Hugging Face's name: "single_label_classification" (one
            label per text), "multi_label_classification" (what `multi_label: true` says), or
            "regression": `label_column` holds a number per text, and the model predicts a number
            (MSE on targets standardised with the training split's mean and standard deviation; splits
            made here are stratified on quantile bins of the target). Default: from `multi_label`.
        multi_label: Each text carries any number of labels (emotions, topics, tags): the model
            scores each label on its own (sigmoid, binary cross-entropy) and splits made here are
            iteratively stratified over all labels.
        label_separator: What joins a text's label names in `label_column` (multi-label data).
        label_columns: Multi-label data as one 0/1 column per label instead of `label_column`; the
            label names are the column names.
        id_column: Optional column copied to the predictions instead of the text.
        corrections_file: Reviewed labels (CSV: file, row, label) applied before splitting; README "Label errors".
        labels: The label names in order. By default the sorted labels of the training split; a
            checkpoint supplies its own so that `test` and `predict` use the labels it was trained on.
        val_fraction: Share of each class split off for validation when there is no `val_file`.
        test_fraction: Share of each class split off for testing when there is no `test_file`.
        train_sample: Train on a random sample of this many training rows (all rows when None).
        seed: Seed of the splits, the sample and the batch order, also under DDP (linked to
            seed_everything).
        model_name_or_path: The backbone whose tokenizer encodes the texts (linked to the model's).
        max_length: The most tokens the encoder reads at once (special tokens included); at most the
            backbone's position limit. Longer texts are truncated, or read in windows (`long_text`).
        truncation: Which tokens of a longer text are kept: "head" (the first), "tail" (the last) or
            "head_tail" (the first `head_tokens` and the last rest; Sun et al. 2019 found head 128 +
            tail 382 best on IMDB at 512).
        head_tokens: Tokens kept from the start by "head_tail" (default: a quarter of max_length).
        long_text: "truncate" (per `truncation`), or "chunks": a longer text is read as overlapping
            windows of max_length tokens. Training gives every window its text's label(s);
            validation, test and predict pool the windows' logits into one answer per text
            (model.chunk_pooling). Costs one forward pass per window.
        chunk_stride: Tokens two neighbouring windows share (default: a quarter of max_length).
        max_chunks_per_text: With "chunks", train on at most this many windows of each text per
            epoch, drawn anew each epoch (all windows when None); bounds the cost of very long texts.
        batch_size: Training batch size.
        eval_batch_size: Batch size for validation, test and predict (default: 2 x batch_size).
        group_by_length: Form training batches from texts of similar length (less padding, faster).
        bucket_lengths: Pad batches to a few fixed lengths (powers of two up to max_length) instead of
            their longest text (linked to model.compile).
        num_workers: DataLoader worker processes.
        num_proc: Processes that tokenize a split (`datasets.map`); pays on large files (the cleaning
            runs in pyarrow and needs none). None: one, in this process.
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
        text_pair_column: str | None = None,
        label_column: str = "label",
        problem_type: str | None = None,
        multi_label: bool = False,
        label_separator: str = ";",
        label_columns: list[str] | None = None,
        id_column: str | None = None,
        corrections_file: str | None = None,
        labels: list[str] | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        train_sample: int | None = None,
        seed: int = 42,
        model_name_or_path: str = "distilbert-base-uncased",
        max_length: int = DEFAULT_MAX_LENGTH,
        truncation: str = "head",
        head_tokens: int | None = None,
        long_text: str = "truncate",
        chunk_stride: int | None = None,
        max_chunks_per_text: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        group_by_length: bool = True,
        bucket_lengths: bool = False,
        num_workers: int = 0,
        num_proc: int | None = None,
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
        if (problem := self.layout.problem(pairs=bool(text_pair_column))) is not None:
            raise DataError(problem)
        if max_chunks_per_text is not None and max_chunks_per_text < 1:
            raise DataError(f"data.max_chunks_per_text must be at least 1, got {max_chunks_per_text}")
        if label_columns and not multi_label:
            raise DataError("data.label_columns is for multi-label data: set data.multi_label true")
        if multi_label and not label_separator:
            raise DataError("data.label_separator must not be empty")
        if num_proc is not None and num_proc < 1:
            raise DataError(f"data.num_proc must be at least 1, got {num_proc}")
        self.unlabelled_splits: list[str] = []  # dataset splits left out for having no labels
        self.encoded: dict[str, EncodedTexts] = {}
        self.empty_rows: dict[str, list[int]] = {}  # source rows of dropped empty texts, for the data check

    # ------------------------------------------------------------------ raw splits

    @property
    def layout(self) -> TextLayout:
        """What the encoder reads of each text (max_length, truncation, chunking)."""
        hp = self.hparams
        return TextLayout(hp.max_length, hp.truncation, hp.head_tokens, hp.long_text, hp.chunk_stride)

    @cached_property
    def task(self) -> Task:
        """How labels are read, counted, split and encoded: one per text, or a set (`multi_label`)."""
        hp = self.hparams
        return task_for(hp, label_separator=hp.label_separator, target_name=hp.label_column)

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.hparams.model_name_or_path, self.hparams.trust_remote_code)

    def check_max_length(self) -> None:
        """Refuse a max_length beyond the backbone's position limit (it would fail mid-run)."""
        limit = self.token_limit
        if limit is not None and self.hparams.max_length > limit:
            raise DataError(
                f"data.max_length {self.hparams.max_length} is more than backbone "
                f"'{self.hparams.model_name_or_path}' takes ({limit} tokens): set data.max_length to at most {limit}"
            )

    @cached_property
    def token_limit(self) -> int | None:
        """The most tokens a text may have for the backbone (None when it sets no limit)."""
        config = load_config(self.hparams.model_name_or_path, self.hparams.trust_remote_code)
        return position_limit(self.tokenizer, config)

    @cached_property
    def splits(self) -> dict[str, Split]:
        """The labelled splits (texts on disk, rows and labels in memory), read once;
        validation/test labels unseen in train are refused (unless the labels are given)."""
        if not self.hparams.labels:
            check_eval_labels({s: split.labels for s, split in self.raw_splits.items()}, self.task)
        return self.raw_splits

    @cached_property
    def frames(self) -> FrameView:
        """The labelled splits as frames with columns `text`, `label`, `row` (and `id`), each made on
        first use: for consumers that read every text (the test report, baselines)."""
        return FrameView(self.splits)

    @cached_property
    def split_frames(self) -> FrameView:
        """`raw_splits` as frames, each made on first use."""
        return FrameView(self.raw_splits)

    @property
    def label_names(self) -> list[str]:
        """Label names in class-index order: given, or the sorted labels of the training split."""
        if self.hparams.labels:
            return list(self.hparams.labels)
        if "train" not in self.splits:
            raise DataError(
                "no training data to take the label names from: set data.train_file or data.labels"
            )
        return self.task.names_in(self.splits["train"].labels)

    def read_predict_frame(self) -> pd.DataFrame:
        """`read_predict` as a frame in memory (for small inputs)."""
        return self.read_predict().frame()

    @cached_property
    def predict_frame(self) -> pd.DataFrame:
        """The rows `setup("predict")` read, as a frame (made on first use)."""
        return self.predict_split.frame()

    def class_counts(self, split: str = "train") -> list[int]:
        """Texts carrying each label (in `label_names` order) in a split."""
        return self.task.counts(self.splits[split].labels, self.label_names)

    # ------------------------------------------------------------------ Lightning hooks

    def setup(self, stage: str) -> None:
        self.check_max_length()
        if stage == "predict":
            self.predict_split = self.read_predict()
            self.__dict__.pop("predict_frame", None)
            # the rows to predict (text, text_pair, id), in input order, on disk: `predict_rows[indices]`
            self.predict_rows = self.predict_split.texts
            self.encoded["predict"] = self._encode(self.predict_split, with_labels=False)
            return
        needed = {"fit": ("train", "validation"), "validate": ("validation",), "test": ("test",)}[stage]
        for split in needed:
            if split not in self.splits and split in self.unlabelled_splits:
                name = "val" if split == "validation" else split
                raise DataError(
                    f"no labelled {split} data: the dataset's {split} split has no labels; set "
                    f"data.{name}_fraction > 0 to split labelled {split} data off train"
                )
            if split not in self.splits:
                raise DataError(
                    f"no {split} data: set data.{'val' if split == 'validation' else split}_file "
                    f"or data.{'val' if split == 'validation' else split}_fraction > 0"
                )
        if stage == "fit":
            counts = {
                s: dict(zip(self.label_names, self.class_counts(s), strict=True))
                for s in SPLITS
                if s in self.splits
            }
            rows = {s: len(self.splits[s]) for s in counts}  # a text may carry several labels
            rank_zero_info("Label distribution:\n" + distribution_table(counts, rows))
        for split in needed:
            self.encoded[split] = self._encode(self.splits[split])

    def _encode(self, split: Split, with_labels: bool = True) -> EncodedTexts:
        hp = self.hparams
        ids = tokenize_cached(split.texts, self.tokenizer, self.layout, hp.cache_dir, num_proc=hp.num_proc)
        labels = None
        if with_labels:
            unknown = sorted(
                set(self.task.names_in(split.labels)) - set(self.label_names), key=label_sort_key
            )
            if unknown:
                raise DataError(
                    f"labels {', '.join(unknown)} are not among the model's labels ({', '.join(self.label_names)}): "
                    "the data does not match the checkpoint"
                )
            labels = self.task.targets(split.labels, self.label_names)
        tokens, offsets, owners, text_lengths, segments = ids
        segments = segments if takes_segments(self.tokenizer) else None
        return EncodedTexts(tokens, offsets, labels, owners, text_lengths, segments)

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
            # a chunked text is read whole (all its windows in one batch): batches count texts
            data = TextWindows(data) if self.layout.chunked else data
            size = self.hparams.eval_batch_size or 2 * self.hparams.batch_size
            sampler = BlockSortedSampler(data.lengths) if split == "predict" else SortedSampler(data.lengths)
            return DataLoader(data, batch_size=size, sampler=sampler, **common)
        common["batches_done"] = self._train_batches_done
        common["seed"] = self.hparams.seed
        per_text = self.hparams.max_chunks_per_text if self.layout.chunked else None
        sampler = (
            WindowSampler(data.owners, per_text, self.hparams.seed)
            if per_text
            else SeededRandomSampler(data, self.hparams.seed)
        )
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
