"""Why this label: per-word attributions with Integrated Gradients.

Integrated Gradients (Captum's `LayerIntegratedGradients`) on the word-embedding layer: the
predicted label's logit is integrated along the straight line from a baseline input to the text in
`n_steps` steps. The baseline is the same token sequence with every token replaced by the pad token,
except [CLS] and [SEP] (or <s> and </s>), which are kept, at the text's positions. Token scores (summed over the
embedding dimensions) are summed into words with the fast tokenizer's `word_ids()`, so WordPiece and
BPE backbones both give one score per word. Completeness: the scores add up to logit(text) minus
logit(baseline); what they miss is the convergence delta, reported with every explanation.
Captum is used rather than hand-written gradients: it is PyTorch's maintained attribution library, and
it batches the interpolation steps and computes the delta. Display and files: textcls/explain/view.py.
"""

import inspect
from collections.abc import Sequence

import torch

from textcls.explain.view import Explanation, WordScore
from textcls.inference import Predictor
from textcls.long_text import TextLayout
from textcls.tasks import SINGLE_LABEL, Task, task_for

DEFAULT_STEPS = 50
DEFAULT_INTERNAL_BATCH = 16  # interpolated inputs per forward/backward pass: bounds the memory


class ExplainError(ValueError):
    """An explanation that cannot be made as asked."""


