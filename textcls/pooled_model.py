"""A classification head that reads the encoder the way the encoder was trained to be read.

Hugging Face's own sequence-classification head reads the first token through the architecture's
pooler (BERT: dense + tanh). Sentence-embedding backbones such as all-MiniLM-L6-v2 were trained to be
read by the mean of their token vectors instead, and ship a pooler that was never trained. This head
takes the attention-masked mean of the last hidden states (`mean`) or the raw first-token vector
(`cls`), then dropout and one linear layer.

This file imports only torch and transformers on purpose: `textcls export` copies it into the model
folder as `modeling_textcls.py` and names it in `config.json` (`auto_map`), so the folder loads
anywhere with `AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)`.
"""

import torch
from torch import nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel
from transformers.loss.loss_utils import ForSequenceClassificationLoss
from transformers.modeling_outputs import SequenceClassifierOutput

POOLINGS = ("cls", "mean")
CONFIG_KEY = "textcls_pooling"  # the pooling, in the model config (and so in an exported config.json)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of each text's token vectors, padding excluded."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


class PooledTextClassifier(PreTrainedModel):
    """An encoder, a pooling of its last hidden states (`config.textcls_pooling`), dropout, a linear layer."""

    config_class = PretrainedConfig
    base_model_prefix = "encoder"

    def __init__(self, config: PretrainedConfig, encoder: PreTrainedModel | None = None):
        super().__init__(config)
        if getattr(config, CONFIG_KEY, None) not in POOLINGS:
            raise ValueError(
                f"config.{CONFIG_KEY} must be one of {POOLINGS}, got {getattr(config, CONFIG_KEY, None)}"
            )
        self.encoder = encoder if encoder is not None else AutoModel.from_config(config)
        if getattr(self.encoder, "pooler", None) is not None:
            # the architecture's pooler is not read: without it, no weights sit idle (DDP would complain)
            self.encoder.pooler = None
        dropout = getattr(config, "classifier_dropout", None)
        if dropout is None:
            dropout = getattr(config, "hidden_dropout_prob", getattr(config, "seq_classif_dropout", 0.1))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        std = getattr(config, "initializer_range", 0.02)
        nn.init.normal_(self.classifier.weight, std=std)
        nn.init.zeros_(self.classifier.bias)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        extra = {"token_type_ids": token_type_ids, "position_ids": position_ids}
        # pass only what this encoder takes (DistilBERT has neither segment nor position ids)
        extra = {k: v for k, v in extra.items() if v is not None}
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **extra
        ).last_hidden_state
        if self.config.textcls_pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = (
                attention_mask
                if attention_mask is not None
                else torch.ones(hidden.shape[:2], device=hidden.device)
            )
            pooled = mean_pool(hidden, mask)
        logits = self.classifier(self.dropout(pooled))
        # transformers' own loss for sequence classification: config.problem_type picks it, as in its heads,
        # so that a Trainer or a user's loop can train this one too
        loss = None if labels is None else ForSequenceClassificationLoss(labels, logits, self.config)
        return SequenceClassifierOutput(loss=loss, logits=logits)
