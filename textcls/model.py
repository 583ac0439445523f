"""The LightningModule: a Hugging Face encoder with a classification head, its loss, optimizer and metrics."""

import math

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torchmetrics import MetricCollection
from transformers import get_linear_schedule_with_warmup

from textcls.backbone import load_classifier, resolve_pooling
from textcls.checkpoint import check_weights_fit, exported_json, is_exported_folder
from textcls.long_text import POOLINGS, pool_windows
from textcls.precision import full_precision_on_cpu
from textcls.predictions import gather_in_order
from textcls.tasks import Task, task_for


class HyperParameterError(ValueError):
    """A hyper-parameter outside its valid range."""


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
            frequency, computed from the training split in `fit`, `validate` and `test`, and kept in
            the checkpoint), or one weight per class. For multi-label data these weigh each label's
            positive examples (`pos_weight`): "balanced" is negatives / positives per label in the
            training split, clamped to [0.01, 100].
        label_smoothing: Label smoothing of the loss, in [0, 1); for multi-label data each 0/1 target
            moves that far towards 0.5.
        freeze_encoder: Train only the classification head (feature extraction), for comparison with
            full fine-tuning.
        trust_remote_code: Allow the backbone to run code from its repository.
        pretrained: Load the backbone's pretrained weights. `validate`, `test` and `predict` from a
            checkpoint set this to false: the architecture is built from its config, and the
            checkpoint's weights are the only ones loaded.
        compile: Compile the backbone with `torch.compile` (static shapes). Batches are then padded to
            a few length buckets, so it compiles a bounded number of times; worth it on GPU for long
            runs, rarely on CPU.
        multi_label: Score each label on its own (sigmoid, binary cross-entropy); linked from
            data.multi_label.
        problem_type: The kind of task, by Hugging Face's name (linked from data.problem_type; None:
            from multi_label).
        threshold: Multi-label data: the probability a label needs to be given, for every label that
            has no tuned threshold.
        tune_thresholds: Multi-label data: after each validation of `fit`, pick each label's threshold
            that maximises its F1 on the validation split (labels with fewer than 5 validation
            positives keep `threshold`); stored in each checkpoint and applied by test, predict,
            export and the app.
        calibrate: Fit a temperature on the validation split after each validation of `fit` (temperature
            scaling), stored in each checkpoint and applied to every probability textcls writes;
            false keeps the raw softmax (temperature 1), as does a validation split with fewer than 5
            wrong predictions (too few to fit one; said once per fit, and in the test report). Either
            way the validation predictions' confidences are stored, for `--prediction.target_precision`.
        pooling: How the classification head reads the encoder's output: "pooler" (the architecture's
            own head: for BERT the first token through its pooler layer), "cls" (the raw first-token
            vector), "mean" (the mean of the token vectors, padding excluded), or "auto": the
            pooling a sentence-transformers backbone was trained with (its modules.json and pooling
            config; "mean" for all-MiniLM-L6-v2, whose pooler was never trained), else "pooler".
            The choice is printed at `fit` and stored in the checkpoint.
        chunk_pooling: With data.long_text "chunks": how a text's windows' logits become its one
            answer in validation, test and predict: "mean", or "max" (each label's largest logit:
            a label one window shows strongly wins).
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
        calibrate: bool = True,
        multi_label: bool = False,
        problem_type: str | None = None,
        threshold: float = 0.5,
        tune_thresholds: bool = True,
        pooling: str = "auto",
        chunk_pooling: str = "mean",
    ):
        super().__init__()
        # `pretrained` says how to build the network, not how it was trained: a checkpoint does not keep it
        self.save_hyperparameters(ignore=["pretrained"])
        _validate(label_names, learning_rate, weight_decay, warmup_ratio, class_weights, label_smoothing)
        # everything that differs between kinds of task (one label, several, a number): loss, metrics, decisions
        self.task: Task = task_for(
            self.hparams,
            label_names,
            calibrate=calibrate,
            threshold=threshold,
            tune_thresholds=tune_thresholds,
        )
        if len(label_names) < self.task.min_labels:
            raise HyperParameterError(
                f"model.label_names needs at least {self.task.min_labels} labels, got {label_names}"
            )
        defaults = {"class_weights": "none", "label_smoothing": 0.0, "threshold": 0.5}
        changed = [f"model.{k}" for k, v in defaults.items() if self.hparams[k] != v]
        if refused := self.task.refuses(changed):
            raise HyperParameterError(refused)
        if not 0 < threshold < 1:
            raise HyperParameterError(f"model.threshold must be in (0, 1), got {threshold}")
        if chunk_pooling not in POOLINGS:
            raise HyperParameterError(
                f"model.chunk_pooling must be one of {', '.join(POOLINGS)}, got '{chunk_pooling}'"
            )
        self.label_names = list(label_names)
        resolved = resolve_pooling(model_name_or_path, pooling)
        self.hparams["pooling"] = resolved  # the checkpoint keeps the head it was built with, never "auto"
        if pretrained and pooling == "auto":
            rank_zero_info(f"Classification head: model.pooling '{resolved}' (auto, from the backbone)")
        self.model = load_classifier(
            model_name_or_path, self.label_names, trust_remote_code, pretrained, pooling=resolved
        )
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
        weights = torch.tensor(class_weights, dtype=torch.float) if isinstance(class_weights, list) else None
        # a buffer, so that "balanced" weights set later follow the module to its device
        self.register_buffer("loss_weights", weights, persistent=False)
        self.model.config.problem_type = (
            self.task.problem_type
        )  # exported in config.json, as transformers does
        self.train_metrics = self.task.stage_metrics("train/")
        self.val_metrics = self.task.stage_metrics("val/")
        self.test_metrics = self.task.stage_metrics("test/")
        # an exported textcls folder used as the backbone (`--ckpt_path FOLDER`) brings its decision rule
        if is_exported_folder(model_name_or_path):
            self.task.load_rule(exported_json(model_name_or_path, self.task.rule_file))
        self._val_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._told: set[str] = set()  # the topics the decision rule's fitting spoke of: once per fit

    def _is_head(self, param_name: str) -> bool:
        base = self.model.base_model_prefix
        return not param_name.startswith(base + ".")

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of shape (batch, num_labels); `token_type_ids` mark a pair's second text."""
        segments = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **segments).logits

    def text_logits(self, batch: dict) -> torch.Tensor:
        """Logits of each text of a batch: its row's, or the pooled rows of its windows (chunked texts)."""
        logits = self(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        if "owner" in batch:
            logits = pool_windows(logits, batch["owner"], len(batch["idx"]), self.hparams.chunk_pooling)
        return logits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # in fp32 whatever the precision: the weights are fp32 and half-precision logits are upcast
        weight = self.loss_weights.float() if self.loss_weights is not None else None
        return self.task.loss(logits, labels, weight, self.hparams.label_smoothing)

    def setup(self, stage: str) -> None:
        data = getattr(self.trainer, "datamodule", None)
        # fit and a balanced loss need the training labels; predict and plain validate/test read no training data
        needs_train = stage == "fit" or (stage != "predict" and self.hparams.class_weights == "balanced")
        if data is None or not needs_train or "train" not in data.splits:
            return
        train = data.splits["train"].labels
        if stage == "fit":
            # Lightning restores a resumed run's weights (and what the task learnt here) after this
            self.task.init_head(self.model, train)
        # validate and test too: their val/loss and test/loss are then the loss that fit reports
        if self.hparams.class_weights == "balanced":
            self.loss_weights = self.task.balanced_weights(train).to(self.device)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.hparams.class_weights == "balanced" and self.loss_weights is not None:
            checkpoint["balanced_class_weights"] = self.loss_weights.tolist()
        if (state := self.task.rule_state()) is not None:
            checkpoint[self.task.checkpoint_key] = state

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_weights_fit(checkpoint["state_dict"], self.state_dict(), self.label_names)
        # the weights the model was trained with, even when the data has changed since
        if "balanced_class_weights" in checkpoint:
            self.loss_weights = torch.tensor(checkpoint["balanced_class_weights"], device=self.device)
        # a checkpoint from before calibration existed: raw softmax, no validation record
        self.task.load_rule(checkpoint.get(self.task.checkpoint_key))

    @property
    def temperature(self) -> float:
        """The single-label calibration temperature (1 for other tasks)."""
        return getattr(self.task, "temperature", 1.0)

    @property
    def calibration(self):
        """A single-label model's temperature and validation record (None otherwise)."""
        return getattr(self.task, "calibration", None)

    @property
    def thresholds(self):
        """A multi-label model's per-label cut-offs (None otherwise)."""
        return getattr(self.task, "thresholds", None)

    def on_fit_start(self) -> None:
        self._told = set()

    def _fitting(self) -> bool:
        trainer = self._trainer
        return trainer is not None and trainer.state.fn == "fit" and not trainer.sanity_checking

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """What the task makes of logits: the calibrated softmax, or each label's sigmoid."""
        return self.task.probabilities(logits)

    def _shared_step(
        self, batch: dict, stage: str, metrics: MetricCollection
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.text_logits(batch)
        loss = self.loss(logits, batch["labels"])
        on_step = stage == "train"
        batch_size = len(batch["labels"])
        # some tasks score a validation of `fit` at its end, by the rule fitted there
        if not (stage == "val" and self.task.scored_at_validation_end and self._fitting()):
            metrics.update(*self.task.metric_inputs(logits.detach(), batch["labels"]))
            self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=batch_size)
        # the epoch's mean over all ranks under DDP (the metric objects synchronise themselves);
        # not for training, where it would cost a collective at every step
        self.log(
            f"{stage}/loss",
            loss,
            on_step=on_step,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch_size,
            sync_dist=not on_step,
        )
        return loss, logits

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train", self.train_metrics)[0]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        fitting = self._fitting()
        # fp32 on CPU, as test and predict: the temperature and thresholds fitted here fit their probabilities
        with full_precision_on_cpu(self.device, enabled=fitting):
            _, logits = self._shared_step(batch, "val", self.val_metrics)
        if fitting:
            self._val_outputs.append((batch["idx"], logits.detach().float(), batch["labels"]))

    def on_validation_epoch_end(self) -> None:
        # Fit the task's decision rule (temperature or thresholds) at every validation of `fit`, on the
        # logits that validation computed anyway: this hook runs before ModelCheckpoint saves
        # (on_validation_end), so best.ckpt and last.ckpt each carry the rule of their own weights, with
        # no second pass over the data and no re-saving of checkpoints after `fit`.
        if not self._val_outputs:
            return
        idx, logits, labels = (torch.cat(t) for t in zip(*self._val_outputs, strict=True))
        self._val_outputs = []
        labels = labels.float().reshape(len(labels), -1)
        # every rank's rows, each once (a distributed sampler may repeat some)
        _, rows = gather_in_order(idx, torch.cat([logits, labels], 1))
        n = len(self.label_names)
        values, notes = self.task.fit_rule(rows[:, :n], rows[:, n:].to(labels.dtype))
        self.log_dict(values)
        for topic, note in notes.items():
            if topic not in self._told:
                rank_zero_info(f"{note} (epoch {self.current_epoch}; said once per fit)")
                self._told.add(topic)

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        loss, logits = self._shared_step(batch, "test", self.test_metrics)
        return {"loss": loss, "logits": logits.detach()}  # the logits feed the test report

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        logits = self.text_logits(batch)
        return {"idx": batch["idx"], "probs": self.probabilities(logits)}

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
        # Fused AdamW unscales fp16 gradients inside its step, so Lightning's mixed precision refuses
        # to clip them: fused only when nothing clips; otherwise torch's default (foreach on GPU).
        fused = self.device.type == "cuda" and not self.trainer.gradient_clip_val
        optimizer = torch.optim.AdamW(
            groups, lr=self.hparams.learning_rate, eps=self.hparams.adam_epsilon, fused=fused or None
        )
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise HyperParameterError(
                "trainer.max_epochs is -1 (no limit) and trainer.max_steps is not set: set trainer.max_steps, "
                "which the learning-rate schedule needs to know its length"
            )
        total = int(total)
        warmup = int(self.hparams.warmup_ratio * total)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _validate(label_names, learning_rate, weight_decay, warmup_ratio, class_weights, label_smoothing) -> None:
    if not label_names:
        raise HyperParameterError(f"model.label_names needs the label names, got {label_names}")
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
