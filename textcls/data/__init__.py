"""Text classification data: reading (`io`), splitting (`split`), tokenization (`tokens`), batching
(`batching`) and the LightningDataModule that runs them in order (`module`).

`textcls.data.TextClassificationData` is the name configs use.
"""

from textcls.data.io import SPLITS, DataError, label_sort_key, read_table
from textcls.data.module import TextClassificationData

__all__ = ["SPLITS", "DataError", "TextClassificationData", "label_sort_key", "read_table"]
