"""Callbacks: the prediction writer and the training throughput report."""

import os
import time
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info

UNCERTAIN = "UNCERTAIN"
# below this top probability a prediction is UNCERTAIN, in `predict` and in the app (0 = never)
DEFAULT_UNCERTAIN_BELOW = 0.0
OUTPUT_FORMATS = (".csv", ".jsonl", ".json", ".parquet")


class PredictionError(ValueError):
    """Predictions that cannot be written as asked (output path, format, threshold)."""


def write_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV, JSONL or Parquet (by extension) to a temporary name, then rename: never a half-written
    file."""
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
    """Writes `predict` results: one row per input, in input order, as CSV, JSONL or Parquet (by extension).

    Each row holds the text (or the id column when the data names one), the predicted label, its
    probability, and every class's probability (`prob_<label>`). With several devices each rank
    writes its part and rank 0 joins them.

    Args:
        output_path: Where to write; default `predictions.csv` in the run's log folder.
        uncertain_below: Label rows whose top probability is below this as UNCERTAIN (0 = never).
    """

    def __init__(self, output_path: str | None = None, uncertain_below: float = DEFAULT_UNCERTAIN_BELOW):
        super().__init__(write_interval="epoch")
        if not 0 <= uncertain_below <= 1:
            raise PredictionError(f"prediction.uncertain_below must be in [0, 1], got {uncertain_below}")
        if output_path and Path(output_path).suffix.lower() not in OUTPUT_FORMATS:
            raise PredictionError(
                f"prediction.output_path '{output_path}': predictions are written as "
                f"{', '.join(OUTPUT_FORMATS)} (by extension), not '{Path(output_path).suffix}'"
            )
        self.output_path, self.uncertain_below = output_path, uncertain_below
        self.written: Path | None = None

    def _target(self, trainer: L.Trainer) -> Path:
        if self.output_path:
            return Path(self.output_path)
        return Path(trainer.log_dir or ".") / "predictions.csv"

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        target = self._target(trainer)
        if not target.parent.is_dir():
            raise PredictionError(f"the folder of the output file '{target}' does not exist: create it first")

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        idx = torch.cat([p["idx"] for p in predictions]).cpu()
        probs = torch.cat([p["probs"] for p in predictions]).cpu()
        target = self._target(trainer)
        part = target.with_name(f".{target.name}.rank{trainer.global_rank}.pt")
        if trainer.world_size > 1:
            torch.save({"idx": idx, "probs": probs}, part)
            trainer.strategy.barrier()
        if trainer.is_global_zero:
            if trainer.world_size > 1:
                parts = [target.with_name(f".{target.name}.rank{r}.pt") for r in range(trainer.world_size)]
                loaded = [torch.load(p, weights_only=True) for p in parts]
                idx = torch.cat([p["idx"] for p in loaded])
                probs = torch.cat([p["probs"] for p in loaded])
                for p in parts:
                    p.unlink()
            frame = self.frame(trainer.datamodule.predict_frame, idx, probs, pl_module.label_names)
            write_atomically(frame, target)
            self.written = target
            rank_zero_info(f"Wrote {len(frame)} predictions to {target}")
        if trainer.world_size > 1:
            trainer.strategy.barrier()

    def frame(
        self, inputs: pd.DataFrame, idx: torch.Tensor, probs: torch.Tensor, label_names
    ) -> pd.DataFrame:
        """Predictions as a frame in input order; distributed samplers may repeat rows, kept once."""
        order = pd.Series(range(len(idx)), index=idx.numpy()).groupby(level=0).first().sort_index()
        probs = probs[torch.as_tensor(order.to_numpy().copy())]
        confidence, best = probs.max(-1)
        label = [label_names[i] for i in best.tolist()]
        if self.uncertain_below:
            label = [
                UNCERTAIN if c < self.uncertain_below else lab
                for lab, c in zip(label, confidence.tolist(), strict=True)
            ]
        rows = inputs.iloc[order.index.to_numpy()]
        out = pd.DataFrame({"id": rows["id"]} if "id" in rows else {"text": rows["text"]}).reset_index(
            drop=True
        )
        out["label"] = label
        out["confidence"] = confidence.numpy()
        for j, name in enumerate(label_names):
            out[f"prob_{name}"] = probs[:, j].numpy()
        return out


class ThroughputLogger(L.Callback):
    """Logs training speed and padding each epoch and prints a one-line summary when `fit` ends.

    Logged per epoch: `train/samples_per_sec`, `train/tokens_per_sec` (real, non-padding tokens) and
    `train/padding_efficiency` (real tokens / padded tokens). Time counts training batches only
    (data loading included), not validation or checkpointing; counts are summed over all devices.

    Args:
        enabled: Measure and log (on by default; it costs one small sum per batch).
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.totals = {"samples": 0.0, "real": 0.0, "padded": 0.0, "seconds": 0.0}

    def _restart_clock(self) -> None:
        self._last = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch = torch.zeros(3, dtype=torch.long, device=pl_module.device)  # samples, real, padded
        self._seconds = 0.0
        self._restart_clock()

    # a run resumed mid-epoch starts without on_train_epoch_start
    on_train_start = on_train_epoch_start

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restart_clock()  # validation inside an epoch is not training time

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if not self.enabled:
            return
        mask = batch["attention_mask"]
        # summed on the device: no host sync per step, one transfer per epoch
        self._epoch += torch.stack(
            [mask.new_tensor(mask.shape[0]), mask.sum(), mask.new_tensor(mask.numel())]
        )
        now = time.perf_counter()
        self._seconds += now - self._last
        self._last = now

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled or self._seconds == 0:
            return
        counts = trainer.strategy.reduce(self._epoch, reduce_op="sum").cpu()
        clock = torch.tensor(self._seconds, device=pl_module.device)
        seconds = float(trainer.strategy.reduce(clock, reduce_op="max"))
        samples, real, padded = counts.tolist()
        for key, value in zip(
            ("samples", "real", "padded", "seconds"), (samples, real, padded, seconds), strict=True
        ):
            self.totals[key] += value
        pl_module.log_dict(
            {
                "train/samples_per_sec": samples / seconds,
                "train/tokens_per_sec": real / seconds,
                "train/padding_efficiency": real / max(padded, 1),
            },
            on_epoch=True,
        )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled and self.totals["seconds"] > 0:
            rank_zero_info(self.summary())

    def summary(self) -> str:
        """One line: samples/s, real tokens/s and padding efficiency over the whole fit."""
        t = self.totals
        return (
            f"Training throughput: {t['samples'] / t['seconds']:.1f} samples/s, "
            f"{t['real'] / t['seconds']:.0f} tokens/s, padding efficiency {t['real'] / max(t['padded'], 1):.1%} "
            f"({int(t['samples'])} samples in {t['seconds']:.1f} s of training steps)"
        )
