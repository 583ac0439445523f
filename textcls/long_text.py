"""Texts longer than `max_length` tokens: which tokens an encoder reads, and how windows become one answer.

A `TextLayout` turns a text's tokens (without special tokens) into the model inputs: one truncated
sequence (`head`, `tail` or `head_tail`), or overlapping windows (`chunks`) whose logits are pooled
per text (`pool_windows`). The data module, the predictor and the app all go through it, so training,
test, predict and serving read a text the same way.
"""

from dataclasses import asdict, dataclass

import torch

TRUNCATIONS = ("head", "tail", "head_tail")
LONG_TEXT = ("truncate", "chunks")
POOLINGS = ("mean", "max")


@dataclass(frozen=True)
class TextLayout:
    """How a text's tokens become model inputs (see `TextClassificationData` for each setting)."""

    max_length: int
    truncation: str = "head"
    head_tokens: int | None = None
    long_text: str = "truncate"
    chunk_stride: int | None = None

    @property
    def chunked(self) -> bool:
        return self.long_text == "chunks"

    @property
    def head(self) -> int:
        """Tokens kept from the start by `head_tail` (default: a quarter of max_length)."""
        return self.max_length // 4 if self.head_tokens is None else self.head_tokens

    @property
    def stride(self) -> int:
        """Tokens two neighbouring windows share (default: a quarter of max_length)."""
        return self.max_length // 4 if self.chunk_stride is None else self.chunk_stride

    def problem(self, pairs: bool = False) -> str | None:
        """Why these settings cannot work (for `pairs` of texts too), as one line for the user (None
        when they can)."""
        if pairs and (self.long_text != "truncate" or self.truncation != "head"):
            return (
                "data.text_pair_column: a pair is read whole, both texts in one sequence cut longest_first "
                "(the longer text loses tokens first); data.long_text chunks and data.truncation tail or "
                "head_tail cut a single text and do not apply: leave them at truncate and head"
            )
        if self.truncation not in TRUNCATIONS:
            return f"data.truncation must be one of {', '.join(TRUNCATIONS)}, got '{self.truncation}'"
        if self.long_text not in LONG_TEXT:
            return f"data.long_text must be one of {', '.join(LONG_TEXT)}, got '{self.long_text}'"
        if self.head_tokens is not None and not 0 <= self.head_tokens < self.max_length:
            return (
                f"data.head_tokens must be at least 0 and less than data.max_length ({self.max_length}), "
                f"got {self.head_tokens}"
            )
        if self.chunk_stride is not None and not 0 <= self.chunk_stride < self.max_length:
            return (
                f"data.chunk_stride must be at least 0 and less than data.max_length ({self.max_length}), "
                f"got {self.chunk_stride}"
            )
        return None

    def key(self) -> str:
        """Everything that shapes the encoded sequences, for the tokenization cache."""
        return repr(sorted(asdict(self).items()))


class SpecialTokens:
    """The special tokens a tokenizer puts around one text ([CLS] ... [SEP], <s> ... </s>, ...)."""

    def __init__(self, tokenizer):
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        full = tokenizer("a")["input_ids"]
        start = next(i for i in range(len(full) - len(plain) + 1) if full[i : i + len(plain)] == plain)
        self.prefix, self.suffix = full[:start], full[start + len(plain) :]

    def __len__(self) -> int:
        return len(self.prefix) + len(self.suffix)

    def wrap(self, ids: list[int]) -> list[int]:
        return self.prefix + list(ids) + self.suffix


def truncate(ids: list[int], budget: int, truncation: str, head: int) -> list[int]:
    """At most `budget` of `ids`: the first, the last, or the first `head` and the last rest."""
    if len(ids) <= budget:
        return list(ids)
    if truncation == "head":
        return list(ids[:budget])
    if truncation == "tail":
        return list(ids[len(ids) - budget :])
    head = min(head, budget)
    return list(ids[:head]) + list(ids[len(ids) - (budget - head) :])


