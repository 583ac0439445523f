"""Faults during training: interrupts leave a resumable checkpoint, a non-finite loss stops the run.

Both callbacks are always on (the CLI adds them); they do nothing outside `fit`.
"""

import random
import signal
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from textcls.precision import HALF_WEIGHTS, HALF_WEIGHTS_MESSAGE


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class FiniteLossCheck(Callback):
    """Stops training, before the weights are touched, as soon as the training loss is NaN or infinite."""

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        if torch.isfinite(loss).all():
            return
        raise NonFiniteLossError(
            f"the training loss became {loss.item()} at step {trainer.global_step} (epoch "
            f"{trainer.current_epoch}, batch {trainer.fit_loop.epoch_loop.batch_idx}): "
            f"{_advice(trainer.precision)}; the last checkpoint before this is still usable"
        )


def _advice(precision: str) -> str:
    """What to change: the precision only where it can be the cause (fp16's range, half-precision weights)."""
    if precision in HALF_WEIGHTS:
        return HALF_WEIGHTS_MESSAGE.format(precision=precision)
    advice = "lower model.learning_rate or set trainer.gradient_clip_val=1.0"
    if precision == "16-mixed":
        advice += ", or use trainer.precision bf16-mixed or 32-true (fp16 overflows above 65504)"
    return advice


class ResumeCheckpoint(Callback):
    """On SIGTERM or Ctrl+C during `fit`, finishes the current batch and saves `last.ckpt` to resume from.

    The checkpoint goes where ModelCheckpoint saves (`<run>/checkpoints/last.ckpt`), so
    `fit --ckpt_path last` picks it up. It also carries the random number generators' states, which
    (with the data module's resumable training loader) makes a resumed run train exactly as an
    uninterrupted one would. A second Ctrl+C stops at once, without a checkpoint.
    """

    def __init__(self):
        self.saved: Path | None = None
        # Lightning's SIGTERM handler turns a first Ctrl+C into SIGTERMException: remember it was Ctrl+C
        self.interrupted_by_ctrl_c = False
        self._rng_to_restore: dict | None = None
        self._previous_sigint = None

    # ------------------------------------------------------------------ interrupts

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning stops cleanly between batches on SIGTERM: make the first Ctrl+C do the same.
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.interrupted_by_ctrl_c = True
        rank_zero_info("\nInterrupted: saving a checkpoint after this batch (Ctrl+C again to stop at once)")
        handler = signal.getsignal(signal.SIGTERM)
        if callable(handler):
            handler(signum, frame)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        interrupted = isinstance(exception, (SIGTERMException, KeyboardInterrupt))
        if not interrupted or trainer.state.fn != "fit" or trainer.global_step == 0:
            return
        self.saved = self._checkpoint_dir(trainer) / "last.ckpt"
        trainer.save_checkpoint(self.saved)
        rank_zero_info(f"Saved a checkpoint to resume from: {self.saved}")

    @staticmethod
    def _checkpoint_dir(trainer: L.Trainer) -> Path:
        callback = trainer.checkpoint_callback
        if callback is not None and getattr(callback, "dirpath", None):
            return Path(callback.dirpath)
        return Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints"

    # ------------------------------------------------------------------ random state

    def state_dict(self) -> dict:
        state = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self._rng_to_restore = state_dict

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int
    ) -> None:
        # Restored here, not on load: setting up and the sanity check draw random numbers that the
        # uninterrupted run did not draw at this point.
        if self._rng_to_restore is None:
            return
        state, self._rng_to_restore = self._rng_to_restore, None
        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
