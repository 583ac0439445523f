"""The Lightning callbacks the CLI adds to every run: prediction writing, throughput, and faults
(interrupts and non-finite losses). The data check and the test report are callbacks too; they live
with the checks and the report they run (`textcls/checks.py`, `textcls/report.py`)."""

from textcls.callbacks.faults import FiniteLossCheck, NonFiniteLossError, ResumeCheckpoint
from textcls.callbacks.throughput import ThroughputLogger
from textcls.callbacks.writer import PredictionError, PredictionWriter

__all__ = [
    "FiniteLossCheck",
    "NonFiniteLossError",
    "PredictionError",
    "PredictionWriter",
    "ResumeCheckpoint",
    "ThroughputLogger",
]
