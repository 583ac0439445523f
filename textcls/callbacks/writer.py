"""Writes `predict` results to a CSV, JSONL or Parquet file, one row per input text, in input order, as
they are predicted: rank 0 receives every rank's rows in bounded rounds (`gathering.py`), puts them back in
input order (`InputOrder`) and appends each stretch whose rows have all arrived (`table_file.py`)."""

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, RichProgressBar, TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_info

from textcls.calibration import cutoff_message
from textcls.callbacks.gathering import RankRounds
from textcls.callbacks.table_file import TableFile
from textcls.precision import check_int8_precision
from textcls.predictions import DEFAULT_UNCERTAIN_BELOW, InputOrder, inputs_at
from textcls.quantize import check_quantize, quantize_int8

# the fewest rows written at once before the end (one Parquet row group): about a block of the predict
# sampler arrives complete at a time
WRITE_ROWS = 1024

OUTPUT_FORMATS = (".csv", ".jsonl", ".json", ".parquet")


class PredictionError(ValueError):
    """Predictions that cannot be written as asked (output path, format, threshold)."""


class PredictionWriter(Callback):
    """Writes `predict` results: one row per input, in input order, as CSV, JSONL or Parquet (by
    extension), appended as they are predicted (under a temporary name, renamed at the end).

    Each row holds the text (or the id column when the data names one), the predicted label, its
    probability, and every class's probability (`prob_<label>`), all temperature-scaled (see
    `model.calibrate`). A multi-label model writes `labels` (the names that passed their thresholds,
    joined by data.label_separator), `prob_<label>` and `pred_<label>` (0/1) instead. With several
    devices rank 0 receives every rank's rows a few batches at a time and writes the file.

    Args:
        output_path: Where to write; default `predictions.csv` in the run's log folder.
        uncertain_below: Label rows whose top probability is below this as UNCERTAIN (0 = never).
            An explicit cut-off: when set, it overrides `target_precision`.
        target_precision: Label as UNCERTAIN the rows below the smallest confidence cut-off whose kept
            validation predictions reach this precision (chosen from the validation confidences the
            checkpoint stores). When no cut-off reaches it, one line says so and every row is kept.
        at_least_one: Multi-label models: a text where no label passes its threshold gets its
            highest-scoring label (off: such a text gets no label).
        quantize: "int8": `predict` (and `test`, to measure what it costs) run the model with
            dynamically quantized int8 Linear layers, on CPU in full precision, which they then pick when
            trainer.precision is unset ("none": as trained).
    """

    def __init__(
        self,
        output_path: str | None = None,
        uncertain_below: float = DEFAULT_UNCERTAIN_BELOW,
        target_precision: float | None = None,
        at_least_one: bool = False,
        quantize: str = "none",
    ):
        self.quantize = check_quantize(quantize)
        if not 0 <= uncertain_below <= 1:
            raise PredictionError(f"prediction.uncertain_below must be in [0, 1], got {uncertain_below}")
        if target_precision is not None and not 0 < target_precision <= 1:
            raise PredictionError(f"prediction.target_precision must be in (0, 1], got {target_precision}")
        if output_path and Path(output_path).suffix.lower() not in OUTPUT_FORMATS:
            raise PredictionError(
                f"prediction.output_path '{output_path}': predictions are written as "
                f"{', '.join(OUTPUT_FORMATS)} (by extension), not '{Path(output_path).suffix}'"
            )
        self.output_path, self.uncertain_below = output_path, uncertain_below
        self.target_precision, self.at_least_one = target_precision, at_least_one
        self.written: Path | None = None
        self.rounds, self.order, self.file, self.options = RankRounds(), InputOrder(), None, {}

    def _target(self, trainer: L.Trainer) -> Path:
        if self.output_path:
            return Path(self.output_path)
        return Path(trainer.log_dir or ".") / "predictions.csv"

    def _quantize(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # here, not in setup: Lightning loads the checkpoint's weights after setup, into the fp32 model
        if not self.quantize:
            return
        check_int8_precision(trainer.precision)  # the CLI has checked; a Trainer built in code has not
        pl_module.model = quantize_int8(pl_module.model)
        pl_module.quantized = self.quantize  # for the test report
        rank_zero_info("Predicting with int8 dynamic quantization of the Linear layers")

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._quantize(trainer, pl_module)

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._quantize(trainer, pl_module)
        target = self._target(trainer)
        if not target.parent.is_dir():
            raise PredictionError(f"the folder of the output file '{target}' does not exist: create it first")
        asked = ["prediction.uncertain_below", "prediction.target_precision"]
        if (self.uncertain_below or self.target_precision) and (refused := pl_module.task.refuses(asked)):
            raise PredictionError(refused)

    def threshold(self, pl_module: L.LightningModule) -> float:
        """`uncertain_below` when set, else the validation cut-off for `target_precision` (0 = none)."""
        if self.uncertain_below or self.target_precision is None:
            return self.uncertain_below
        cutoff, message = cutoff_message(getattr(pl_module, "calibration", None), self.target_precision)
        rank_zero_info(message)
        return cutoff

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.rounds = RankRounds(device=trainer.strategy.root_device)
        self.rounds.start(int(sum(trainer.num_predict_batches)))
        self.order = InputOrder()
        if trainer.is_global_zero:
            self.file = TableFile(self._target(trainer))
            separator = trainer.datamodule.hparams.label_separator  # how the training data joined label names
            threshold = self.threshold(pl_module)
            self.options = {
                "separator": separator,
                "uncertain_below": threshold,
                "at_least_one": self.at_least_one,
            }

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._receive(trainer, pl_module, self.rounds.add(outputs["idx"], outputs["probs"]))
        _forget_batch_indices(trainer)

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._receive(trainer, pl_module, self.rounds.finish())  # the rounds of a rank with no batch at all
        if self.file is None:
            return
        if (rest := self.order.rest()) is not None:
            self._write(trainer, pl_module, *rest)
        self.file.close()
        self.written, rows, self.file = self.file.path, self.file.rows, None
        rank_zero_info(f"Wrote {rows} predictions to {self.written}")

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if self.file is not None:
            self.file.discard()
            self.file = None

    def _receive(self, trainer, pl_module, received: list) -> None:
        if self.file is None:  # not rank 0: its rows were sent
            return
        for rows, probs in received:
            self.order.add(rows, probs)
        if (ready := self.order.take(WRITE_ROWS)) is not None:
            self._write(trainer, pl_module, *ready)

    def _write(self, trainer: L.Trainer, pl_module: L.LightningModule, rows, probs: torch.Tensor) -> None:
        inputs = inputs_at(trainer.datamodule, rows)
        self.file.append(pl_module.task.prediction_table(inputs, probs, **self.options))
        _show_rows_written(trainer, self.file.rows)


def _show_rows_written(trainer: L.Trainer, rows: int) -> None:
    """The rows written so far beside Lightning's predict progress bar (batches, rate and time left)."""
    bar = trainer.progress_bar_callback
    if isinstance(bar, TQDMProgressBar) and bar._predict_progress_bar is not None:
        bar.predict_progress_bar.set_postfix({"rows written": rows}, refresh=False)
    elif (
        isinstance(bar, RichProgressBar)
        and bar.progress is not None
        and bar.predict_progress_bar_id is not None
    ):
        text = f"{bar.predict_description}, {rows:,} rows written"
        style = bar.theme.description
        bar.progress.update(bar.predict_progress_bar_id, description=f"[{style}]{text}" if style else text)


def _forget_batch_indices(trainer: L.Trainer) -> None:
    """Lightning keeps every predicted batch's indices for a BasePredictionWriter; this writer reads them
    from the batch, so without another such writer they are dropped instead of growing with the input."""
    if any(isinstance(c, BasePredictionWriter) for c in trainer.callbacks):
        return
    loaders = trainer.predict_dataloaders
    for loader in loaders if isinstance(loaders, list) else [loaders]:
        seen = getattr(getattr(loader, "batch_sampler", None), "seen_batch_indices", None)
        if isinstance(seen, list):
            seen.clear()
