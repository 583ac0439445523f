"""A number per text (`regression`): one output, trained with MSE on targets standardised with the
training split's mean and standard deviation, which the checkpoint keeps and every prediction undoes;
scored by MSE, MAE, Pearson, Spearman and R², and chosen by validation Pearson."""

from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.regression import (
    MeanAbsoluteError,
    MeanSquaredError,
    PearsonCorrCoef,
    R2Score,
    SpearmanCorrCoef,
)

from textcls.data.io import DataError
from textcls.data.split import stratified_split
from textcls.predictions import row_names

QUANTILE_BINS = 10  # splits textcls makes are stratified on this many quantile bins of the target
TARGET_SCALING_FILE = "target_scaling.json"
AGREEMENT_TOLERANCE = 0.05  # of the scores' standard deviation: ONNX (or int8) and PyTorch scores agree
# what only classifiers take: each stops a regression with one line
CLASSIFIER_OPTIONS = ("class_weights", "label_smoothing", "threshold", "uncertain_below", "target_precision")


class Regression:
    """A model that gives each text a number in the target's units.

    Args:
        label_names: One name, the target's (its column), which the model config keeps as its label.
        mean: The training targets' mean (the model predicts standardised targets).
        std: The training targets' standard deviation.
    """

    problem_type = "regression"
    checkpoint_key = "target_scaling"
    rule_file = TARGET_SCALING_FILE
    monitor = {"monitor": "val/pearson", "mode": "max"}
    min_labels = 1
    scored_at_validation_end = False

    def __init__(
        self, label_names: list[str], mean: float = 0.0, std: float = 1.0, target_name: str = "score"
    ):
        self.label_names = list(label_names) or [target_name]
        self.mean, self.std = float(mean), float(std)

    # ------------------------------------------------------------------ data

    def label_columns(self, settings: Mapping) -> dict[str, str]:
        """The source column that holds the numbers (cleaned like a label: empty cells are refused)."""
        return {"label": settings["label_column"]}

    def read_labels(
        self, source: pd.DataFrame, clean: pd.DataFrame, split: str, settings: Mapping
    ) -> pd.Series:
        """Each row's target as a float; a cell that is not a finite number stops with one line."""
        labels = clean["label"]
        if isinstance(labels.dtype, pd.CategoricalDtype):  # each distinct cell converted once
            numbers = pd.to_numeric(pd.Series(labels.cat.categories), errors="coerce").to_numpy(
                dtype=np.float64
            )
            values = pd.Series(numbers[labels.cat.codes.to_numpy()], index=labels.index)
        else:
            values = pd.to_numeric(labels, errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"{split} column '{settings['label_column']}' holds {clean['label'].iloc[i]!r} at source row "
                f"{int(clean['row'].iloc[i])}: data.problem_type regression needs a finite number in every row"
            )
        return values.astype(np.float64)

    def names_in(self, labels: pd.Series) -> list[str]:
        """The one output's name: the target's."""
        return list(self.label_names)

    def occurrences(self, labels: pd.Series) -> pd.Series:
        """The target counted as one name per row (the label checks see a single "class")."""
        return pd.Series(self.label_names[0], index=labels.index)

    def counts(self, labels: pd.Series, names: list[str]) -> list[int]:
        """Texts with a target: all of them."""
        return [len(labels)]

    def targets(self, labels: pd.Series, names: list[str]) -> np.ndarray:
        """The numbers, as float32, in the target's units (the loss standardises them)."""
        return labels.to_numpy(dtype=np.float32)

    def split(self, labels: pd.Series, fractions: dict[str, float], seed: int) -> tuple[dict, list[str]]:
        """Row indices per split, stratified on quantile bins of the target, so each split spans its range."""
        bins = min(QUANTILE_BINS, max(1, len(labels) // 20))
        binned = pd.qcut(labels.rank(method="first"), bins, labels=False) if bins > 1 else labels * 0
        # the bins as categories (a byte a row); they sort as numbers, as their names did
        parts, _ = stratified_split(
            pd.Series(pd.Categorical(np.asarray(binned, dtype=np.int64))), fractions, seed
        )
        return parts, []

    def check_train(self, labels: pd.Series) -> None:
        """Refuse a constant training target: there is nothing to learn, and no spread to standardise by."""
        if labels.nunique() < 2:
            raise DataError(
                f"the training targets are all {labels.iloc[0]:g}: a regression needs targets that vary"
            )

    # ------------------------------------------------------------------ data check

    def check_header(self) -> dict:
        """What data_check.json says of the kind, before its splits."""
        return {"problem_type": self.problem_type}

    def check_words(self) -> dict[str, str]:
        """What a training count counts (`examples`) and what the counts are of (`class`)."""
        return {"examples": "rows", "class": "target"}

    def check_split_stats(self, labels: pd.Series) -> dict:
        """The split's target range, quantiles and histogram."""
        # lazily: importing a task stays light
        from textcls.checks.targets import target_stats

        return target_stats(labels)

    def check_report(self, frames: dict[str, pd.DataFrame]) -> dict:
        """Nothing beyond the splits."""
        return {}

    def check_problems(self, splits: dict) -> list[dict]:
        """A warning for each split whose targets do not vary."""
        # lazily: importing a task stays light
        from textcls.checks.targets import target_problems

        return target_problems(splits)

    def check_lines(self, report: dict) -> list[str]:
        """Each split's targets, for the printed report."""
        # lazily: importing a task stays light
        from textcls.checks.targets import target_lines

        return target_lines(report)

    # ------------------------------------------------------------------ the model

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None, smoothing: float
    ) -> torch.Tensor:
        """MSE between the output and the standardised target, in fp32."""
        standardised = (targets.float() - self.mean) / self.std
        return F.mse_loss(logits.float().squeeze(-1), standardised)

    def balanced_weights(self, labels: pd.Series) -> torch.Tensor:
        raise DataError("model.class_weights is for classifiers: a regression weighs every text alike")

    def init_head(self, model, labels: pd.Series) -> None:
        """Standardise with the training `labels`' mean and standard deviation."""
        self.mean, self.std = float(labels.mean()), float(labels.std(ddof=0)) or 1.0

    def stage_metrics(self, prefix: str) -> MetricCollection:
        return stage_metrics(prefix)

    def metric_inputs(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The scores in the target's units, and the targets."""
        return self.probabilities(logits)[:, 0], targets.float()

    # ------------------------------------------------------------------ predictions

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """The scores in the target's units, shape (texts, 1): the standardisation undone."""
        return logits.float() * self.std + self.mean

    def decisions(self, probs: torch.Tensor | np.ndarray) -> np.ndarray:
        """Each text's score."""
        return np.asarray(probs)[:, 0]

    def fit_rule(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[dict, dict[str, str]]:
        """Nothing is fitted on validation: the score is the answer."""
        return {}, {}

    def rule_state(self, tensors: bool = True) -> dict:
        """The standardisation, for a checkpoint."""
        return {"mean": self.mean, "std": self.std}

    def load_rule(self, state: dict | None) -> None:
        """The standardisation a checkpoint carries (none: an exported folder, whose output is in units)."""
        state = state or {}
        self.mean, self.std = float(state.get("mean", 0.0)), float(state.get("std", 1.0))

    def fold_scaling(self, output_layer: torch.nn.Linear) -> None:
        """Put the standardisation into the output layer, so that the network alone answers in the
        target's units (an exported folder: `pipeline(..., function_to_apply="none")`)."""
        with torch.no_grad():
            output_layer.weight.mul_(self.std)
            output_layer.bias.mul_(self.std).add_(self.mean)
        self.mean, self.std = 0.0, 1.0

    # ------------------------------------------------------------------ baselines

    def fit_baseline(
        self, classifier: tuple, x: dict, y: dict, seed: int, features: str, start: float
    ) -> tuple[np.ndarray, dict, "Regression"]:
        """Ridge regression in the classifier's place (textcls/baseline/ridge.py), its strength chosen on
        validation Pearson: its test scores, report info, and the task that reports them."""
        # lazily: importing a task stays light
        from textcls.baseline.ridge import select_ridge

        scores, info = select_ridge(classifier, x, y, seed, features, start)
        return scores, info, Regression(self.label_names)

    def baseline_skips(self, method: str, pairs: bool = False) -> str | None:
        """Naive Bayes and NLI are classifiers; the zero-shot baseline of a score is a pair's cosine."""
        if method in ("tfidf_nb", "zero_shot_nli"):
            return "it is a classifier and this data has numeric targets"
        if method == "zero_shot" and not pairs:
            return "the zero-shot baseline of a score is the cosine similarity of a pair of texts, and this data has one text per row"
        return None

    def baseline_summary(self, metrics: dict) -> str:
        """The test scores printed for a baseline."""
        return (
            f"Pearson {metrics['pearson']:.4f}, Spearman {metrics['spearman']:.4f}, MSE {metrics['mse']:.4f}"
        )

    # ------------------------------------------------------------------ export, model card and app

    def rule_json(self) -> None:
        """None: no file, the folder's network answers in the target's units (`export_weights`)."""
        return None

    def card_use(self, backbone: str, remote: str, pairs: bool = False) -> list[str]:
        """The model card's opening line and `pipeline` snippet."""
        from textcls.model_card.regression import use_lines  # lazily: importing a task stays light

        return use_lines(self.label_names[0], backbone, remote, pairs)

    def card_rule(self) -> list[str]:
        """No decision rule: the score is the answer."""
        return []

    def card_data_keys(self) -> list[str]:
        """The data settings the model card lists besides every model's: the kind of task."""
        return ["problem_type"]

    def rule_facts(self) -> dict:
        """What the app's model facts show of the output: the target it predicts."""
        return {"Predicts": f"a number: {self.label_names[0]}"}

    def agreement(self, reference: np.ndarray, other: np.ndarray) -> tuple[float, str]:
        """The share of texts whose two scores (PyTorch and ONNX) differ by at most `AGREEMENT_TOLERANCE`
        of the reference scores' standard deviation, and in words with the largest difference."""
        difference = np.abs(np.asarray(reference) - np.asarray(other))[:, 0]
        tolerance = AGREEMENT_TOLERANCE * float(np.std(reference)) or 1e-6
        share = float((difference <= tolerance).mean()) if len(difference) else 1.0
        largest = float(difference.max()) if len(difference) else 0.0
        return (
            share,
            f"within {tolerance:.3g} on {share:.2%} of {len(difference)} texts (max absolute difference {largest:.3g})",
        )

    def export_weights(self, model) -> None:
        """Fold the standardisation into the output layer: a folder's network answers in the target's units."""
        # lazily: importing a task stays light
        from textcls.backbone import output_layer

        self.fold_scaling(output_layer(model))

    def refuses(self, options: list[str]) -> str | None:
        """Class weights, label smoothing, thresholds and confidence cut-offs are for classifiers."""
        refused = [o for o in options if any(name in o for name in CLASSIFIER_OPTIONS)]
        if not refused:
            return None
        return (
            f"{' and '.join(refused)} {'is' if len(refused) == 1 else 'are'} for classifiers: a regression "
            "(data.problem_type regression) predicts a number, with no classes, probabilities or thresholds"
        )

    # ------------------------------------------------------------------ the test report

    explains_mistakes = False  # a score has no wrong label to explain
    headline = ("pearson", "Pearson")  # the score a baseline that beats the model is flagged on
    report_figure = "predicted_vs_true"  # the figure the end of `test` points to

    def raw_probabilities(self, logits: torch.Tensor) -> None:
        """None: nothing is calibrated."""
        return None

    def report_settings(self) -> dict:
        """The standardisation, for the report's hyper-parameters."""
        return {"target_mean": round(self.mean, 6), "target_std": round(self.std, 6)}

    def report_part(self, folder, test, probs, info, **options):
        """Its part of the test report (textcls/report/regression.py): metrics, scatter, error by target
        quantile, largest errors."""
        from textcls.report.regression import report_part  # lazily: importing a task stays light

        return report_part(folder, test, probs, info)

    def report_module(self):
        """The report module of this kind (textcls/report/regression.py): its `comparison_table` and
        `length_score` (a group of texts' mean absolute error)."""
        import textcls.report.regression as module  # lazily: importing a task stays light

        return module

    def prediction_table(self, inputs: pd.DataFrame, probs, **options) -> pd.DataFrame:
        """`text` (and `text_pair`; or `id`) and `score`, in the target's units."""
        out = row_names(inputs)
        out["score"] = self.decisions(probs)
        return out


def stage_metrics(prefix: str) -> MetricCollection:
    """MSE, MAE, Pearson, Spearman and R² of scores against targets, logged as `<prefix>mse`, ..."""
    return MetricCollection(
        {
            "mse": MeanSquaredError(),
            "mae": MeanAbsoluteError(),
            "pearson": PearsonCorrCoef(),
            "spearman": SpearmanCorrCoef(),
            "r2": R2Score(),
        },
        prefix=prefix,
    )
