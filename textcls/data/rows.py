"""A split's rows: the texts in Arrow on disk, their source row numbers and labels in memory.

The texts (and the second texts and ids) of every split stay in memory-mapped Arrow files
(`datasets.Dataset`), a split made here being a selection of rows of the file's dataset. What stays in
memory is a few bytes a row: the source row numbers (int64) and the labels (a categorical series of
codes for one label per text, numbers for regression, tuples of names for label sets). A pandas frame
of a split is made only where a consumer needs every text (`Split.frame`, `FrameView`).
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Split:
    """The rows of one split, in order.

    Attributes:
        texts: Columns `text`, optional `text_pair` and `id`, one row per example (memory-mapped).
        rows: Each example's row number in its source file.
        labels: Each example's label (None for texts to predict).
    """

    texts: object  # datasets.Dataset
    rows: np.ndarray
    labels: pd.Series | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, indices: np.ndarray) -> "Split":
        """The rows at `indices`, in that order (the texts stay on disk: a selection of their rows).

        The texts' rows in their Arrow table are `rows` (the source rows), as `clean_split` made them."""
        indices = np.asarray(indices, dtype=np.int64)
        labels = None
        if self.labels is not None:
            labels = self.labels.iloc[indices].reset_index(drop=True)
            if isinstance(labels.dtype, pd.CategoricalDtype):
                labels = labels.cat.remove_unused_categories()
        rows = self.rows[indices]
        return Split(rows_of(self.texts, rows), rows, labels)

    def sample(self, n: int, seed: int) -> "Split":
        """`n` rows drawn at random: the rows `DataFrame.sample(n=n, random_state=seed)` draws of its frame."""
        positions = pd.RangeIndex(len(self)).to_series().sample(n=n, random_state=seed)
        return self.take(positions.to_numpy())

    def text_columns(self) -> list[str]:
        """`text`, and `text_pair` for pairs of texts."""
        return [c for c in ("text", "text_pair") if c in self.texts.column_names]

    def frame(self) -> pd.DataFrame:
        """The split as a frame with columns `text` (`text_pair`, `id`), `label` and `row`, in memory."""
        frame = self.texts.to_pandas()
        if self.labels is not None:
            labels = self.labels
            frame["label"] = (
                labels.astype(object) if isinstance(labels.dtype, pd.CategoricalDtype) else labels
            )
        frame["row"] = self.rows
        return frame


def rows_of(ds, rows: np.ndarray):
    """The rows `rows` of the Arrow table under `ds` (a `datasets.Dataset`), what `ds.select` makes
    without its Python int per row: the indices table is a view of `rows` itself."""
    import datasets
    import pyarrow as pa

    rows = np.ascontiguousarray(rows, dtype=np.int64)
    indices = pa.table({"indices": pa.array(rows.view(np.uint64))})  # zero-copy: rows are not negative
    return datasets.Dataset(ds.data, info=ds.info.copy(), split=ds.split, indices_table=indices)


class FrameView(Mapping):
    """Splits by name as pandas frames, each made on first use (`Split.frame`) and kept.

    For the consumers that read every text anyway (the test report, the baselines): asking which
    splits there are, or for one split, makes no other split's frame.
    """

    def __init__(self, splits: Mapping[str, Split]):
        self.splits, self.made = splits, {}

    def __getitem__(self, split: str) -> pd.DataFrame:
        if split not in self.made:
            self.made[split] = self.splits[split].frame()
        return self.made[split]

    def __iter__(self) -> Iterator[str]:
        return iter(self.splits)

    def __len__(self) -> int:
        return len(self.splits)
