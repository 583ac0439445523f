"""The test report: metrics, per-class table, confusion matrix, mistakes and a readable summary.

`write_report` writes the files for any classifier's test predictions (the fine-tuned model through
the `TestReport` callback, the baselines through textcls/baseline.py), so they are comparable; for
multi-label models, `write_multilabel_report` of textcls/report_multilabel.py does.
"""

import json
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support

from textcls.calibration import (
    DEFAULT_TARGET_PRECISION,
    Calibration,
    calibrated_probs,
    calibration_metrics,
    plot_precision_coverage,
    plot_reliability,
)
from textcls.checkpoint import file_sha256
from textcls.data import SPLITS
from textcls.metrics import compute_metrics, present_labels
from textcls.predictions import gather_in_order
from textcls.report_length import write_by_length
from textcls.report_markdown import beaten_by, markdown_head, md_table
from textcls.report_multilabel import write_multilabel_report

BASELINES_FOLDER = "baselines"


# ----------------------------------------------------------------------------- metrics and files


def per_class_table(y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str]) -> pd.DataFrame:
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(len(label_names)), zero_division=0
    )
    return pd.DataFrame({"label": label_names, "precision": p, "recall": r, "f1": f, "support": s})


def plot_confusion(matrix: np.ndarray, label_names: list[str], title: str):
    """The confusion matrix with counts in the cells; size and fonts scale with the number of classes."""
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(label_names)
    side = min(40.0, max(5.0, 0.45 * n + 3))
    font = max(5, 12 - n // 6)
    fig = Figure(figsize=(side, side * 0.9), layout="constrained")
    ax = fig.add_subplot()
    ConfusionMatrixDisplay(matrix, display_labels=label_names).plot(
        ax=ax, values_format="d", xticks_rotation="vertical", colorbar=n <= 30, text_kw={"fontsize": font}
    )
    ax.tick_params(labelsize=font + 1)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title)
    return fig


def write_report(
    folder: Path,
    test: pd.DataFrame,
    probs: np.ndarray,
    label_names: list[str],
    info: dict,
    comparison: list[dict] | None = None,
    calibration: dict | None = None,
):
    """Write the report files of predictions `probs` (rows of `test`, in order) into `folder`.

    Files: metrics.json, per_class.csv, classification_report.txt, confusion_matrix.csv and .png,
    predictions.csv, misclassified.csv (most confident mistakes first) and report.md; with
    `calibration`, also reliability_diagram.png and precision_coverage.png.

    Args:
        folder: Where to write (created).
        test: The test rows: `text`, `label` and `row` (the row number in the source file).
        probs: Class probabilities, one row per test row, columns in `label_names` order.
        label_names: Class names in index order.
        info: What produced the predictions: `model` (a name), and optionally `description`,
            `hyperparameters` (dict), `splits` ({split: {label: count}}), `train_seconds`, and
            `checkpoint` ({"path", "sha256"} of the checkpoint measured, recorded in metrics.json).
        comparison: Metrics of other models on the same rows (e.g. the baselines); when given,
            report.md ends with a table comparing them with these predictions.
        calibration: For temperature-scaled `probs`: `raw_probs` (the softmax before scaling),
            `calibration` (a `Calibration`: temperature and validation confidences) and `target`
            (the target precision whose validation cut-off is measured on these rows).

    Returns:
        The metrics dict and the figures by name (`confusion_matrix`, and with `calibration`
        `reliability_diagram` and `precision_coverage`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    index = {name: i for i, name in enumerate(label_names)}
    y_true = test["label"].map(index).to_numpy()
    y_pred = probs.argmax(1)
    metrics = {"model": info["model"], **compute_metrics(y_true, probs)}
    metrics["alerts"] = beaten_by(metrics, comparison)
    if info.get("train_seconds") is not None:
        metrics["train_seconds"] = round(float(info["train_seconds"]), 1)
    if info.get("checkpoint"):
        metrics["checkpoint"] = info["checkpoint"]  # export and the app match reports on its sha256
    figures = {}
    if calibration is not None:
        raw, target = calibration["raw_probs"], calibration["target"]
        metrics.update(calibration_metrics(y_true, probs, raw, calibration["calibration"], target))
        metrics["loss_uncalibrated"] = compute_metrics(y_true, raw)["loss"]
        title = f"{info['model']} ({len(test)} test texts)"
        figures["reliability_diagram"] = plot_reliability(y_true, probs, raw, title)
        figures["precision_coverage"] = plot_precision_coverage(
            y_true, probs, calibration["calibration"], target, title
        )
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))

    table = per_class_table(y_true, y_pred, label_names)
    table.to_csv(folder / "per_class.csv", index=False)
    present = present_labels(y_true, y_pred)  # its averages are those of metrics.json (textcls/metrics.py)
    text_report = classification_report(
        y_true,
        y_pred,
        labels=present,
        target_names=[label_names[i] for i in present],
        digits=4,
        zero_division=0,
    )
    (folder / "classification_report.txt").write_text(text_report)

    matrix = confusion_matrix(y_true, y_pred, labels=np.arange(len(label_names)))
    pd.DataFrame(matrix, index=label_names, columns=label_names).rename_axis("true \\ predicted").to_csv(
        folder / "confusion_matrix.csv"
    )
    fig = plot_confusion(matrix, label_names, f"{info['model']}: confusion matrix ({len(test)} test texts)")
    figures["confusion_matrix"] = fig
    for name, figure in figures.items():
        figure.savefig(folder / f"{name}.png", dpi=100)

    predictions = pd.DataFrame(
        {
            "row": test["row"].to_numpy(),
            "text": test["text"].to_numpy(),
            "true_label": test["label"].to_numpy(),
            "predicted_label": [label_names[i] for i in y_pred],
            "confidence": probs.max(1),
        }
    )
    predictions.to_csv(folder / "predictions.csv", index=False)
    mistakes = predictions[predictions["true_label"] != predictions["predicted_label"]]
    mistakes = mistakes.sort_values("confidence", ascending=False, kind="stable")
    mistakes.to_csv(folder / "misclassified.csv", index=False)

    rows = [*comparison, metrics] if comparison else None
    md = summary_markdown(metrics, table, matrix, label_names, mistakes, info, rows)
    (folder / "report.md").write_text(md)
    return metrics, figures


def biggest_confusions(matrix: np.ndarray, label_names: list[str], top: int = 5) -> list[str]:
    """The largest off-diagonal cells in words: "12 Business texts predicted as Sci/Tech"."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    cells = sorted(((off[i, j], i, j) for i, j in zip(*np.nonzero(off), strict=True)), key=lambda c: -c[0])
    return [f"{n} {label_names[i]} texts predicted as {label_names[j]}" for n, i, j in cells[:top]]


