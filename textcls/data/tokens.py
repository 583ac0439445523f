"""Tokenization, once per text: model inputs cached on disk with `datasets`, keyed on everything that shapes them."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from textcls.long_text import TextLayout, encode_texts

CACHE_VERSION = "3"  # bump when the cached encoding changes shape


def default_cache_dir() -> Path:
    return Path(os.environ.get("TEXTCLS_CACHE", Path.home() / ".cache" / "textcls"))


def tokenize_cached(
    texts: list[str],
    tokenizer,
    layout: TextLayout,
    cache_dir: str | None = None,
    pairs: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The model inputs of `texts` (with `pairs`: of each text and its second text; see
    `long_text.encode_texts`), tokenized once and cached on disk.

    Returns the token ids of all sequences as one flat array, their offsets, the text each sequence
    reads (`owner`; one sequence per text unless chunked), each text's full length in tokens, and for
    pairs where each sequence's second text starts (None for single texts).
    The cache key covers the texts themselves, the whole tokenizer (vocabulary, rules and truncation
    side) and the layout (max_length, truncation, chunking), so any change to one of them re-tokenizes.
    """
    import datasets

    key = hashlib.sha256()
    for part in (CACHE_VERSION, layout.key(), _tokenizer_fingerprint(tokenizer), *texts):
        key.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    for part in ["pairs", *pairs] if pairs is not None else []:
        key.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    folder = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)

    def encode(batch: dict, indices: list[int]) -> dict:
        out = encode_texts(batch["text"], tokenizer, layout, batch.get("text_pair"))
        out["owner"] = [indices[i] for i in out["owner"]]  # the text's index in `texts`, not in the batch
        return out

    columns = {"text": texts} | ({"text_pair": pairs} if pairs is not None else {})
    features = {
        "input_ids": datasets.Sequence(datasets.Value("int32")),
        "owner": datasets.Value("int64"),
        "text_length": datasets.Value("int64"),
    }
    if pairs is not None:
        features["segment"] = datasets.Value("int32")
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        encoded = datasets.Dataset.from_dict(columns).map(
            encode,
            batched=True,
            batch_size=1000,
            with_indices=True,
            remove_columns=list(columns),
            cache_file_name=str(folder / f"tokens-{key.hexdigest()[:32]}.arrow"),
            features=datasets.Features(features),
        )
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
    column = encoded.data.column("input_ids").combine_chunks()
    offsets = column.offsets.to_numpy()
    tokens = column.flatten().to_numpy()
    owners = np.asarray(encoded["owner"], dtype=np.int64)
    text_lengths = np.zeros(len(texts), dtype=np.int64)
    text_lengths[owners] = np.asarray(encoded["text_length"], dtype=np.int64)
    segments = np.asarray(encoded["segment"], dtype=np.int64) if pairs is not None else None
    return tokens, offsets - offsets[0], owners, text_lengths, segments


def _tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        state = repr(sorted(tokenizer.get_vocab().items()))
    else:
        # truncation and padding are per-call settings that the tokenizer remembers: not its identity
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None), spec.pop("padding", None)
        state = json.dumps(spec, sort_keys=True)
    # which end of a long text is cut is a tokenizer attribute, applied at each call
    state += f"|truncation_side={getattr(tokenizer, 'truncation_side', 'right')}"
    return hashlib.sha256((type(tokenizer).__name__ + state).encode()).hexdigest()
