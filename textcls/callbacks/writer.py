"""Writes `predict` results to a CSV or JSONL file, one row per input text, in input order."""

import os
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info

from textcls.calibration import cutoff_message
from textcls.precision import check_int8_precision
from textcls.predictions import DEFAULT_UNCERTAIN_BELOW, gather_in_order
from textcls.quantize import check_quantize, quantize_int8

OUTPUT_FORMATS = (".csv", ".jsonl", ".json", ".parquet")


class PredictionError(ValueError):
    """Predictions that cannot be written as asked (output path, format, threshold)."""


def write_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV, JSONL or Parquet (by extension) to a temporary name, then rename: never a
    half-written file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        if path.suffix.lower() in (".jsonl", ".json"):
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        elif path.suffix.lower() == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class PredictionWriter(BasePredictionWriter):
    """Writes `predict` results: one row per input, in input order, as CSV, JSONL or Parquet (by
    extension).

    Each row holds the text (or the id column when the data names one), the predicted label, its
    probability, and every class's probability (`prob_<label>`), all temperature-scaled (see
    `model.calibrate`). A multi-label model writes `labels` (the names that passed their thresholds,
    joined by data.label_separator), `prob_<label>` and `pred_<label>` (0/1) instead. With several
    devices rank 0 gathers every rank's rows and writes the file.

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
        super().__init__(write_interval="epoch")
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

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        idx = torch.cat([p["idx"] for p in predictions])
        probs = torch.cat([p["probs"] for p in predictions])
        rows, probs = gather_in_order(idx, probs)  # collectives under DDP: every rank takes part,
        target = self._target(trainer)  # in trainer.log_dir too
        if not trainer.is_global_zero:
            return
        inputs = trainer.datamodule.predict_frame.iloc[rows]
        separator = trainer.datamodule.hparams.label_separator  # how the training data joined label names
        options = {"uncertain_below": self.threshold(pl_module), "at_least_one": self.at_least_one}
        frame = pl_module.task.prediction_table(inputs, probs, separator=separator, **options)
        write_atomically(frame, target)
        self.written = target
        rank_zero_info(f"Wrote {len(frame)} predictions to {target}")
