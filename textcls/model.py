"""The LightningModule: a Hugging Face encoder with a classification head, its loss, optimizer and metrics."""

import math

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)
from transformers import get_linear_schedule_with_warmup

from textcls.backbone import load_classifier


class HyperParameterError(ValueError):
    """A hyper-parameter outside its valid range."""


def stage_metrics(num_labels: int, prefix: str) -> MetricCollection:
    """Accuracy, macro/weighted F1 and macro precision/recall, logged as `<prefix>acc`, `<prefix>f1_macro`, ..."""
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


class TextClassifier(L.LightningModule):
    """Fine-tunes a transformer encoder to classify text.

    Args:
        model_name_or_path: Backbone: a local folder, a packaged offline copy, or a Hugging Face hub id.
        label_names: Class names in index order (linked from the data; written into the model config).
        learning_rate: Peak learning rate of AdamW.
        weight_decay: AdamW weight decay (never applied to biases and LayerNorm weights).
        warmup_ratio: Share of all optimizer steps spent warming the learning rate up linearly from 0;
            it then decays linearly to 0.
        adam_epsilon: AdamW epsilon.
        class_weights: Cross-entropy class weights: "none", "balanced" (inverse training class
            frequency), or one weight per class.
        label_smoothing: Label smoothing of the cross-entropy loss, in [0, 1).
        freeze_encoder: Train only the classification head (feature extraction), for comparison with
            full fine-tuning.
        trust_remote_code: Allow the backbone to run code from its repository.
        pretrained: Load the backbone's pretrained weights. `validate`, `test` and `predict` from a
            checkpoint set this to false: the architecture is built from its config, and the
            checkpoint's weights are the only ones loaded.
        compile: Compile the backbone with `torch.compile` (static shapes). Batches are then padded to
            a few length buckets, so it compiles a bounded number of times; worth it on GPU for long
            runs, rarely on CPU.
    """

    def __init__(
        self,
        model_name_or_path: str = "distilbert-base-uncased",
        label_names: list[str] | None = None,
        learning_rate: float = 5e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.06,
        adam_epsilon: float = 1e-8,
        class_weights: str | list[float] = "none",
        label_smoothing: float = 0.0,
        freeze_encoder: bool = False,
        trust_remote_code: bool = False,
        pretrained: bool = True,
        compile: bool = False,
    ):
        super().__init__()
        # `pretrained` says how to build the network, not how it was trained: a checkpoint does not keep it
        self.save_hyperparameters(ignore=["pretrained"])
        _validate(label_names, learning_rate, weight_decay, warmup_ratio, class_weights, label_smoothing)
        self.label_names = list(label_names)
        self.model = load_classifier(model_name_or_path, self.label_names, trust_remote_code, pretrained)
        # from_pretrained hands the network back in eval mode, and Lightning keeps each submodule's
        # mode as it finds it: without this, dropout would stay off during training.
        self.model.train()
        if compile:
            # one graph per (batch size, length bucket, train/eval): a handful, above dynamo's default of 8
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
            self.model.compile(dynamic=False)  # in place: the state_dict keys do not change
        if freeze_encoder:
            for name, param in self.model.named_parameters():
                param.requires_grad = self._is_head(name)
        if isinstance(class_weights, list):
            self.register_buffer(
                "loss_weights", torch.tensor(class_weights, dtype=torch.float), persistent=False
            )
        else:
            self.loss_weights = None
        n = len(self.label_names)
        self.train_metrics = stage_metrics(n, "train/")
        self.val_metrics = stage_metrics(n, "val/")
        self.test_metrics = stage_metrics(n, "test/")

    def _is_head(self, param_name: str) -> bool:
        base = self.model.base_model_prefix
        return not param_name.startswith(base + ".")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch, num_labels)."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = self.loss_weights.to(logits.dtype) if self.loss_weights is not None else None
        return F.cross_entropy(
            logits.float(), labels, weight=weight, label_smoothing=self.hparams.label_smoothing
        )

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.class_weights == "balanced":
            counts = torch.tensor(self.trainer.datamodule.class_counts("train"), dtype=torch.float)
            # sklearn's "balanced": n_samples / (n_classes * count); absent classes get weight 0
            weights = counts.sum() / (len(counts) * counts.clamp(min=1)) * (counts > 0)
            self.loss_weights = weights.to(self.device)

    def _shared_step(
        self, batch: dict, stage: str, metrics: MetricCollection
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = self.loss(logits, batch["labels"])
        metrics.update(logits.detach(), batch["labels"])
        on_step = stage == "train"
        batch_size = len(batch["labels"])
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=batch_size)
        return loss, logits

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train", self.train_metrics)[0]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "val", self.val_metrics)

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        loss, logits = self._shared_step(batch, "test", self.test_metrics)
        return {"loss": loss, "logits": logits.detach()}  # the logits feed the test report

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        logits = self(batch["input_ids"], batch["attention_mask"])
        return {"idx": batch["idx"], "probs": logits.float().softmax(-1)}

    def configure_optimizers(self):
        decay, no_decay = [], []
        for module in self.model.modules():
            for name, param in module.named_parameters(recurse=False):
                if not param.requires_grad:
                    continue
                is_norm = isinstance(module, nn.LayerNorm) or "norm" in type(module).__name__.lower()
                (no_decay if is_norm or name == "bias" else decay).append(param)
        groups = [
            {"params": decay, "weight_decay": self.hparams.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        fused = self.device.type == "cuda"
        optimizer = torch.optim.AdamW(
            groups, lr=self.hparams.learning_rate, eps=self.hparams.adam_epsilon, fused=fused or None
        )
        total = self.trainer.estimated_stepping_batches
        total = int(total) if math.isfinite(total) else 10_000
        warmup = int(self.hparams.warmup_ratio * total)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _validate(label_names, learning_rate, weight_decay, warmup_ratio, class_weights, label_smoothing) -> None:
    if not label_names or len(label_names) < 2:
        raise HyperParameterError(f"model.label_names needs at least two labels, got {label_names}")
    if not learning_rate > 0:
        raise HyperParameterError(f"model.learning_rate must be positive, got {learning_rate}")
    if weight_decay < 0:
        raise HyperParameterError(f"model.weight_decay must be >= 0, got {weight_decay}")
    if not 0 <= warmup_ratio < 1:
        raise HyperParameterError(f"model.warmup_ratio must be in [0, 1), got {warmup_ratio}")
    if not 0 <= label_smoothing < 1:
        raise HyperParameterError(f"model.label_smoothing must be in [0, 1), got {label_smoothing}")
    if isinstance(class_weights, list):
        if len(class_weights) != len(label_names) or min(class_weights) < 0:
            raise HyperParameterError(
                f"model.class_weights needs {len(label_names)} non-negative weights, got {class_weights}"
            )
    elif class_weights not in ("none", "balanced"):
        raise HyperParameterError(
            f"model.class_weights must be 'none', 'balanced' or a list, got '{class_weights}'"
        )
