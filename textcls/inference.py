"""Use a trained classifier outside the Trainer: load a checkpoint or an exported folder, classify texts.

One predictor serves the web app, the export checks and the benchmarks, and reads texts exactly as
`textcls predict` does (the training `max_length` and long-text layout: truncated, or windows whose
logits are pooled per text; padded per batch). A multi-label
model gives each label's sigmoid probability and decides with the per-label thresholds it carries
(the checkpoint's, or an exported folder's thresholds.json), as `textcls predict` does: the task
(textcls/tasks/) the checkpoint or folder names makes its probabilities and decisions.
"""

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoTokenizer, PreTrainedModel

from textcls.backbone import load_classifier, load_config, load_tokenizer
from textcls.calibration import Calibration, cutoff_message
from textcls.checkpoint import (
    CONFUSION_MATRIX_FILE,
    DEFAULT_MAX_LENGTH,
    LAYOUT_KEYS,
    METRICS_FILE,
    NOT_A_MODEL,
    CheckpointError,
    check_weights_fit,
    exported_json,
    exported_settings,
    find_test_report,
    is_exported_folder,
    load_checkpoint,
)
from textcls.data.batching import Collator
from textcls.long_text import TextLayout, encode_texts, pool_windows, takes_segments
from textcls.predictions import DEFAULT_UNCERTAIN_BELOW
from textcls.quantize import check_quantize, quantize_int8
from textcls.tasks import Task, task_for
from textcls.thresholds import Thresholds


