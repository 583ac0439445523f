"""One label per text (`single_label_classification`): a softmax over the classes, cross-entropy, and a
temperature fitted on the validation split (textcls/calibration.py) that also turns a target precision
into a confidence cut-off."""

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from textcls.calibration import Calibration, calibrate, calibrated_probs
from textcls.checkpoint import CALIBRATION_FILE
from textcls.data.io import DataError, label_sort_key
from textcls.data.split import stratified_split
from textcls.predictions import prediction_table


class SingleLabel:
    """A classifier that gives each text one of its classes.

    Args:
        label_names: Class names in index order.
        calibrate: Fit a temperature on the validation split (`fit_rule`); false keeps the raw softmax.
        calibration: The temperature and validation record the model carries (None: raw softmax, no
            record to choose a confidence cut-off from).
    """

    problem_type = "single_label_classification"
    checkpoint_key = "calibration"
    rule_file = CALIBRATION_FILE
    # a fit's validation metrics are updated batch by batch, as test's are
    scored_at_validation_end = False
    monitor = {
        "monitor": "val/f1_macro",
        "mode": "max",
    }  # what "best" means, for checkpoints and early stopping
    min_labels = 2

    def __init__(
        self, label_names: list[str], calibrate: bool = True, calibration: Calibration | None = None
    ):
        self.label_names, self.calibrate, self.calibration = list(label_names), calibrate, calibration

    # ------------------------------------------------------------------ data

    def label_columns(self, settings: Mapping) -> dict[str, str]:
        """The source column the data cleaning reads and normalises as `label`."""
        return {"label": settings["label_column"]}

    def read_labels(
        self, source: pd.DataFrame, clean: pd.DataFrame, split: str, settings: Mapping
    ) -> pd.Series:
        """Each cleaned row's label: the label column as cleaned (a string)."""
        return clean["label"]

    def names_in(self, labels: pd.Series) -> list[str]:
        """The classes that occur, sorted."""
        return sorted(labels.unique().tolist(), key=label_sort_key)

    def occurrences(self, labels: pd.Series) -> pd.Series:
        """One entry per (text, label), indexed by row: the labels themselves."""
        return labels

    def counts(self, labels: pd.Series, names: list[str]) -> list[int]:
        """Texts of each class, in `names` order."""
        counts = labels.value_counts()
        return [int(counts.get(name, 0)) for name in names]

    def targets(self, labels: pd.Series, names: list[str]) -> np.ndarray:
        """Class indices (int64), what cross-entropy takes."""
        index = {name: i for i, name in enumerate(names)}
        return labels.map(index).to_numpy(dtype=np.int64)

    def split(self, labels: pd.Series, fractions: dict[str, float], seed: int) -> tuple[dict, list[str]]:
        """Row indices per split, stratified by class, and the classes too small to split."""
        return stratified_split(labels, fractions, seed)

    def check_train(self, labels: pd.Series) -> None:
        """Refuse training data with a single class."""
        if labels.nunique() < 2:
            raise DataError(
                f"the training data has a single class ('{labels.iloc[0]}'): a classifier needs at least two"
            )

    # ------------------------------------------------------------------ data check

    def check_header(self) -> dict:
        """What data_check.json says of the kind, before its splits."""
        return {"multi_label": False}

    def check_words(self) -> dict[str, str]:
        """What a training count counts (`examples`) and what the counts are of (`class`)."""
        return {"examples": "examples", "class": "class"}

    def check_split_stats(self, labels: pd.Series) -> dict:
        """Nothing beyond the class counts every kind reports."""
        return {}

    def check_report(self, frames: dict[str, pd.DataFrame]) -> dict:
        """Nothing beyond the splits and problems every kind reports."""
        return {}

    def check_problems(self, splits: dict) -> list[dict]:
        """Nothing beyond the problems every kind is checked for."""
        return []

    def check_lines(self, report: dict) -> list[str]:
        """Nothing beyond the printed lines every kind has."""
        return []

    # ------------------------------------------------------------------ the model

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None, smoothing: float
    ) -> torch.Tensor:
        """Cross-entropy with class weights and label smoothing, in fp32."""
        return F.cross_entropy(logits.float(), targets, weight=weight, label_smoothing=smoothing)

    def balanced_weights(self, labels: pd.Series) -> torch.Tensor:
        """scikit-learn's "balanced" class weights of the training `labels`, n_samples / (n_classes *
        count); absent classes get 0."""
        counts = torch.tensor(self.counts(labels, self.label_names), dtype=torch.float)
        return counts.sum() / (len(counts) * counts.clamp(min=1)) * (counts > 0)

    def init_head(self, model, labels: pd.Series) -> None:
        """Nothing to learn from the training labels before training: a softmax head starts unbiased."""

    def stage_metrics(self, prefix: str) -> MetricCollection:
        return stage_metrics(len(self.label_names), prefix)

    def metric_inputs(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the metrics are updated with: the logits and the class indices."""
        return logits, targets

    # ------------------------------------------------------------------ decisions

    @property
    def temperature(self) -> float:
        return self.calibration.temperature if self.calibration is not None else 1.0

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """softmax(logits / temperature) in fp32."""
        return calibrated_probs(logits, self.temperature)

    def decisions(self, probs: torch.Tensor | np.ndarray) -> np.ndarray:
        """The class index each text gets: its most probable."""
        return np.asarray(probs).argmax(-1)

    def fit_rule(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[dict, dict[str, str]]:
        """Calibrate on the validation rows: the values to log and what to tell the user (once)."""
        self.calibration = calibrate(logits, targets.long().flatten(), fit=self.calibrate)
        notes = {}
        if self.calibration.note:
            notes["temperature"] = f"Calibration: {self.calibration.note}: temperature 1, the raw softmax"
        return {"val/temperature": self.calibration.temperature}, notes

    # ------------------------------------------------------------------ export, model card and app

    def rule_json(self) -> str | None:
        """calibration.json's text: the calibration (None: there is none, and no file)."""
        if self.calibration is None:
            return None
        return json.dumps(self.calibration.to_dict(tensors=False))

    def agreement(self, reference: np.ndarray, other: np.ndarray) -> tuple[float, str]:
        """The share of texts whose decisions two runs of the model (PyTorch and ONNX) agree on, and in words."""
        same = np.asarray(self.decisions(reference) == self.decisions(other))
        # one decision per text, or one per (text, label): a text agrees when all of its decisions do
        share = float(same.all(axis=tuple(range(1, same.ndim))).mean()) if len(same) else 1.0
        return share, f"on the labels of {share:.2%} of {len(same)} texts"

    def export_weights(self, model) -> None:
        """Nothing to change: the network's logits are what a folder's `pipeline` reads."""

    def card_use(self, backbone: str, remote: str, pairs: bool = False) -> list[str]:
        """The model card's opening line and `pipeline` snippet (`remote`: `pipeline`'s extra arguments)."""
        from textcls.model_card.single_label import use_lines  # lazily: importing a task stays light

        return use_lines(self.label_names, backbone, remote, pairs)

    def card_rule(self) -> list[str]:
        """The model card's section on the decision rule: the calibration, where there is one."""
        from textcls.model_card.single_label import confidence_lines  # lazily: importing a task stays light

        return confidence_lines(self.calibration)

    def card_data_keys(self) -> list[str]:
        """The data settings the model card lists besides every model's: none."""
        return []

    def rule_facts(self) -> dict:
        """The decision rule, as the app's model facts show it."""
        return {"Temperature": self.temperature}

    def rule_state(self, tensors: bool = True) -> dict | None:
        """The calibration, for a checkpoint (tensors) or calibration.json; None when there is no record."""
        if self.calibration is None or self.calibration.confidence is None:
            return None
        return self.calibration.to_dict(tensors)

    def load_rule(self, state: dict | None) -> None:
        """The calibration a checkpoint or folder carries (none: the raw softmax)."""
        self.calibration = Calibration.from_dict(state)

    # ------------------------------------------------------------------ baselines

    def fit_baseline(
        self, classifier: tuple, x: dict, y: dict, seed: int, features: str, start: float
    ) -> tuple[np.ndarray, dict, "SingleLabel"]:
        """A trained baseline (textcls/baseline/trained.py): its hyper-parameter chosen on validation
        macro F1; its test probabilities, report info, and the task that reports them (raw softmax)."""
        # lazily: importing a task stays light
        from textcls.baseline.trained import select_on_validation

        n_labels = len(self.label_names)
        probs, info = select_on_validation(classifier, x, y, n_labels, seed, features, start)
        return probs, info, SingleLabel(self.label_names)

    def baseline_skips(self, method: str, pairs: bool = False) -> str | None:
        """Every baseline gives one label per text; for pairs of texts, the zero-shot ones (which compare
        one text with label descriptions) are skipped."""
        if pairs and method.startswith("zero_shot"):
            return "it compares one text with label descriptions and this data has pairs of texts"
        return None

    def baseline_summary(self, metrics: dict) -> str:
        """The test scores printed for a baseline."""
        return f"accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['f1_macro']:.4f}"

    def refuses(self, options: list[str]) -> str | None:
        """Every decision option applies to one label per text."""
        return None

    # ------------------------------------------------------------------ the test report

    explains_mistakes = True  # the test report explains its most confident mistakes
    headline = ("f1_macro", "macro F1")  # the score a baseline that beats the model is flagged on
    report_figure = "confusion_matrix"  # the figure the end of `test` points to

    def raw_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """The softmax before the temperature: the test report measures what calibration did."""
        return calibrated_probs(logits)

    def report_settings(self) -> dict:
        """Nothing for the report's hyper-parameters: the temperature is among its metrics."""
        return {}

    def report_part(self, folder, test, probs, info, raw_probs=None, target_precision=None, separator=None):
        """Its part of the test report: per-class table, confusion matrix, mistakes, and the calibration
        when `raw_probs` are given (textcls/report/single_label.py)."""
        # lazily: importing a task stays light
        from textcls.report.single_label import report_part

        args = (folder, test, probs, self.label_names, info)
        return report_part(*args, self.calibration, raw_probs, target_precision)

    def report_module(self):
        """The report module of this kind (textcls/report/single_label.py): its `comparison_table` (the columns
        of the comparison with other models) and `length_score` (a group of texts' score: accuracy)."""
        import textcls.report.single_label as module  # lazily: importing a task stays light

        return module

    def prediction_table(
        self, inputs: pd.DataFrame, probs, uncertain_below: float = 0.0, **other
    ) -> pd.DataFrame:
        """`text` (or `id`), `label` (UNCERTAIN below `uncertain_below`), `confidence`, `prob_<label>`.
        Options of other kinds of task (`other`) do not apply."""
        return prediction_table(inputs, probs, self.label_names, uncertain_below)


def stage_metrics(num_labels: int, prefix: str) -> MetricCollection:
    """Accuracy, macro/weighted F1 and macro precision/recall, logged as `<prefix>acc`, `<prefix>f1_macro`,
    ... (macro averages over the classes present, as textcls/metrics.py explains)."""
    kw = {"num_classes": num_labels}
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(average="micro", **kw),
            "f1_macro": MulticlassF1Score(average="macro", **kw),
            "f1_weighted": MulticlassF1Score(average="weighted", **kw),
            "precision_macro": MulticlassPrecision(average="macro", **kw),
            "recall_macro": MulticlassRecall(average="macro", **kw),
        },
        prefix=prefix,
    )
