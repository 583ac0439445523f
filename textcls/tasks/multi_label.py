"""Any number of labels per text (`multi_label_classification`): a sigmoid per label, binary
cross-entropy, and one probability threshold per label tuned on the validation split
(textcls/thresholds.py). A text's labels are a sorted tuple of names (textcls/data/multilabel.py)."""

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelHammingDistance,
    MultilabelPrecision,
    MultilabelRecall,
)

from textcls.backbone import start_at_label_priors
from textcls.checkpoint import THRESHOLDS_FILE
from textcls.data.io import DataError
from textcls.data.multilabel import (
    iterative_split,
    multi_hot,
    names_of,
    positives,
    read_label_sets,
)
from textcls.metrics import compute_multilabel_scores
from textcls.predictions import label_set_table
from textcls.thresholds import Thresholds, cardinality_alert, decide, tune_thresholds

# "balanced" weights: a label in 1 text of 10,000 is not weighed 9,999 times
MAX_POS_WEIGHT = 100.0


class MultiLabel:
    """A classifier that gives each text every label whose probability reaches that label's threshold.

    Args:
        label_names: Label names in index order.
        threshold: The cut-off of every label without a tuned threshold.
        tune_thresholds: Tune each label's threshold to its best validation F1 (`fit_rule`); false
            keeps `threshold` for every label.
        thresholds: The per-label cut-offs the model carries (default: `threshold` for every label).
        label_separator: What joins a text's label names in files.
    """

    problem_type = "multi_label_classification"
    checkpoint_key = "thresholds"
    rule_file = THRESHOLDS_FILE
    # a fit's validation is scored at its end, at the thresholds tuned there (see `fit_rule`)
    scored_at_validation_end = True

    def __init__(
        self,
        label_names: list[str],
        threshold: float = 0.5,
        tune_thresholds: bool = True,
        thresholds: Thresholds | None = None,
        label_separator: str = ";",
    ):
        self.label_names, self.threshold, self.tune = list(label_names), threshold, tune_thresholds
        self.thresholds = thresholds or Thresholds.constant(threshold, len(self.label_names))
        self.label_separator = label_separator or ";"

    # ------------------------------------------------------------------ data

    def label_columns(self, settings: Mapping) -> dict[str, str]:
        """None: label sets are read by `read_labels`, an empty set being a text with no label."""
        return {}

    def read_labels(
        self, source: pd.DataFrame, clean: pd.DataFrame, split: str, settings: Mapping
    ) -> pd.Series:
        """Each cleaned row's label set, from `label_columns` or the joined `label_column`."""
        sets = read_label_sets(
            source,
            split,
            settings["label_column"],
            settings.get("label_columns"),
            settings["label_separator"],
        )
        return pd.Series(sets.iloc[clean["row"].to_numpy()].to_numpy(), index=clean.index)

    def names_in(self, labels: pd.Series) -> list[str]:
        """Every label that occurs, sorted."""
        return names_of(labels)

    def occurrences(self, labels: pd.Series) -> pd.Series:
        """One entry per (text, label), indexed by row: a text with two labels occurs twice."""
        return labels.explode().dropna()

    def counts(self, labels: pd.Series, names: list[str]) -> list[int]:
        """Texts carrying each label, in `names` order."""
        return positives(labels, names)

    def targets(self, labels: pd.Series, names: list[str]) -> np.ndarray:
        """A (texts, labels) float32 matrix, 1 where the text carries the label."""
        return multi_hot(labels.tolist(), names)

    def split(self, labels: pd.Series, fractions: dict[str, float], seed: int) -> tuple[dict, list[str]]:
        """Row indices per split, iteratively stratified over every label at once."""
        warn_if_single_label(labels)
        return iterative_split(labels.tolist(), fractions, seed), []

    def check_train(self, labels: pd.Series) -> None:
        """Refuse training data with fewer than two labels."""
        if len(names_of(labels)) < 2:
            raise DataError("the training data has fewer than two labels: a classifier needs at least two")

    # ------------------------------------------------------------------ data check

    def check_header(self) -> dict:
        """What data_check.json says of the kind, before its splits."""
        return {"multi_label": True}

    def check_words(self) -> dict[str, str]:
        """What a training count counts (`examples`) and what the counts are of (`class`)."""
        return {"examples": "positive texts", "class": "label"}

    def check_split_stats(self, labels: pd.Series) -> dict:
        """Labels per text (mean, max) and the texts with no label."""
        # lazily: importing a task stays light
        from textcls.checks.label_sets import label_set_stats

        return label_set_stats(labels)

    def check_report(self, frames: dict[str, pd.DataFrame]) -> dict:
        """`co_occurrence`: the label pairs most often together in train."""
        # lazily: importing a task stays light
        from textcls.checks.label_sets import co_occurrence

        return {"co_occurrence": co_occurrence(frames["train"]["label"]) if "train" in frames else []}

    def check_problems(self, splits: dict) -> list[dict]:
        """A warning for each split where most texts carry no label."""
        # lazily: importing a task stays light
        from textcls.checks.label_sets import no_label_problems

        return no_label_problems(splits)

    def check_lines(self, report: dict) -> list[str]:
        """Labels per text of each split and the top label pairs, for the printed report."""
        # lazily: importing a task stays light
        from textcls.checks.label_sets import render_lines

        return render_lines(report)

    # ------------------------------------------------------------------ the model

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None, smoothing: float
    ) -> torch.Tensor:
        """Binary cross-entropy per label (fp32), `weight` weighing positives; smoothing moves each 0/1
        target that far towards 0.5."""
        smoothed = targets.float() * (1 - smoothing) + smoothing / 2
        return F.binary_cross_entropy_with_logits(logits.float(), smoothed, pos_weight=weight)

    def balanced_weights(self, counts: list[int], rows: int) -> torch.Tensor:
        """Negatives / positives per label (`pos_weight`), clamped to [0.01, MAX_POS_WEIGHT]."""
        return positive_weights(counts, rows)

    def init_head(self, model, counts: list[int], rows: int) -> None:
        """Start each label's output bias at its log prior odds in the training split."""
        start_at_label_priors(model, counts, rows)

    def stage_metrics(self, prefix: str) -> MetricCollection:
        return stage_metrics(len(self.label_names), prefix)

    def metric_inputs(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 0/1 decisions at the thresholds, and the 0/1 targets."""
        return decide(self.probabilities(logits), self.thresholds).int(), targets.int()

    # ------------------------------------------------------------------ decisions

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Each label's sigmoid, in fp32 (no temperature: the thresholds make the decisions)."""
        return torch.sigmoid(logits.float())

    def decisions(self, probs: torch.Tensor | np.ndarray, at_least_one: bool = False) -> np.ndarray:
        """The 0/1 matrix of the labels each text gets (see `textcls.thresholds.decide`)."""
        return decide(probs, self.thresholds, at_least_one).numpy().astype(int)

    def fit_rule(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[dict, dict[str, str]]:
        """Tune the thresholds on the validation rows and score them there (`val/f1_macro`, ...).

        Scored at the thresholds the checkpoint will carry, so "best" is the epoch that is best once
        tuned; at the global threshold instead, a model whose probabilities have not yet climbed past
        0.5 would score 0 and every epoch would tie. The tuned scores are optimistic (tuned and
        measured on the same rows), alike for every epoch; `val/f1_macro_at_threshold` is the untuned
        score. Every rank holds all rows here, so each logs the same values.
        """
        probs, targets = self.probabilities(logits).numpy(), targets.numpy()
        tuned = tune_thresholds(probs, targets, self.threshold)
        if not self.tune:  # the global threshold, with the validation positives on record
            tuned = Thresholds.constant(self.threshold, probs.shape[1], tuned.positives)
        self.thresholds = tuned
        decided = self.decisions(probs)
        scores = compute_multilabel_scores(targets, decided)
        logs = {f"val/{k}": v for k, v in scores.items() if k != "rows"}
        fixed = compute_multilabel_scores(targets, probs >= self.threshold)
        logs["val/f1_macro_at_threshold"] = fixed["f1_macro"]
        alert = cardinality_alert(float(targets.sum(1).mean()), float(decided.sum(1).mean()))
        return logs, {"cardinality": f"Warning: validation split: {alert}"} if alert else {}

    # ------------------------------------------------------------------ export, model card and app

    def rule_json(self) -> str:
        """thresholds.json's text: the thresholds, indented."""
        return json.dumps(self.rule_state(), indent=2)

    def decision_unit(self) -> str:
        """What a text's decision is, in the plural, for messages ("agrees on the label sets of ...")."""
        return "label sets"

    def card_use(self, backbone: str, remote: str) -> list[str]:
        """The model card's opening line and `pipeline` snippet (`remote`: `pipeline`'s extra arguments)."""
        from textcls.model_card.multi_label import use_lines  # lazily: importing a task stays light

        return use_lines(self.label_names, backbone, remote, self.problem_type)

    def card_rule(self) -> list[str]:
        """The model card's section on the decision rule: the thresholds table."""
        from textcls.model_card.multi_label import threshold_lines  # lazily: importing a task stays light

        return threshold_lines(self.label_names, self.thresholds)

    def card_data_keys(self) -> list[str]:
        """The data settings the model card lists besides every model's: how label sets were read."""
        return ["multi_label", "label_columns", "label_separator"]

    def rule_facts(self) -> dict:
        """The decision rule, as the app's model facts show it."""
        return {"Thresholds": dict(zip(self.label_names, self.thresholds.values, strict=True))}

    def rule_state(self, tensors: bool = True) -> dict:
        """The thresholds, for a checkpoint or thresholds.json."""
        return self.thresholds.to_dict()

    def load_rule(self, state: dict | None) -> None:
        """The thresholds a checkpoint or folder carries (none: `threshold` for every label)."""
        stored = Thresholds.from_dict(state)
        self.thresholds = stored or Thresholds.constant(self.threshold, len(self.label_names))

    # ------------------------------------------------------------------ baselines

    def fit_baseline(
        self, classifier: tuple, x: dict, y: dict, seed: int, features: str, start: float
    ) -> tuple[np.ndarray, dict, "MultiLabel"]:
        """A trained baseline, one-vs-rest (textcls/baseline/one_vs_rest.py): its hyper-parameter chosen
        on validation macro F1 at thresholds tuned there; its test probabilities, report info, and the
        task that reports them (those thresholds; labels too rare to tune keep `threshold`)."""
        # lazily: importing a task stays light
        from textcls.baseline.one_vs_rest import select_one_vs_rest

        probs, tuned, info = select_one_vs_rest(classifier, x, y, seed, features, start, self.threshold)
        reporting = MultiLabel(self.label_names, thresholds=tuned, label_separator=self.label_separator)
        return probs, info, reporting

    def baseline_skips(self, method: str) -> str | None:
        """Why baseline `method` does not run on label sets (the zero-shot ones give one label per text)."""
        # lazily: importing a task stays light
        from textcls.baseline.one_vs_rest import skip_reason

        return skip_reason(method)

    def baseline_summary(self, metrics: dict) -> str:
        """The test scores printed for a baseline: macro F1 at the tuned thresholds and at 0.5, micro F1."""
        # lazily: importing a task stays light
        from textcls.baseline.one_vs_rest import summary

        return summary(metrics)

    def refuses(self, options: list[str]) -> str | None:
        """Confidence cut-offs are for one label per text: here each label has its own threshold."""
        if not options:
            return None
        return (
            f"{' and '.join(options)} {'is' if len(options) == 1 else 'are'} for single-label models: a "
            f"multi-label model decides each label by its threshold (model.threshold, model.tune_thresholds; "
            f"{THRESHOLDS_FILE} in an exported folder)"
        )

    # ------------------------------------------------------------------ the test report

    explains_mistakes = False  # explanations are of one label per text
    report_figure = "label_f1"  # the figure the end of `test` points to

    def raw_probabilities(self, logits: torch.Tensor) -> None:
        """None: nothing is calibrated, the thresholds decide."""
        return None

    def report_settings(self) -> dict:
        """The global threshold and whether each label's is tuned, for the report's hyper-parameters."""
        return {"threshold": self.threshold, "tune_thresholds": self.tune}

    def report_part(self, folder, test, probs, info, raw_probs=None, target_precision=None, separator=None):
        """Its part of the test report: scores at the thresholds and at 0.5, per-label table, label
        cardinality, confused label pairs, mistakes (textcls/report/multi_label.py)."""
        # lazily: importing a task stays light
        from textcls.report.multi_label import report_part

        joined_by = separator or self.label_separator
        return report_part(folder, test, probs, self.label_names, self.thresholds, info, joined_by)

    def report_module(self):
        """The report module of this kind (textcls/report/multi_label.py): its `comparison_table` (the columns
        of the comparison with other models) and `length_score` (a group of texts' score: macro F1 at the thresholds)."""
        import textcls.report.multi_label as module  # lazily: importing a task stays light

        return module

    def prediction_table(
        self, inputs: pd.DataFrame, probs, at_least_one: bool = False, separator: str | None = None, **other
    ) -> pd.DataFrame:
        """`text` (or `id`), `labels` (joined by `separator`, default the task's), `prob_<label>` and
        `pred_<label>` (0/1); with `at_least_one` a text where no label passes gets its top-scoring one.
        Options of other kinds of task (`other`) do not apply."""
        chosen = self.decisions(probs, at_least_one)
        return label_set_table(inputs, probs, self.label_names, chosen, separator or self.label_separator)


def positive_weights(positives: list[int], rows: int) -> torch.Tensor:
    """Negatives / positives per label, clamped to [0.01, MAX_POS_WEIGHT]."""
    pos = torch.tensor(positives, dtype=torch.float)
    return ((rows - pos) / pos.clamp(min=1)).clamp(0.01, MAX_POS_WEIGHT)


def stage_metrics(num_labels: int, prefix: str) -> MetricCollection:
    """Macro/micro F1, precision and recall, subset accuracy and Hamming loss of 0/1 decisions,
    logged as `<prefix>f1_macro`, `<prefix>f1_micro`, `<prefix>subset_acc`, `<prefix>hamming_loss`, ..."""
    kw = {"num_labels": num_labels}
    return MetricCollection(
        {
            "f1_macro": MultilabelF1Score(average="macro", **kw),
            "f1_micro": MultilabelF1Score(average="micro", **kw),
            "precision_macro": MultilabelPrecision(average="macro", **kw),
            "recall_macro": MultilabelRecall(average="macro", **kw),
            "precision_micro": MultilabelPrecision(average="micro", **kw),
            "recall_micro": MultilabelRecall(average="micro", **kw),
            "subset_acc": MultilabelExactMatch(**kw),
            "hamming_loss": MultilabelHammingDistance(**kw),
        },
        prefix=prefix,
    )


def warn_if_single_label(label_sets: pd.Series) -> None:
    """`multi_label: true` on data where no text has two labels is allowed, but likely a mistake."""
    if max((len(s) for s in label_sets), default=0) < 2:
        rank_zero_warn(
            "data.multi_label is true but no training text carries more than one label: check "
            "data.label_separator (or data.label_columns); for one label per text, multi_label: false "
            "trains a softmax classifier"
        )
