"""What a kind of task contributes to the test report (`ReportPart`), and the entries of metrics.json
that say what run produced the predictions (`run_record`)."""

from dataclasses import dataclass, field


@dataclass
class ReportPart:
    """A kind of task's part of a test report, whose own files (tables) it has already written.

    Attributes:
        metrics: Its entries of metrics.json, in their order, with an `alerts` entry where the alerts
            go (`compose_report` fills it) and the `run_record` where the run's record goes.
        alerts: What needs attention, found by the kind itself (after those of the comparison).
        figures: Figures by name, saved as `<name>.png` (and logged to TensorBoard by the callback).
        lines: report.md between its head (model, data, hyper-parameters) and the comparison.
    """

    metrics: dict
    alerts: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def run_record(info: dict) -> dict:
    """`train_seconds` and the `checkpoint` measured, where `info` has them."""
    record = {}
    if info.get("train_seconds") is not None:
        record["train_seconds"] = round(float(info["train_seconds"]), 1)
    if info.get("checkpoint"):
        record["checkpoint"] = info["checkpoint"]  # export and the app match reports on its sha256
    return record
