"""Text classification data: reading (`io`), splitting (`split`), tokenization (`tokens`), batching
(`batching`) and the LightningDataModule that runs them in order (`module`).

`textcls.data.TextClassificationData` is the name configs use. It is imported on first use: the tasks
(textcls/tasks/) build on this package's reading and splitting, and the data module builds on the tasks.
"""

from textcls.data.io import SPLITS, DataError, label_sort_key, read_table

__all__ = ["SPLITS", "DataError", "TextClassificationData", "label_sort_key", "read_table"]


def __getattr__(name: str):
    if name == "TextClassificationData":
        from textcls.data.module import TextClassificationData

        return TextClassificationData
    raise AttributeError(f"module 'textcls.data' has no attribute '{name}'")
