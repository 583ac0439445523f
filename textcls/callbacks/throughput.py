"""Training speed and padding, logged each epoch and summed up when `fit` ends."""

import time

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info


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
