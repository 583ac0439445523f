"""Callbacks: the prediction writer."""

import os
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info

UNCERTAIN = "UNCERTAIN"


def write_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV or JSONL (by extension) to a temporary name, then rename: never a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        if path.suffix.lower() in (".jsonl", ".json"):
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class PredictionWriter(BasePredictionWriter):
    """Writes `predict` results: one row per input, in input order, as CSV or JSONL (by extension).

    Each row holds the text (or the id column when the data names one), the predicted label, its
    probability, and every class's probability (`prob_<label>`). With several devices each rank
    writes its part and rank 0 joins them.

    Args:
        output_path: Where to write; default `predictions.csv` in the run's log folder.
        uncertain_below: Label rows whose top probability is below this as UNCERTAIN (0 = never).
    """

    def __init__(self, output_path: str | None = None, uncertain_below: float = 0.0):
        super().__init__(write_interval="epoch")
        if not 0 <= uncertain_below <= 1:
            raise ValueError(f"uncertain_below must be in [0, 1], got {uncertain_below}")
        self.output_path, self.uncertain_below = output_path, uncertain_below
        self.written: Path | None = None

    def _target(self, trainer: L.Trainer) -> Path:
        if self.output_path:
            return Path(self.output_path)
        return Path(trainer.log_dir or ".") / "predictions.csv"

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        target = self._target(trainer)
        if not target.parent.is_dir():
            raise FileNotFoundError(
                f"the folder of the output file '{target}' does not exist: create it first"
            )
        if target.suffix.lower() not in (".csv", ".jsonl", ".json"):
            raise ValueError(f"predictions can be written as .csv or .jsonl, not '{target.suffix}'")

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