def baseline_ids(input_ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """The Integrated Gradients baseline: pad tokens, with [CLS]/[SEP] (or <s>/</s>) left in place."""
    ends = [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id]
    keep = torch.isin(input_ids, torch.tensor([i for i in ends if i is not None], device=input_ids.device))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return torch.where(keep, input_ids, torch.full_like(input_ids, pad))


def text_positions(model, input_ids: torch.Tensor) -> torch.Tensor | None:
    """The position ids the model gives the text, for the baseline to keep: RoBERTa-like models number
    positions from the token ids (pad tokens get none), so the baseline would otherwise move.
    None where the model takes no position_ids or has no position embedding to read them from."""
    embeddings = getattr(getattr(model.base_model, "embeddings", None), "position_embeddings", None)
    if embeddings is None or "position_ids" not in inspect.signature(model.forward).parameters:
        return None
    seen = []
    handle = embeddings.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    try:
        with torch.no_grad():
            model(input_ids=input_ids)
    finally:
        handle.remove()
    return seen[0].expand_as(input_ids).clone() if seen else None


def merge_words(text: str, word_ids: list, offsets: list, token_scores: Sequence[float]) -> list[WordScore]:
    """Sum the scores of each word's tokens (special tokens have no word and are left out)."""
    spans: dict[int, list] = {}
    for word, (start, end), score in zip(word_ids, offsets, token_scores, strict=True):
        if word is None:
            continue
        span = spans.setdefault(word, [start, end, 0.0])
        span[0], span[1] = min(span[0], start), max(span[1], end)
        span[2] += float(score)
    return [WordScore(text[s:e], int(s), int(e), score) for s, e, score in spans.values()]


def encode_for_words(tokenizer, item: str | tuple[str, str], max_length: int) -> tuple:
    """One text, or a pair, encoded as the model reads it, with what turns its tokens into words: the
    text shown (a pair's two texts joined by the separator token), each token's word (None for special
    tokens) and its character span in the text shown."""
    if isinstance(item, str):
        enc = tokenizer(item, truncation=True, max_length=max_length, return_offsets_mapping=True)
        return enc, item, enc.word_ids(), enc["offset_mapping"]
    first, second = item
    enc = tokenizer(first, second, truncation=True, max_length=max_length, return_offsets_mapping=True)
    joint = f" {tokenizer.sep_token or '|'} "
    shown, shift = first + joint + second, len(first) + len(joint)
    # word numbers restart in the second text: a word is (text, number); its span moves past the first
    words = [None if w is None else (s, w) for s, w in zip(enc.sequence_ids(), enc.word_ids(), strict=True)]
    spans = [
        (a + shift, b + shift) if s == 1 else (a, b)
        for s, (a, b) in zip(enc.sequence_ids(), enc["offset_mapping"], strict=True)
    ]
    return enc, shown, words, spans


def explain_texts(
    model,
    tokenizer,
    texts: Sequence[str | tuple[str, str]],
    label_names: list[str],
    max_length: int,
    n_steps: int = DEFAULT_STEPS,
    internal_batch_size: int = DEFAULT_INTERNAL_BATCH,
    targets: Sequence[int] | None = None,
    task: Task | None = None,
) -> list[Explanation]:
    """Explain each text's prediction (or the label index in `targets`) with Integrated Gradients.

    Args:
        model: A Hugging Face sequence-classification model (on any device; put in eval mode here).
        tokenizer: Its fast tokenizer (word_ids and offsets merge word pieces into words).
        texts: The texts (or `(text, text_pair)` pairs, shown joined by the separator token), explained
            one at a time (no padding enters the attributions).
        label_names: Class names in index order.
        max_length: Texts are truncated to this many tokens, as in training.
        n_steps: Integration steps (more: a smaller convergence delta, proportionally slower).
        internal_batch_size: Interpolated inputs per forward pass.
        targets: The label index to explain per text (default: the predicted label).
        task: What the logits mean (textcls/tasks/): the probabilities shown are the task's (the
            calibrated softmax, or each label's sigmoid); default: an uncalibrated single-label softmax.
    """
    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError as err:
        raise ExplainError("explanations need Captum: pip install 'textcls[explain]'") from err
    if not getattr(tokenizer, "is_fast", False):
        raise ExplainError("explanations need a fast tokenizer (word_ids() and offsets), this one is not")
    device = next(model.parameters()).device
    task = task or task_for({"problem_type": SINGLE_LABEL}, label_names)

    def logits(input_ids, attention_mask, position_ids=None, token_type_ids=None):
        extra = {"position_ids": position_ids, "token_type_ids": token_type_ids}
        extra = {k: v for k, v in extra.items() if v is not None}
        return model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits.float()

    training = model.training
    model.eval()
    explain = LayerIntegratedGradients(logits, model.get_input_embeddings())
    out = []
    # the test loop runs under inference mode; gradients are needed here
    with torch.inference_mode(False), torch.enable_grad():
        try:
            for i, item in enumerate(texts):
                enc, text, word_ids, offsets = encode_for_words(tokenizer, item, max_length)
                ids = torch.tensor([enc["input_ids"]], device=device)
                mask = torch.ones_like(ids)
                # a pair's segment ids, where the backbone takes them, stay as they are along the path
                types = enc.get("token_type_ids") if not isinstance(item, str) else None
                types = torch.tensor([types], device=device) if types is not None else None
                with torch.no_grad():
                    raw = logits(ids, mask, None, types)
                    probs = task.probabilities(raw)[0].cpu()
                target = int(probs.argmax()) if targets is None else int(targets[i])
                scores, delta = explain.attribute(
                    ids,
                    baselines=baseline_ids(ids, tokenizer),
                    additional_forward_args=(mask, text_positions(model, ids), types),
                    target=target,
                    n_steps=n_steps,
                    internal_batch_size=internal_batch_size,
                    return_convergence_delta=True,
                )
                token_scores = scores.sum(-1)[0].detach().float().cpu().tolist()
                words = merge_words(text, word_ids, offsets, token_scores)
                seen = max((w.end for w in words), default=0)
                out.append(
                    Explanation(
                        text,
                        label_names[target],
                        float(probs[target]),
                        words,
                        float(delta.item()),
                        truncated=bool(text[seen:].strip()),
                    )
                )
        finally:
            model.train(training)
    return out


def check_explainable(layout: TextLayout, quantized: str | None = None) -> None:
    """ExplainError unless the model reads a text's first tokens in full precision: explanations
    attribute the first max_length tokens, through gradients (which int8 layers do not give)."""
    if quantized:
        raise ExplainError(
            f"a {quantized}-quantized model gives no gradients: explain with the model as trained"
        )
    if layout.chunked or layout.truncation != "head":
        how = (
            "in windows (data.long_text: chunks)"
            if layout.chunked
            else f"by data.truncation: {layout.truncation}"
        )
        raise ExplainError(
            f"explanations attribute a text's first {layout.max_length} tokens; this model reads texts {how}, "
            "which explanations do not follow yet"
        )


def explain_predictor(predictor: Predictor, texts: Sequence[str], **kwargs) -> list[Explanation]:
    """Explain a loaded checkpoint's or exported folder's predictions, with its calibration."""
    check_explainable(predictor.layout, predictor.quantized)
    return explain_texts(
        predictor.model,
        predictor.tokenizer,
        texts,
        predictor.label_names,
        predictor.max_length,
        task=predictor.task,
        **kwargs,
    )
