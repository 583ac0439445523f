"""The test report composed from its sections, its two summary files written once.

`compose_report` writes the report of any classifier's test predictions (the fine-tuned model through
the `TestReport` callback, the baselines through textcls/baseline/), so they are comparable. The
task (textcls/tasks/) gives its part (its metrics, tables, figures and report.md lines, see
`ReportPart`) and its columns of the comparison; this module adds the alerts, the comparison, the
score by text length (textcls/report/by_length.py), and writes metrics.json and report.md.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from textcls.report.by_length import by_length_section
from textcls.report.markdown import beaten_by, markdown_head, md_table

if TYPE_CHECKING:  # the tasks import this package's per-kind modules when they run
    from textcls.tasks import Task

BASELINES_FOLDER = "baselines"


def compose_report(
    folder: Path,
    task: "Task",
    test: pd.DataFrame,
    probs: np.ndarray,
    info: dict,
    comparison: list[dict] | None = None,
    *,
    raw_probs: np.ndarray | None = None,
    target_precision: float | None = None,
    lengths: np.ndarray | None = None,
    separator: str | None = None,
) -> tuple[dict, dict]:
    """Write the test report of `task`'s predictions `probs` (rows of `test`, in order) into `folder`.

    Files: the task's tables and figures (.png), by_length.csv with `lengths`, metrics.json and
    report.md (head, the task's sections, the comparison, the score by length).

    Args:
        folder: Where to write (created).
        task: What the predictions are (textcls/tasks/): its label names and decision rule.
        test: The test rows: `text`, `label` and `row` (the row number in the source file).
        probs: The task's probabilities, one row per test row, columns in `task.label_names` order.
        info: What produced the predictions: `model` (a name), and optionally `description`,
            `hyperparameters` (dict), `splits` ({split: {label: count}}), `split_rows` ({split:
            rows}), `train_seconds`, and `checkpoint` ({"path", "sha256"} of the checkpoint
            measured, recorded in metrics.json).
        comparison: Metrics of other models on the same rows (e.g. the baselines); when given,
            report.md ends with a table comparing them with these predictions.
        raw_probs: The probabilities before calibration (the task's `raw_probabilities`); when
            given, the report measures the calibration.
        target_precision: The target precision whose validation cut-off the report measures.
        lengths: Each test text's full length in tokens: adds the score by text length.
        separator: What joins label names in the files (default: the task's).

    Returns:
        The metrics dict and the figures by name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    options = {"raw_probs": raw_probs, "target_precision": target_precision, "separator": separator}
    part = task.report_part(folder, test, probs, info, **options)
    metrics = {"model": info["model"], **part.metrics}
    metrics["alerts"] = beaten_by(metrics, comparison, *task.headline) + part.alerts
    for name, figure in part.figures.items():
        figure.savefig(folder / f"{name}.png", dpi=100)
    lines = markdown_head(info, task.label_names, metrics["alerts"]) + part.lines
    if comparison:
        table = task.report_module().comparison_table([*comparison, metrics])
        lines += ["## Comparison on the same test rows", "", md_table(table), ""]
    markdown = "\n".join(lines)
    if lengths is not None:
        y_true, y_pred = task.targets(test["label"], task.label_names), task.decisions(probs)
        score = task.report_module().length_score
        table, length_lines = by_length_section(folder, lengths, y_true, y_pred, score)
        metrics["by_length"] = table.to_dict(orient="records")
        markdown += "\n" + "\n".join(length_lines)  # the last section, after a blank line
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (folder / "report.md").write_text(markdown)
    return metrics, part.figures


def load_baseline_metrics(root: Path) -> list[dict]:
    """The metrics.json of each baseline written under `root/baselines/` (by `textcls baseline`)."""
    return [json.loads(p.read_text()) for p in sorted((root / BASELINES_FOLDER).glob("*/metrics.json"))]
