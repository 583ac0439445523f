"""Sentence embeddings from a backbone: the mean of its last hidden states over the real tokens,
L2-normalised (the pooling all-MiniLM-L6-v2 and other sentence-transformers models are trained with).

The baselines that need no fine-tuning (zero-shot, frozen encoder) are built on these.
"""

import numpy as np
import torch
from transformers import AutoModel

from textcls.backbone import load_tokenizer, resolve_backbone


class SentenceEncoder:
    """Encodes texts into unit-length vectors with a backbone's encoder, without training it.

    Args:
        model_name_or_path: The backbone (a folder, a packaged offline copy or a hub id).
        max_length: Texts are truncated to this many tokens.
        batch_size: Texts per forward pass.
        trust_remote_code: Allow the backbone to run code from its repository.
    """

    def __init__(
        self,
        model_name_or_path: str,
        max_length: int = 128,
        batch_size: int = 64,
        trust_remote_code: bool = False,
    ):
        self.tokenizer = load_tokenizer(model_name_or_path, trust_remote_code)
        self.model = AutoModel.from_pretrained(
            resolve_backbone(model_name_or_path), trust_remote_code=trust_remote_code
        ).eval()
        self.max_length, self.batch_size = max_length, batch_size

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised embedding per text, shape (len(texts), hidden size), in input order."""
        # longest first, so each batch is padded little; the rows are put back in input order
        lengths = [
            len(ids)
            for ids in self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        ]
        order = np.argsort(-np.asarray(lengths), kind="stable")
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = self.tokenizer(
                [texts[i] for i in rows],
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            hidden = self.model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[rows] = torch.nn.functional.normalize(pooled.float(), dim=-1).numpy()
        return out
