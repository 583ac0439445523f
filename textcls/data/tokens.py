"""Tokenization, once per text: token ids cached on disk with `datasets`, keyed on everything that shapes them."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np

CACHE_VERSION = "1"  # bump when the cached encoding changes shape


def default_cache_dir() -> Path:
    return Path(os.environ.get("TEXTCLS_CACHE", Path.home() / ".cache" / "textcls"))


def tokenize_cached(
    texts: list[str], tokenizer, max_length: int, cache_dir: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of `texts` as a flat array and offsets, tokenized once and cached on disk.

    The cache key covers the texts themselves, the whole tokenizer (vocabulary, rules and truncation
    side) and `max_length`, so any change to one of them re-tokenizes.
    """
    import datasets

    key = hashlib.sha256()
    for part in (CACHE_VERSION, str(max_length), _tokenizer_fingerprint(tokenizer), *texts):
        key.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    folder = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)

    def encode(batch: dict) -> dict:
        return {"input_ids": tokenizer(batch["text"], truncation=True, max_length=max_length)["input_ids"]}

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        encoded = datasets.Dataset.from_dict({"text": texts}).map(
            encode,
            batched=True,
            batch_size=1000,
            remove_columns=["text"],
            cache_file_name=str(folder / f"tokens-{key.hexdigest()[:32]}.arrow"),
            features=datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int32"))}),
        )
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
    column = encoded.data.column("input_ids").combine_chunks()
    offsets = column.offsets.to_numpy()
    tokens = column.flatten().to_numpy()
    return tokens, offsets - offsets[0]


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
