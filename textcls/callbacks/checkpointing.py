"""The checkpoints of `fit`: `best.ckpt` on the monitored score, `last.ckpt` after every validation."""

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class BestAndLastCheckpoint(ModelCheckpoint):
    """Checkpoints: the best on the monitored score and, with `save_last: true`, the last after every validation.

    Lightning's ModelCheckpoint, except that `save_last: true` writes `last.ckpt` after every validation
    (after every training epoch when there is none), whether or not the score improved. Lightning 2.6 writes `last.ckpt` only along with a top-k checkpoint: with a monitor it holds the
    best epoch, and resuming from it would train the later epochs again. `save_last: link` keeps
    Lightning's meaning (a link to the newest top-k checkpoint).
    """

    @property
    def state_key(self) -> str:
        # Lightning's own key: checkpoints written before this class keep their best score on resume
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last(trainer)

    def _save_last(self, trainer: L.Trainer) -> None:
        # skipped when Lightning saved at this step (it then wrote last.ckpt too), outside fit and in the
        # sanity check
        if self.save_last is True and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
