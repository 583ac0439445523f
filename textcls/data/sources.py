"""Reading the splits: files or a hub dataset, cleaned and split, for the data module (a mixin).

`SplitReading` holds what `TextClassificationData` does before tokenizing: read each file as Arrow
(`io.read_dataset`), clean it (`clean.clean_split`), have the task read its labels, and split
validation/test off train (`split.split_train`). It reads the data module's settings (`hparams`) and
`task`, and keeps the rows of empty texts it dropped for the data check (`empty_rows`).
"""

from functools import cached_property

import pandas as pd
from lightning.pytorch.utilities import rank_zero_info

from textcls.data.clean import clean_split
from textcls.data.corrections import apply_corrections
from textcls.data.io import SPLITS, DataError, load_hub_dataset, read_dataset
from textcls.data.rows import Split
from textcls.data.split import split_train


class SplitReading:
    """The splits of a data module's files or hub dataset, read once (see the module docstring)."""

    @cached_property
    def hub_splits(self) -> dict:
        """The splits of `dataset_name` as loaded (validation under that name), loaded once."""
        hp = self.hparams
        sources = load_hub_dataset(hp.dataset_name, hp.dataset_config_name, hp.label_column)
        return {"validation" if k in ("valid", "dev", "val") else k: v for k, v in sources.items()}

    @cached_property
    def raw_splits(self) -> dict[str, Split]:
        """The splits as read and split, before the check that their labels occur in train (the data
        check reports that itself); read once per process."""
        hp = self.hparams
        if hp.dataset_name:
            sources = self.hub_splits
        else:
            files = {"train": hp.train_file, "validation": hp.val_file, "test": hp.test_file}
            sources = {split: self._read(path) for split, path in files.items() if path}
        splits = {}
        for split, source in sources.items():
            if split not in SPLITS:
                continue
            # a dataset marks unlabelled rows itself (GLUE test sets): they are for predict only
            cleaned = self._clean(source, split, unlabelled="drop" if hp.dataset_name else "error")
            if cleaned is None:
                self.unlabelled_splits.append(split)
                rank_zero_info(
                    f"{split}: the dataset's {split} split has no labels; left out of fit, validate and test "
                    f"(predict can classify it: data.predict_split={split})"
                )
            else:
                splits[split] = cleaned
        apply_corrections(splits, hp.corrections_file, hp, self.task)  # in place; nothing when None
        if "train" in splits:
            fractions = {
                split: frac
                for split, frac in (("validation", hp.val_fraction), ("test", hp.test_fraction))
                if split not in splits
            }
            splits.update(split_train(splits.pop("train"), fractions, hp.seed, hp.train_sample, self.task))
        return splits

    def _read(self, path: str):
        cache = self.hparams.cache_dir
        return read_dataset(path, self.hparams.encoding, f"{cache}/datasets" if cache else None)

    def _clean(self, source, split: str, need_label: bool = True, unlabelled: str = "error") -> Split | None:
        hp = self.hparams
        columns = {"text": hp.text_column, "text_pair": hp.text_pair_column, "id": hp.id_column}
        columns = {k: v for k, v in columns.items() if v} | (
            self.task.label_columns(hp) if need_label else {}
        )
        out, empty_rows = clean_split(source, split, columns, hp.empty_texts, unlabelled)
        if empty_rows:
            self.empty_rows[split] = empty_rows
        if need_label and out is not None:
            clean = pd.DataFrame(
                {"row": out.rows} | ({"label": out.labels} if out.labels is not None else {})
            )
            out.labels = self.task.read_labels(self._label_source(source, columns), clean, split, hp)
        return out

    def _label_source(self, source, columns: dict[str, str]) -> pd.DataFrame | None:
        """The source columns a task reads its labels from itself (label sets), as a frame; None when
        the cleaned `label` is all it reads."""
        if "label" in columns:
            return None
        wanted = self.hparams.label_columns or [self.hparams.label_column]
        if any(c not in source.column_names for c in wanted):  # the task names what is missing
            return pd.DataFrame(columns=source.column_names)
        return source.select_columns(wanted).to_pandas()

    def read_predict(self) -> Split:
        """The `predict_file` rows (or the `predict_split` of `dataset_name`), text and optional id, in
        input order; labels are not needed."""
        hp = self.hparams
        if hp.predict_file:
            return self._clean(self._read(hp.predict_file), "predict", need_label=False)
        if hp.dataset_name:
            splits = self.hub_splits
            if hp.predict_split not in splits:
                raise DataError(
                    f"dataset '{hp.dataset_name}' has no split '{hp.predict_split}' to predict (it has "
                    f"{', '.join(splits)}): set data.predict_split or data.predict_file"
                )
            return self._clean(splits[hp.predict_split], "predict", need_label=False)
        raise DataError("nothing to predict: set data.predict_file")
