"""The data check: what each split holds and what is wrong with it, before any training.

- `callback.py`: `DataCheck`, the callback at the start of `fit` and `textcls check-data`.
- `run.py`: `check_data`, the report: counts and token lengths per split, and the problems.
- `labels.py`: label and text problems (unseen labels, variants, small classes, empty and duplicate
  texts, leakage between splits).
- `lengths.py`: token lengths, windows per text and their cost, and the truncation warnings.
- `label_sets.py`: what multi-label data adds (labels per text, texts with no label, label pairs).
- `outputs.py`: the printed text, `data_check.json`, `split_rows.json` and `class_counts.png`.
- `problems.py`: a problem's fields, and the one-line error that stops `fit`.

What differs by kind of task comes from the task (its `check_*` methods, textcls/tasks/). The names
below are imported on first use: the tasks build their part from `label_sets.py`, and the check builds
on the data module and the tasks (see textcls/data/__init__.py).
"""

__all__ = [
    "CHART_FILE",
    "REPORT_FILE",
    "ROWS_FILE",
    "DataCheck",
    "check_data",
    "plot_class_counts",
    "raise_on_errors",
    "render",
    "write_outputs",
]


def __getattr__(name: str):
    if name == "DataCheck":
        from textcls.checks.callback import DataCheck

        return DataCheck
    if name == "check_data":
        from textcls.checks.run import check_data

        return check_data
    if name == "raise_on_errors":
        from textcls.checks.problems import raise_on_errors

        return raise_on_errors
    if name in ("CHART_FILE", "REPORT_FILE", "ROWS_FILE", "plot_class_counts", "render", "write_outputs"):
        from textcls.checks import outputs

        return getattr(outputs, name)
    raise AttributeError(f"module 'textcls.checks' has no attribute '{name}'")
