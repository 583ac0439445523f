"""textcls's own Lightning callbacks (`--checkpoint.*`, `--early_stopping.*`, `--lr_monitor.*`) and when
they give way to the user's Trainer settings, so that a Lightning config works as it does in Lightning."""

from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

# the config key of each, and the kind that one listed in trainer.callbacks replaces
OWN_CALLBACKS = {
    "checkpoint": ModelCheckpoint,
    "early_stopping": EarlyStopping,
    "lr_monitor": LearningRateMonitor,
}


def gives_way(key: str, trainer: dict) -> bool:
    """Whether textcls's own callback `key` steps aside: for the user's own of its kind in
    trainer.callbacks, or because a Trainer switch turns its kind off (`enable_checkpointing`, `logger`)."""
    kind = OWN_CALLBACKS.get(key)
    if kind is None:
        return False
    listed = trainer.get("callbacks") or []
    if any(isinstance(callback, kind) for callback in (listed if isinstance(listed, list) else [listed])):
        rank_zero_info(f"Using the {kind.__name__} in trainer.callbacks instead of textcls's (--{key}.*)")
        return True
    if key == "checkpoint":
        return trainer.get("enable_checkpointing") is False
    return key == "lr_monitor" and trainer.get("logger") in (False, [])  # no logger: nothing to log to
