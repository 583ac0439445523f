"""The callback that writes the test report (textcls/report/compose.py) into the run's log folder
after `test`, from the model's logits of the test rows, gathered in order from every rank."""

from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from textcls.calibration import DEFAULT_TARGET_PRECISION
from textcls.checkpoint import file_sha256
from textcls.data import SPLITS
from textcls.predictions import gather_in_order
from textcls.report.compose import compose_report, load_baseline_metrics


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
    (textcls/report/ has a module per kind of task). Both add by_length.csv: the score per quartile of
    text length (textcls/report/by_length.py). The training time is the `train_seconds` the checkpoint carries
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
        task = pl_module.task
        probs = task.probabilities(logits).numpy()
        raw = task.raw_probabilities(logits)
        metrics, figures = compose_report(
            folder,
            task,
            test,
            probs,
            info,
            baselines,
            raw_probs=None if raw is None else raw.numpy(),
            target_precision=self.target_precision,
            lengths=data.encoded["test"].text_lengths[rows],  # full lengths: what truncation or windows faced
            separator=data.hparams.label_separator,
        )
        self._log_to_tensorboard(trainer, pl_module, data, metrics, figures)
        if self.explain_mistakes > 0 and task.explains_mistakes:
            self._explain(folder, test, probs, pl_module, data)
        for alert in metrics["alerts"]:
            rank_zero_info(f"Warning: {alert}")
        rank_zero_info(
            f"Test report written to {folder} (report.md, metrics.json, {task.report_figure}.png, ...)"
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
            if s in data.splits
        }
        hyper = {
            "backbone": hp_model.model_name_or_path,
            "freeze_encoder": hp_model.freeze_encoder,
            "learning_rate": hp_model.learning_rate,
            "weight_decay": hp_model.weight_decay,
            "warmup_ratio": hp_model.warmup_ratio,
            "class_weights": hp_model.class_weights,
            "label_smoothing": hp_model.label_smoothing,
            **pl_module.task.report_settings(),
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
            f"evaluated on {len(data.splits['test'])} test texts.",
            "hyperparameters": hyper,
            "splits": splits,
            "split_rows": {s: len(data.splits[s]) for s in splits},
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
