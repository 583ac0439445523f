"""The data check as a Lightning callback (at the start of `fit`) and as `textcls check-data`."""

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from textcls.checks.outputs import render, write_outputs
from textcls.checks.problems import raise_on_errors
from textcls.checks.run import check_data
from textcls.data import TextClassificationData


class DataCheck(Callback):
    """Checks the data at the start of `fit` (and in `textcls check-data`).

    Reports rows, class counts and shares per split, labels only in validation/test, labels that
    differ only by case or spacing, small classes, empty and duplicate texts, texts shared between
    splits, and token lengths (for texts read in windows, also windows per text and their cost); for
    multi-label data the counts are each label's positive texts, with labels per text, texts with no
    label and the label pairs most often together. Writes
    `data_check.json`, `split_rows.json` and `class_counts.png` into the run's log folder. Errors
    stop `fit` with one line; the rest are warnings.

    Args:
        enabled: Check the data at the start of `fit`.
        min_class_examples: Warn about classes with fewer training examples than this.
        truncation_warning: Warn when more than this share of a split's texts is longer than
            data.max_length: cut, or with data.long_text: chunks read in windows (the warning gives the cost).
        length_sample: Measure token lengths on at most this many texts per split (a seeded sample).
        examples: How many example texts or rows each problem lists.
    """

    def __init__(
        self,
        enabled: bool = True,
        min_class_examples: int = 5,
        truncation_warning: float = 0.05,
        length_sample: int = 20_000,
        examples: int = 3,
    ):
        self.enabled, self.min_class_examples = enabled, min_class_examples
        self.truncation_warning, self.length_sample, self.examples = (
            truncation_warning,
            length_sample,
            examples,
        )

    def check(self, data: TextClassificationData) -> dict:
        """The full report of `data` as a JSON-ready dict (see `check_data`)."""
        return check_data(
            data, self.min_class_examples, self.truncation_warning, self.length_sample, self.examples
        )

    def run(
        self, data: TextClassificationData, folder: Path | None, table: bool = True, say=rank_zero_info
    ) -> dict:
        """Check, write into `folder` (when given), print with `say`, and raise DataError on an error."""
        report = self.check(data)
        if folder is not None:
            write_outputs(report, data, folder)
        say(render(report, table=table))
        raise_on_errors(report)
        return report

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or not self.enabled or trainer.datamodule is None:
            return
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        folder = Path(log_dir or ".") if trainer.is_global_zero else None
        # data.py prints the class table at the start of fit already
        self.run(trainer.datamodule, folder, table=False)
