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

from textcls.tasks.multi_label import MultiLabel
from textcls.tasks.single_label import SingleLabel

KINDS = {kind.problem_type: kind for kind in (SingleLabel, MultiLabel)}


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

    explains_mistakes: bool  # the test report explains its most confident mistakes
    report_figure: str  # the figure the end of `test` points to

    def raw_probabilities(self, logits: torch.Tensor) -> torch.Tensor | None: ...
    def report_settings(self) -> dict: ...
    def report_part(self, folder, test: pd.DataFrame, probs: np.ndarray, info: dict, **options): ...
    def comparison_table(self, rows: list[dict]) -> pd.DataFrame: ...
    def length_score(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]: ...


SINGLE_LABEL = SingleLabel.problem_type


def problem_type_of(settings: Mapping) -> str:
    """The `problem_type` that data settings, a checkpoint's hyper-parameters or an exported folder's
    config name: `problem_type` itself where given, else `multi_label` (the config switch) decides."""
    named = settings.get("problem_type")
    if named:
        return named
    return MultiLabel.problem_type if settings.get("multi_label") else SINGLE_LABEL


def task_for(settings: Mapping, label_names: list[str] | None = None, **options) -> Task:
    """The task of these settings (see `problem_type_of`), for `label_names`; `options` are the
    kind's own (e.g. `threshold` for multi-label, `calibrate` for single-label)."""
    kind = KINDS[problem_type_of(settings)]
    accepted = inspect.signature(kind).parameters
    return kind(list(label_names or []), **{k: v for k, v in options.items() if k in accepted})