def summary_markdown(
    metrics: dict,
    table: pd.DataFrame,
    matrix: np.ndarray,
    label_names: list[str],
    mistakes: pd.DataFrame,
    info: dict,
    comparison: list[dict] | None,
) -> str:
    """report.md: model, data, hyper-parameters, metrics, per-class table, confusions, mistakes."""
    out = markdown_head(info, label_names, metrics["alerts"]) + ["## Metrics", ""]
    hidden = ("model", "checkpoint", "alerts", "temperature_note")
    shown = {k: v for k, v in metrics.items() if k not in hidden}
    values = pd.Series(list(shown.values()), dtype=object)  # keeps counts as integers
    out += [md_table(pd.DataFrame({"metric": list(shown), "value": values})), ""]
    if metrics.get("temperature_note"):
        out += [f"Temperature {metrics['temperature']}, the raw softmax: {metrics['temperature_note']}.", ""]
    out += ["## Per class", "", md_table(table), ""]
    confusions = biggest_confusions(matrix, label_names)
    out += ["## Biggest confusions", ""]
    out += (
        [f"- {c}" for c in confusions] if confusions else ["- none: every test text was classified correctly"]
    )
    out += ["", "## Most confident mistakes", ""]
    if len(mistakes):
        top = mistakes.head(5)[["row", "text", "true_label", "predicted_label", "confidence"]]
        out += [md_table(top.assign(text=top["text"].str.slice(0, 200))), ""]
    else:
        out += ["None.", ""]
    if comparison:
        out += ["## Comparison on the same test rows", ""]
        frame = pd.DataFrame(comparison)[["model", "accuracy", "f1_macro", "train_seconds"]]
        frame["train_seconds"] = frame["train_seconds"].map(
            lambda s: "" if s is None or s != s else f"{s:.1f}"
        )
        out += [
            md_table(frame.rename(columns={"f1_macro": "macro F1", "train_seconds": "training time (s)"}))
        ]
        out += [""]
    return "\n".join(out)