def window_starts(n: int, budget: int, stride: int) -> list[int]:
    """Starts of windows of `budget` tokens, neighbours sharing `stride`, that cover `n` tokens;
    the last window ends at the text's end (it overlaps its neighbour more rather than run short)."""
    if n <= budget:
        return [0]
    step = max(budget - stride, 1)
    starts = list(range(0, n - budget, step))
    return starts + [n - budget]


def layout_windows(n: int, layout: TextLayout, n_special: int) -> tuple[list[int], int]:
    """Where a chunked text of `n` tokens (special tokens excluded) starts its windows, and their
    length: max_length less the special tokens, neighbours sharing at most all but one token."""
    budget = layout.max_length - n_special
    return window_starts(n, budget, min(layout.stride, budget - 1)), budget


def model_inputs(ids: list[int], layout: TextLayout, special: SpecialTokens) -> list[list[int]]:
    """The sequences the model reads for one text: one, or one per window when chunked."""
    if not layout.chunked:
        budget = layout.max_length - len(special)
        return [special.wrap(truncate(ids, budget, layout.truncation, layout.head))]
    starts, budget = layout_windows(len(ids), layout, len(special))
    return [special.wrap(ids[s : s + budget]) for s in starts]


def encode_texts(
    texts: list[str], tokenizer, layout: TextLayout, pairs: list[str] | None = None
) -> dict[str, list]:
    """Model inputs of `texts` (and, with `pairs`, of each text with its second text): `input_ids` (one
    row per sequence), `owner` (the text each row reads), `text_length` (that text's or pair's full
    length in tokens, special tokens included); for pairs also `segment`, where the second text
    starts (segment ids 0 before it, 1 from it, for backbones that take segment ids)."""
    if pairs is not None:
        return encode_pairs(texts, pairs, tokenizer, layout.max_length)
    special = SpecialTokens(tokenizer)
    # no truncation here: the layout decides what to keep; verbose=False drops the too-long warning
    content = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    out = {"input_ids": [], "owner": [], "text_length": []}
    for i, ids in enumerate(content):
        rows = model_inputs(ids, layout, special)
        out["input_ids"] += rows
        out["owner"] += [i] * len(rows)
        out["text_length"] += [len(ids) + len(special)] * len(rows)
    return out


def takes_segments(tokenizer) -> bool:
    """Whether the backbone reads segment ids (BERT does; RoBERTa and DistilBERT read a pair from its
    separator tokens alone, and DistilBERT's forward refuses them)."""
    return "token_type_ids" in tokenizer.model_input_names


def encode_pairs(texts: list[str], pairs: list[str], tokenizer, max_length: int) -> dict[str, list]:
    """The tokenizer's own pair encoding (`[CLS] a [SEP] b [SEP]` for BERT), cut `longest_first` to
    `max_length`: the longer text loses tokens first, so a short text keeps all of its own."""
    enc = tokenizer(
        list(texts), list(pairs), truncation="longest_first", max_length=max_length, verbose=False
    )
    full = tokenizer(list(texts), list(pairs), verbose=False)["input_ids"]  # untruncated, for the lengths
    # a backbone without segment ids (RoBERTa) reads the pair from its separator tokens alone
    types = enc.get("token_type_ids") or [[0] * len(row) for row in enc["input_ids"]]
    return {
        "input_ids": enc["input_ids"],
        "owner": list(range(len(types))),
        "text_length": [len(row) for row in full],
        "segment": [next((k for k, t in enumerate(row) if t), len(row)) for row in types],
    }


def pool_windows(logits: torch.Tensor, owner: torch.Tensor, n_texts: int, pooling: str) -> torch.Tensor:
    """One row of logits per text from its windows' rows: their mean, or each label's max."""
    index = owner.to(logits.device)[:, None].expand_as(logits)
    out = torch.zeros(n_texts, logits.shape[1], dtype=logits.dtype, device=logits.device)
    return out.scatter_reduce(
        0, index, logits, reduce="mean" if pooling == "mean" else "amax", include_self=False
    )