@dataclass
class Predictor:
    """A classifier ready to predict: the Hugging Face model, its tokenizer and what it was trained with.

    Args:
        model: The sequence-classification model (its config names the labels).
        tokenizer: The backbone's tokenizer.
        layout: What the model reads of a text, as in training (max_length, truncation, windows).
        source: The checkpoint file or exported folder it was loaded from.
        hparams: Training settings (the checkpoint's model and data hyper-parameters).
        metrics_path: The metrics of a test of this very checkpoint, when there is one.
        confusion_matrix_path: That test report's confusion matrix image.
        task: What the model's outputs mean and how they become decisions, with the decision rule
            it carries (textcls/tasks/); by default the task of the model config's `problem_type`,
            without a fitted rule.
        quantized: "int8" when the model's Linear layers were dynamically quantized (None: as trained).
    """

    model: PreTrainedModel
    tokenizer: object
    layout: TextLayout
    source: Path
    hparams: dict = field(default_factory=dict)
    metrics_path: Path | None = None
    confusion_matrix_path: Path | None = None
    task: Task | None = None
    quantized: str | None = None

    def __post_init__(self):
        if self.task is None:
            self.task = task_for({"problem_type": self.model.config.problem_type}, self.label_names)

    @property
    def max_length(self) -> int:
        return self.layout.max_length

    @property
    def chunk_pooling(self) -> str:
        return self.hparams.get("model", {}).get("chunk_pooling") or "mean"

    @property
    def multi_label(self) -> bool:
        return self.task.problem_type == "multi_label_classification"

    @property
    def calibration(self) -> Calibration | None:
        """A single-label model's temperature and validation record (None: raw softmax, no cut-offs)."""
        return getattr(self.task, "calibration", None)

    @calibration.setter
    def calibration(self, calibration: Calibration | None) -> None:
        self.task.calibration = calibration

    @property
    def thresholds(self) -> Thresholds | None:
        """A multi-label model's per-label probability cut-offs (None for other tasks)."""
        return getattr(self.task, "thresholds", None)

    @property
    def temperature(self) -> float:
        return getattr(self.task, "temperature", 1.0)

    def cutoff(self, target_precision: float | None) -> tuple[float, str]:
        """The confidence cut-off for `target_precision` (0 when there is none) and a line saying why."""
        if not target_precision:
            return 0.0, "no target precision: every prediction is kept"
        return cutoff_message(self.calibration, target_precision)

    @property
    def label_names(self) -> list[str]:
        id2label = self.model.config.id2label
        return [id2label[i] for i in range(len(id2label))]

    @property
    def metrics(self) -> dict | None:
        if self.metrics_path is None:
            return None
        return json.loads(self.metrics_path.read_text(encoding="utf-8"))

    @property
    def reads_pairs(self) -> bool:
        """Whether each input is a pair of texts (trained with data.text_pair_column)."""
        return bool(self.hparams.get("data", {}).get("text_pair_column"))

    def encode(self, texts: Sequence[str | tuple[str, str]]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask, as the training data was read, padded to the longest; for
        chunked long texts one row per window, and `owner`, the text of each row; for pairs (each
        input a `(text, text_pair)` tuple) the segment ids where the backbone takes them."""
        firsts, pairs = split_pairs(texts, self.reads_pairs)
        enc = encode_texts(firsts, self.tokenizer, self.layout, pairs)
        segments = enc.get("segment") if takes_segments(self.tokenizer) else None
        items = [{"idx": 0, "input_ids": ids} for ids in enc["input_ids"]]
        if segments is not None:
            items = [item | {"segment": start} for item, start in zip(items, segments, strict=True)]
        batch = Collator(self.tokenizer.pad_token_id)(items)
        out = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
        if self.layout.chunked:
            out["owner"] = torch.tensor(enc["owner"])
        return out

    def text_logits(self, logits: torch.Tensor, enc: dict[str, torch.Tensor], n_texts: int) -> torch.Tensor:
        """One row of logits per text: the model's rows, or each text's windows pooled."""
        if "owner" not in enc:
            return logits
        return pool_windows(logits, enc["owner"], n_texts, self.chunk_pooling)

    @torch.inference_mode()
    def iter_probs(self, texts: list[str], batch_size: int = 32) -> Iterator[np.ndarray]:
        """Class probabilities (each label's sigmoid for a multi-label model), one (batch, num_labels)
        array per batch of `batch_size` texts, in order."""
        for start in range(0, len(texts), batch_size):
            part = texts[start : start + batch_size]
            enc = self.encode(part)
            inputs = {k: v for k, v in enc.items() if k != "owner"}
            logits = self.model(**inputs).logits
            yield self.probabilities(self.text_logits(logits, enc, len(part))).numpy()

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """What textcls makes of logits: the task's (calibrated softmax, or sigmoid per label)."""
        return self.task.probabilities(logits)

    def predict_probs(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities of all `texts`, shape (len(texts), num_labels)."""
        # longest first, so each batch pads little (characters stand in for tokens); then input order
        order = np.argsort([-len("".join(t)) for t in texts], kind="stable")
        parts = list(self.iter_probs([texts[i] for i in order], batch_size))
        if not parts:
            return np.zeros((0, len(self.label_names)), np.float32)
        probs = np.empty_like(np.concatenate(parts))
        probs[order] = np.concatenate(parts)
        return probs

    def results(
        self,
        texts: list[str],
        probs: np.ndarray,
        uncertain_below: float = DEFAULT_UNCERTAIN_BELOW,
        at_least_one: bool = False,
    ) -> pd.DataFrame:
        """The same table `textcls predict` writes: text, label, confidence, prob_<label>; for a
        multi-label model text, labels (joined), prob_<label> and pred_<label> (passed its threshold).

        `uncertain_below` is for single-label models, `at_least_one` (a text where no label passes
        gets its top-scoring one) for multi-label models.
        """
        firsts, pairs = split_pairs(texts, self.reads_pairs)
        inputs = pd.DataFrame({"text": firsts} | ({"text_pair": pairs} if pairs is not None else {}))
        return self.task.prediction_table(
            inputs, probs, uncertain_below=uncertain_below, at_least_one=at_least_one
        )


def split_pairs(texts: Sequence, pairs: bool) -> tuple[list[str], list[str] | None]:
    """The first texts and, for a model that reads pairs, the second texts of `texts` (each a
    `(text, text_pair)` tuple, or a dict with those keys as `transformers.pipeline` takes them)."""
    if not pairs:
        return list(texts), None
    rows = [(t.get("text"), t.get("text_pair")) if isinstance(t, dict) else t for t in texts]
    if not all(
        isinstance(r, (tuple, list)) and len(r) == 2 and all(isinstance(x, str) for x in r) for r in rows
    ):
        raise ValueError(
            "this model reads pairs of texts: give each input as (text, text_pair) or "
            '{"text": ..., "text_pair": ...}'
        )
    firsts, seconds = [r[0] for r in rows], [r[1] for r in rows]
    return firsts, seconds


def load_predictor(path: str | Path, quantize: str | None = None) -> Predictor:
    """Load a textcls checkpoint file or an exported Hugging Face folder for prediction on CPU in fp32 (what
    `predict` and `test` run in on CPU unless trainer.precision is set, see textcls/precision.py);
    `quantize="int8"` quantizes its Linear layers dynamically (faster on CPU, see textcls/quantize.py)."""
    quantize = check_quantize(quantize, "quantize")
    path = Path(path).expanduser()
    predictor = _from_folder(path) if is_exported_folder(path) else _from_checkpoint(path)
    predictor.model.eval()
    if quantize:
        predictor.model, predictor.quantized = quantize_int8(predictor.model), quantize
    return predictor


def _from_folder(folder: Path) -> Predictor:
    # a folder with textcls's pooled head needs no remote code here: the class is textcls's own
    id2label = load_config(str(folder)).id2label  # any model folder: its own labels, or transformers' default
    model = load_classifier(str(folder), [id2label[i] for i in sorted(id2label)], pooling="auto")
    tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True)
    hparams = {}
    if (folder / "training_settings.json").is_file():
        hparams = json.loads((folder / "training_settings.json").read_text(encoding="utf-8"))
    metrics, matrix = folder / METRICS_FILE, folder / CONFUSION_MATRIX_FILE
    task = _task(
        {"problem_type": model.config.problem_type}, [id2label[i] for i in sorted(id2label)], hparams
    )
    task.load_rule(exported_json(folder, task.rule_file))
    return Predictor(
        model,
        tokenizer,
        _layout(exported_settings(folder)),
        folder,
        hparams,
        metrics if metrics.is_file() else None,
        matrix if matrix.is_file() else None,
        task,
    )


def _from_checkpoint(ckpt_path: Path) -> Predictor:
    if not ckpt_path.is_file():
        raise CheckpointError(f"'{ckpt_path}' {NOT_A_MODEL}")
    ckpt = load_checkpoint(str(ckpt_path))
    model_hp = ckpt["hyper_parameters"]
    data_hp = ckpt.get("datamodule_hyper_parameters", {})
    backbone, trust = model_hp["model_name_or_path"], model_hp.get("trust_remote_code", False)
    pooling = model_hp.get("pooling", "pooler")  # checkpoints from before model.pooling: the own head
    model = load_classifier(backbone, list(model_hp["label_names"]), trust, pretrained=False, pooling=pooling)
    # the LightningModule keeps the network as `self.model`
    weights = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    check_weights_fit(weights, model.state_dict(), list(model_hp["label_names"]))
    model.load_state_dict(weights)
    hparams = {
        "model": {k: v for k, v in model_hp.items() if not k.startswith("_")},
        "data": dict(data_hp),
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
    }
    task = _task(model_hp, list(model_hp["label_names"]), hparams)
    task.load_rule(ckpt.get(task.checkpoint_key))
    # saved into an exported config.json: `pipeline` then applies a sigmoid per label, or a softmax
    model.config.problem_type = task.problem_type
    metrics = find_test_report(ckpt_path)
    matrix = metrics.with_name(CONFUSION_MATRIX_FILE) if metrics else None
    return Predictor(
        model,
        load_tokenizer(backbone, trust),
        _layout(data_hp),
        ckpt_path,
        hparams,
        metrics,
        matrix if matrix and matrix.is_file() else None,
        task,
    )


def _task(settings: dict, label_names: list[str], hparams: dict) -> Task:
    """The task `settings` name (a checkpoint's model hyper-parameters or a model config), with the
    options it was trained with; its decision rule is loaded by the caller."""
    model_hp, data_hp = hparams.get("model", {}), hparams.get("data", {})
    options = {k: model_hp[k] for k in ("threshold", "calibrate", "tune_thresholds") if k in model_hp}
    # the training data's separator joins a prediction's label names
    options["label_separator"] = data_hp.get("label_separator")
    return task_for(settings, label_names, **options)


def _layout(data_settings: dict) -> TextLayout:
    """How the training data was read, from a checkpoint's or exported folder's data settings."""
    layout = {k: data_settings[k] for k in LAYOUT_KEYS if k in data_settings}
    return TextLayout(int(data_settings.get("max_length", DEFAULT_MAX_LENGTH)), **layout)
