"""The training time of `fit`, kept across resumes: each checkpoint carries it as `train_seconds`."""

import time

import lightning as L
from lightning.pytorch.utilities import rank_zero_info


class TrainingTime(L.Callback):
    """Times `fit` and stores the time up to each checkpoint in it as `train_seconds`, which the test
    report shows. A resumed fit adds the time its checkpoint carries (that of the runs before it)."""

    def __init__(self):
        self._start: float | None = None
        self._before = 0.0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._before = 0.0

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if trainer.state.fn == "fit":  # resuming
            self._before = float(checkpoint.get("train_seconds") or 0.0)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if self._start is not None:
            checkpoint["train_seconds"] = self._before + time.perf_counter() - self._start

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._start is None:
            return
        took = time.perf_counter() - self._start
        message = f"fit took {took:.1f} s"
        if self._before:
            message += f" ({self._before + took:.1f} s with the training it resumed)"
        rank_zero_info(message)
