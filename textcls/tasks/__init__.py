"""Kinds of task: what differs between one label per text and several, in one module per kind.

Each module is named by the Hugging Face `problem_type` its models carry in their config, and holds one
class that owns everything that differs: how labels become training targets, the loss and its
"balanced" weights, the per-stage metrics, the decision rule fitted on the validation split (a
temperature, or per-label thresholds) and how probabilities become decisions, the prediction table,
and its sections of the data check, the test report and the baseline comparison.

- `single_label.py`: `SingleLabel` (`single_label_classification`): softmax, cross-entropy, a
  temperature and a confidence cut-off.
- `multi_label.py`: `MultiLabel` (`multi_label_classification`): a sigmoid per label, binary
  cross-entropy, one threshold per label.
- `regression.py`: `Regression` (`regression`): one output, MSE on standardised targets, a number
  per text.

The rest of textcls asks the task (`Task` says what it can ask) instead of branching on the kind; a new
kind of task is one more module here, with its tests, and one more entry in `KINDS`.
"""

import inspect
from collections.abc import Mapping
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from torchmetrics import MetricCollection

from textcls.data.io import DataError
from textcls.tasks.multi_label import MultiLabel
from textcls.tasks.regression import Regression
from textcls.tasks.single_label import SingleLabel

KINDS = {kind.problem_type: kind for kind in (SingleLabel, MultiLabel, Regression)}


class Task(Protocol):
    """What every kind of task answers (see `SingleLabel` for what each method does)."""

    problem_type: str
    label_names: list[str]
    checkpoint_key: str  # where the fitted decision rule is kept in a checkpoint
    rule_file: str  # and in an exported folder

    # data
    def label_columns(self, settings: Mapping) -> dict[str, str]: ...
    def read_labels(
        self, source: pd.DataFrame, clean: pd.DataFrame, split: str, settings: Mapping
    ) -> pd.Series: ...
    def names_in(self, labels: pd.Series) -> list[str]: ...
    def counts(self, labels: pd.Series, names: list[str]) -> list[int]: ...
    def targets(self, labels: pd.Series, names: list[str]) -> np.ndarray: ...
    def split(self, labels: pd.Series, fractions: dict, seed: int) -> tuple[dict, list[str]]: ...
    def check_train(self, labels: pd.Series) -> None: ...

    # the model
    def loss(self, logits: torch.Tensor, targets: torch.Tensor, weight, smoothing: float) -> torch.Tensor: ...
    def balanced_weights(self, counts: list[int], rows: int) -> torch.Tensor: ...
    def stage_metrics(self, prefix: str) -> MetricCollection: ...
    def probabilities(self, logits: torch.Tensor) -> torch.Tensor: ...

    # decisions
    def fit_rule(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[dict, dict[str, str]]: ...
    def rule_state(self) -> dict | None: ...
    def load_rule(self, state: dict | None) -> None: ...
    def prediction_table(self, inputs: pd.DataFrame, probs, **options) -> pd.DataFrame: ...
    def fit_baseline(self, classifier, x: dict, y: dict, seed: int, features: str, start: float) -> tuple: ...
    def baseline_skips(self, method: str, pairs: bool = False) -> str | None: ...
    def baseline_summary(self, metrics: dict) -> str: ...
    def check_header(self) -> dict: ...
    def check_words(self) -> dict[str, str]: ...
    def check_split_stats(self, labels: pd.Series) -> dict: ...
    def check_report(self, frames: dict[str, pd.DataFrame]) -> dict: ...
    def check_problems(self, splits: dict) -> list[dict]: ...
    def check_lines(self, report: dict) -> list[str]: ...
    def rule_json(self) -> str | None: ...
    def agreement(self, reference: np.ndarray, other: np.ndarray) -> tuple[float, str]: ...
    def export_weights(self, model) -> None: ...
    def card_use(self, backbone: str, remote: str, pairs: bool = False) -> list[str]: ...
    def card_rule(self) -> list[str]: ...
    def card_data_keys(self) -> list[str]: ...
    def rule_facts(self) -> dict: ...

    explains_mistakes: bool  # the test report explains its most confident mistakes
    report_figure: str  # the figure the end of `test` points to

    def raw_probabilities(self, logits: torch.Tensor) -> torch.Tensor | None: ...
    def report_settings(self) -> dict: ...
    def report_part(self, folder, test: pd.DataFrame, probs: np.ndarray, info: dict, **options): ...
    def report_module(self): ...

    headline: tuple[str, str]


SINGLE_LABEL = SingleLabel.problem_type


def problem_type_of(settings: Mapping) -> str:
    """The `problem_type` that data settings, a checkpoint's hyper-parameters or an exported folder's
    config name: `problem_type` itself where given, else `multi_label` (the config switch) decides."""
    named, multi = settings.get("problem_type"), MultiLabel.problem_type
    if named and named not in KINDS:
        raise DataError(f"data.problem_type must be one of {', '.join(KINDS)}, got '{named}'")
    if named and settings.get("multi_label") and named != multi:
        raise DataError(
            f"data.multi_label true means {multi}, but data.problem_type is '{named}': set one of them"
        )
    if named:
        return named
    return multi if settings.get("multi_label") else SINGLE_LABEL


def task_for(settings: Mapping, label_names: list[str] | None = None, **options) -> Task:
    """The task of these settings (see `problem_type_of`), for `label_names`; `options` are the
    kind's own (e.g. `threshold` for multi-label, `calibrate` for single-label)."""
    kind = KINDS[problem_type_of(settings)]
    accepted = inspect.signature(kind).parameters
    return kind(list(label_names or []), **{k: v for k, v in options.items() if k in accepted})
