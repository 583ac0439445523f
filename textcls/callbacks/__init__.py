"""The Lightning callbacks the CLI adds to every run: checkpoints, prediction writing, throughput, the
training time, and faults (interrupts and non-finite losses). The data check and the test report are
callbacks too; they live with the checks and the report they run (`textcls/checks/`,
`textcls/report/`). `defaults.py` says when textcls's own give way to a user's Trainer settings."""

from textcls.callbacks.checkpointing import BestAndLastCheckpoint
from textcls.callbacks.faults import FiniteLossCheck, NonFiniteLossError, ResumeCheckpoint
from textcls.callbacks.throughput import ThroughputLogger
from textcls.callbacks.timing import TrainingTime
from textcls.callbacks.writer import PredictionError, PredictionWriter

__all__ = [
    "BestAndLastCheckpoint",
    "FiniteLossCheck",
    "NonFiniteLossError",
    "PredictionError",
    "PredictionWriter",
    "ResumeCheckpoint",
    "ThroughputLogger",
    "TrainingTime",
]
