"""The test report: metrics.json, report.md, tables and figures of a classifier's test predictions.

- `compose.py`: `compose_report`, which composes the report from its sections and writes metrics.json
  and report.md once; `load_baseline_metrics` (the comparison's rows).
- `part.py`: `ReportPart`, what a kind of task contributes; `run_record`.
- one module per kind of task, named as its task in textcls/tasks/ and imported by it: that kind's
  metrics, tables, figures, report.md sections, comparison columns and score by length.
- `by_length.py`: the score by quartile of text length.
- `markdown.py`: the markdown pieces every report shares (tables, head, alerts).
- `callback.py`: `TestReport`, which writes the report after `test`.

`TestReport` is imported on first use: the callback brings Lightning, and the tasks import this
package's per-kind modules.
"""

from textcls.report.compose import BASELINES_FOLDER, compose_report, load_baseline_metrics

__all__ = ["BASELINES_FOLDER", "TestReport", "compose_report", "load_baseline_metrics"]


def __getattr__(name: str):
    if name == "TestReport":
        from textcls.report.callback import TestReport

        return TestReport
    raise AttributeError(f"module 'textcls.report' has no attribute '{name}'")