def load_baseline_metrics(root: Path) -> list[dict]:
    """The metrics.json of each baseline written under `root/baselines/` (by `textcls baseline`)."""
    return [json.loads(p.read_text()) for p in sorted((root / BASELINES_FOLDER).glob("*/metrics.json"))]


# ----------------------------------------------------------------------------- the callback


class TestReport(Callback):
    """Writes the test report into the run's log folder after `test`.

    After `test`: metrics.json, per_class.csv, classification_report.txt, confusion_matrix.csv/.png,
    reliability_diagram.png and precision_coverage.png (the figures also logged to TensorBoard),
    predictions.csv, misclassified.csv and report.md, which compares with the baselines of the same
    config when `textcls baseline` has written them, and explanations.html (with .json): the most
    confident mistakes, each word shaded by its Integrated Gradients score for the wrong label.
    Probabilities are temperature-scaled by the checkpoint's temperature. For a multi-label model:
    metrics.json (at the model's thresholds and at 0.5), per_label.csv, predictions.csv,
    misclassified.csv (missing and extra labels), label_f1.png (also in TensorBoard) and report.md
    (see textcls/report_multilabel.py). Both add by_length.csv: the score per quartile of text length
    (textcls/report_length.py). The training time is the `train_seconds` the checkpoint carries
    (textcls/callbacks/timing.py).

    Args:
        enabled: Write the report after `test`.
        target_precision: The target precision whose validation cut-off the report measures on the
            test split (linked from --prediction.target_precision; 0.95 when that is not set).
        explain_mistakes: How many of the most confident mistakes explanations.html explains (0: none).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self, enabled: bool = True, target_precision: float | None = None, explain_mistakes: int = 20
    ):
        self.enabled, self.explain_mistakes = enabled, explain_mistakes
        self.target_precision = target_precision or DEFAULT_TARGET_PRECISION
        self.untrained = False  # set by the CLI for `--ckpt_path none`
        self._reset()

    def _reset(self) -> None:
        self.idx, self.logits = [], []
        self.train_seconds: float | None = None
        self.checkpoint_info: dict = {}
        self.checkpoint: dict | None = None

    # test: collect, then write
    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()
        if trainer.ckpt_path:
            # mmap: only the few small entries read here are loaded from disk
            ckpt = torch.load(trainer.ckpt_path, map_location="cpu", weights_only=True, mmap=True)
            self.train_seconds = ckpt.get("train_seconds")
            self.checkpoint_info = {
                "checkpoint": str(trainer.ckpt_path),
                "epochs trained": ckpt.get("epoch", 0) + 1,
                "optimizer steps": ckpt.get("global_step"),
            }
            if trainer.is_global_zero:
                path = Path(trainer.ckpt_path).resolve()
                self.checkpoint = {"path": str(path), "sha256": file_sha256(path)}

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not self.enabled:
            return
        self.idx.append(batch["idx"].detach().cpu())
        self.logits.append(outputs["logits"].float().cpu())

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled or not self.idx:
            return
        rows, logits = gather_in_order(torch.cat(self.idx), torch.cat(self.logits))  # every rank takes part
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        if not trainer.is_global_zero:
            return
        data = trainer.datamodule
        test = data.frames["test"].iloc[rows].reset_index(drop=True)
        folder = Path(log_dir or ".")
        root = Path(getattr(trainer.logger, "root_dir", None) or folder.parent)
        baselines = load_baseline_metrics(root)
        info = self._info(trainer, pl_module, data)
        multi_label = bool(pl_module.hparams.get("multi_label"))
        if multi_label:  # no calibration, confusion matrix or explanations: those are single-label
            probs = pl_module.probabilities(logits).numpy()
            names, thresholds, sep = pl_module.label_names, pl_module.thresholds, data.hparams.label_separator
            metrics, figures = write_multilabel_report(
                folder, test, probs, names, thresholds, info, baselines, sep
            )
        else:
            probs = calibrated_probs(logits, pl_module.temperature).numpy()
            calibration = {
                "raw_probs": calibrated_probs(logits).numpy(),
                "calibration": getattr(pl_module, "calibration", None) or Calibration(),
                "target": self.target_precision,
            }
            metrics, figures = write_report(
                folder, test, probs, pl_module.label_names, info, baselines, calibration
            )
        lengths = data.encoded["test"].text_lengths[rows]  # full lengths: what truncation or windows faced
        ml_thresholds = pl_module.thresholds if multi_label else None
        write_by_length(folder, metrics, test, probs, pl_module.label_names, lengths, ml_thresholds)
        self._log_to_tensorboard(trainer, pl_module, data, metrics, figures)
        if self.explain_mistakes > 0 and not multi_label:
            self._explain(folder, test, probs, pl_module, data)
        for alert in metrics["alerts"]:
            rank_zero_info(f"Warning: {alert}")
        rank_zero_info(
            f"Test report written to {folder} (report.md, metrics.json, "
            f"{'label_f1' if multi_label else 'confusion_matrix'}.png, ...)"
        )

    def _explain(self, folder: Path, test: pd.DataFrame, probs: np.ndarray, pl_module, data) -> None:
        from textcls.explain import REPORT_STEPS, ExplainError, check_explainable, explain_mistakes

        try:  # the model in memory, with the data's tokenizer: nothing is reloaded
            check_explainable(data.layout, getattr(pl_module, "quantized", None))
            model, hp = pl_module.model, data.hparams
            args = (model, data.tokenizer, hp.max_length, pl_module.task, self.explain_mistakes)
            explain_mistakes(folder, test, probs, pl_module.label_names, *args, REPORT_STEPS)
        except ExplainError as err:  # e.g. Captum not installed: the rest of the report stands
            rank_zero_info(f"Test report: explanations.html skipped ({err})")

    def _info(self, trainer, pl_module, data) -> dict:
        hp_model, hp_data = pl_module.hparams, data.hparams
        splits = {
            s: dict(zip(data.label_names, data.class_counts(s), strict=True))
            for s in SPLITS
            if s in data.frames
        }
        hyper = {
            "backbone": hp_model.model_name_or_path,
            "freeze_encoder": hp_model.freeze_encoder,
            "learning_rate": hp_model.learning_rate,
            "weight_decay": hp_model.weight_decay,
            "warmup_ratio": hp_model.warmup_ratio,
            "class_weights": hp_model.class_weights,
            "label_smoothing": hp_model.label_smoothing,
            **{k: hp_model[k] for k in ("threshold", "tune_thresholds") if hp_model.get("multi_label")},
            "batch_size": hp_data.batch_size,
            "max_length": hp_data.max_length,
            "train_sample": hp_data.train_sample,
            "seed": hp_data.seed,
            "precision": trainer.precision,
            "quantize": getattr(pl_module, "quantized", None) or "none",
            **self.checkpoint_info,
        }
        name = ("untrained head on " if self.untrained else "fine-tuned ") + Path(
            str(hp_model.model_name_or_path)
        ).name
        if hp_model.freeze_encoder:
            name += " (frozen encoder)"
        name += " (int8)" if getattr(pl_module, "quantized", None) else ""
        return {
            "model": name,
            "description": f"Backbone `{hp_model.model_name_or_path}` with a classification head, "
            f"evaluated on {len(data.frames['test'])} test texts.",
            "hyperparameters": hyper,
            "splits": splits,
            "split_rows": {s: len(data.frames[s]) for s in splits},
            "train_seconds": self.train_seconds,
            "checkpoint": self.checkpoint,
        }

    def _log_to_tensorboard(self, trainer, pl_module, data, metrics: dict, figures: dict) -> None:
        logger = trainer.logger
        if logger is None:
            return
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_figure"):
            for name, fig in figures.items():
                experiment.add_figure(f"test/{name}", fig, global_step=trainer.global_step)
        params = {**{f"model/{k}": v for k, v in pl_module.hparams.items() if k != "label_names"}}
        params.update({f"data/{k}": v for k, v in data.hparams.items() if k != "labels"})
        final = {f"hp/test_{k}": v for k, v in metrics.items() if isinstance(v, float)}
        logger.log_hyperparams(params, final)


def compose_report(
    folder: Path,
    task,
    test: pd.DataFrame,
    probs: np.ndarray,
    info: dict,
    comparison: list[dict] | None = None,
) -> tuple[dict, dict]:
    """INTERIM (replaced by the report package): the test report of `task`'s predictions `probs`."""
    if task.problem_type == "multi_label_classification":
        args = (task.label_names, task.thresholds, info, comparison, task.label_separator)
        return write_multilabel_report(folder, test, probs, *args)
    return write_report(folder, test, probs, task.label_names, info, comparison)
