"""Tokenization, once per text: model inputs cached on disk with `datasets`, keyed on everything that shapes them."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from textcls.long_text import TextLayout, encode_texts

CACHE_VERSION = "4"  # bump when the cached encoding changes shape (or its key)
PROGRESS_ROWS = 100_000  # `datasets` shows its progress bar when tokenizing more texts than this
HASH_BATCH = 100_000


def default_cache_dir() -> Path:
    return Path(os.environ.get("TEXTCLS_CACHE", Path.home() / ".cache" / "textcls"))


def tokenize_cached(
    texts,
    tokenizer,
    layout: TextLayout,
    cache_dir: str | None = None,
    pairs: list[str] | None = None,
    num_proc: int | None = None,
) -> tuple:
    """The model inputs of `texts` (a `datasets.Dataset` with a `text` column, and a `text_pair` column
    for pairs; or lists of `texts` and `pairs`; see `long_text.encode_texts`), tokenized once and
    cached on disk, in `num_proc` processes.

    Returns the token ids of all sequences and their offsets (lists of arrays, one pair per chunk of
    the cached Arrow file: views of the memory-mapped file, not copies), the text each sequence reads
    (`owner`; one sequence per text unless chunked), each text's full length in tokens, and for pairs
    where each sequence's second text starts (None for single texts).
    The cache key covers the texts themselves, the whole tokenizer (vocabulary, rules and truncation
    side) and the layout (max_length, truncation, chunking), so any change to one of them re-tokenizes.
    """
    import datasets

    if not isinstance(texts, datasets.Dataset):
        texts = datasets.Dataset.from_dict(
            {"text": list(texts)} | ({"text_pair": list(pairs)} if pairs else {})
        )
    columns = [c for c in ("text", "text_pair") if c in texts.column_names]
    texts = texts.select_columns(columns)
    key = hashlib.sha256()
    for part in (CACHE_VERSION, layout.key(), _tokenizer_fingerprint(tokenizer)):
        key.update(part.encode() + b"\x00")
    _hash_texts(key, texts, columns)
    folder = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    paired = "text_pair" in columns

    def encode(batch: dict, indices: list[int]) -> dict:
        out = encode_texts(batch["text"], tokenizer, layout, batch.get("text_pair"))
        out["owner"] = [indices[i] for i in out["owner"]]  # the text's index in `texts`, not in the batch
        return out

    features = {
        "input_ids": datasets.Sequence(datasets.Value("int32")),
        "owner": datasets.Value("int64"),
        "text_length": datasets.Value("int64"),
    }
    if paired:
        features["segment"] = datasets.Value("int32")
    was_enabled = datasets.is_progress_bar_enabled()
    if len(texts) <= PROGRESS_ROWS:  # a bar for a few seconds' work is noise
        datasets.disable_progress_bars()
    try:
        encoded = texts.map(
            encode,
            batched=True,
            batch_size=1000,
            with_indices=True,
            remove_columns=columns,
            cache_file_name=str(folder / f"tokens-{key.hexdigest()[:32]}.arrow"),
            features=datasets.Features(features),
            num_proc=num_proc if num_proc and num_proc > 1 and len(texts) > 1000 else None,
            desc="Tokenizing",
        )
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
    table = encoded.data
    tokens, offsets = [], []
    for chunk in table.column("input_ids").chunks:
        # the chunk's offsets index its values buffer in place: no copy of the token ids
        offsets.append(chunk.offsets.to_numpy())
        tokens.append(chunk.values.to_numpy())
    owners = table.column("owner").to_numpy()
    text_lengths = np.zeros(len(texts), dtype=np.int64)
    text_lengths[owners] = table.column("text_length").to_numpy()
    segments = table.column("segment").to_numpy().astype(np.int64) if paired else None
    return tokens, offsets, owners, text_lengths, segments


def _hash_texts(key, texts, columns: list[str]) -> None:
    """Add the texts to the cache key from their Arrow buffers, a batch at a time (no Python strings)."""
    for name in columns:
        key.update(name.encode() + b"\x00")
        for batch in texts.with_format("arrow").iter(batch_size=HASH_BATCH):
            column = batch.column(name).cast(pa.large_string()).combine_chunks()  # one batch's texts
            offsets = np.frombuffer(column.buffers()[1], np.int64)[
                column.offset : column.offset + len(column) + 1
            ]
            key.update((offsets - offsets[0]).tobytes())
            key.update(memoryview(column.buffers()[2])[int(offsets[0]) : int(offsets[-1])])


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
