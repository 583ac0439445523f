"""Why this label: per-word explanations of a classifier's predictions (Integrated Gradients, Captum).

- `attributions`: the attributions themselves (`explain_texts`, `explain_predictor`) and what a model
  must be for them (`check_explainable`).
- `view`: an explanation (`Explanation`, `WordScore`) as shaded HTML, JSON and terminal lines.
- `mistakes`: the test report's explained mistakes (explanations.html).
- `command`: `textcls explain`.
"""

from textcls.explain.attributions import (
    DEFAULT_INTERNAL_BATCH,
    DEFAULT_STEPS,
    ExplainError,
    baseline_ids,
    check_explainable,
    explain_predictor,
    explain_texts,
    merge_words,
    text_positions,
)
from textcls.explain.command import TextFile, explain_cli, read_texts
from textcls.explain.mistakes import REPORT_STEPS, explain_mistakes
from textcls.explain.view import Explanation, WordScore

__all__ = [
    "DEFAULT_INTERNAL_BATCH",
    "DEFAULT_STEPS",
    "REPORT_STEPS",
    "ExplainError",
    "Explanation",
    "TextFile",
    "WordScore",
    "baseline_ids",
    "check_explainable",
    "explain_cli",
    "explain_mistakes",
    "explain_predictor",
    "explain_texts",
    "merge_words",
    "read_texts",
    "text_positions",
]
