"""A callback for tests: sends this process a real SIGTERM after a given optimizer step."""

import os
import signal

from lightning.pytorch.callbacks import Callback


class SigtermAtStep(Callback):
    """Sends SIGTERM to the own process once `trainer.global_step` reaches `step`."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


class SigintAtStep(SigtermAtStep):
    """Sends SIGINT (what Ctrl+C sends) to the own process once `trainer.global_step` reaches `step`."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)
