"""The data check's repeated texts: duplicates within a split, texts that occur with different labels,
and texts shared between splits, found by 64-bit hashes of the normalised texts.

Each split's texts are read from Arrow a batch at a time and reduced to one hash per row (8 bytes,
not a Python string per row), so the check runs in bounded memory on files larger than memory; only
the few texts shown as examples are read back. Two different texts share a 64-bit hash with a
chance of about n² / 2⁶⁵ (1 in 10⁷ for 2 million rows).
"""

import heapq
from collections.abc import Iterator
from itertools import combinations

import numpy as np
import pandas as pd

from textcls.checks.problems import problem
from textcls.data.io import SPLITS
from textcls.data.rows import Split

PAIR_JOIN = " ||| "  # how a pair is shown in the problems' examples
BATCH = 50_000


def example_keys(rows: dict[str, list]) -> tuple[list[str], str]:
    """What makes two rows the same example, and its name: the text, or a pair of texts in either
    order (a paraphrase pair read backwards is the same question)."""
    if "text_pair" not in rows:
        return [t.strip() for t in rows["text"]], "texts"
    pairs = zip(rows["text"], rows["text_pair"], strict=True)
    return [PAIR_JOIN.join(sorted((a.strip(), b.strip()))) for a, b in pairs], "pairs"


def _key_batches(split: Split, positions: np.ndarray | None = None) -> Iterator[list[str]]:
    texts = split.texts.select_columns(split.text_columns())
    if positions is not None:
        texts = texts.select(positions)
    for start in range(0, len(texts), BATCH):
        yield example_keys(texts[start : start + BATCH])[0]


def example_hashes(split: Split) -> np.ndarray:
    """A 64-bit hash of each row's example (see `example_keys`), in row order."""
    parts = [pd.util.hash_array(np.asarray(keys, dtype=object)) for keys in _key_batches(split)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def _first_keys(split: Split, positions: np.ndarray, n: int) -> list[str]:
    """The `n` alphabetically first examples at `positions`."""
    keys = (key for batch in _key_batches(split, np.sort(positions)) for key in batch)
    return heapq.nsmallest(n, keys)


def duplicates(splits: dict[str, Split], hashes: dict[str, np.ndarray], examples: int) -> list[dict]:
    """Warnings for repeated texts (or pairs) within a split, and for those that occur with different labels."""
    out = []
    for split, rows in splits.items():
        h, noun = hashes[split], "pairs" if "text_pair" in rows.text_columns() else "texts"
        unique, first, inverse, counts = np.unique(
            h, return_index=True, return_inverse=True, return_counts=True
        )
        repeated = np.ones(len(h), dtype=bool)
        repeated[first] = False  # every copy after the first
        if repeated.any():
            # the first repeated examples in row order, each once
            order = np.flatnonzero(repeated)
            _, firsts = np.unique(inverse[order], return_index=True)
            shown = np.sort(order[firsts])[:examples]
            out.append(
                problem(
                    "warning",
                    "duplicate_texts",
                    f"{split} has {int(repeated.sum())} repeated copies of {int((counts > 1).sum())} {noun}",
                    [key for batch in _key_batches(rows, shown) for key in batch],
                )
            )
        label_codes = pd.factorize(rows.labels)[0]
        pairs = np.unique(np.stack([inverse.ravel(), label_codes]), axis=1)  # distinct (text, label)
        conflicting = np.flatnonzero(np.bincount(pairs[0], minlength=len(unique)) > 1)
        if len(conflicting):
            out.append(
                problem(
                    "warning",
                    "conflicting_labels",
                    f"{split} has {len(conflicting)} {noun} that occur with different labels",
                    _first_keys(rows, first[conflicting], examples),
                )
            )
    return out


def leakage(splits: dict[str, Split], hashes: dict[str, np.ndarray], examples: int) -> list[dict]:
    """A warning for each pair of splits that share texts (or pairs, in either order): scores on the
    later one are optimistic."""
    out = []
    for a, b in combinations([s for s in SPLITS if s in splits], 2):
        unique_a, first_a = np.unique(hashes[a], return_index=True)
        unique_b = np.unique(hashes[b])
        shared = np.isin(unique_a, unique_b, assume_unique=True)
        if not shared.any():
            continue
        noun, n = "pairs" if "text_pair" in splits[a].text_columns() else "texts", int(shared.sum())
        if np.array_equal(unique_a, unique_b):
            what = f"{a} and {b} are the same {n} {noun}: scores on {b} are optimistic"
        else:
            what = f"{n} {noun} occur in both {a} and {b}: scores on {b} overstate accuracy"
        out.append(problem("warning", "leakage", what, _first_keys(splits[a], first_a[shared], examples)))
    return out
