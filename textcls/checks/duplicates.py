"""The data check's repeated texts: duplicates within a split, texts that occur with different labels,
and texts shared between splits, found by 64-bit hashes of the normalised texts.

Each split's texts are read from Arrow a batch at a time and reduced to one hash per row (8 bytes,
not a Python string per row), so the check runs in bounded memory on files larger than memory; only
the few texts shown as examples are read back. Two different texts share a 64-bit hash with a
chance of about n² / 2⁶⁵ (1 in 10⁷ for 2 million rows).
"""

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from textcls.checks.problems import problem
from textcls.data.io import SPLITS
from textcls.data.rows import Split
from textcls.data.split import label_codes

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


@dataclass
class Examples:
    """A split's distinct examples, by hash: `unique` (sorted), the `first` row of each, and the rows
    of those that repeat (`second`: each one's second row) or occur with different labels (`conflicting`:
    their first row)."""

    unique: np.ndarray
    first: np.ndarray
    repeats: int
    second: np.ndarray
    conflicting: np.ndarray


def hash_examples(split: Split) -> Examples:
    """The split's examples grouped by hash: one sort of 8 bytes a row, no string kept."""
    hashes = example_hashes(split)
    order = np.argsort(hashes, kind="stable")  # the rows of each example in ascending order
    hashes = hashes[order]
    starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
    sizes = np.diff(np.r_[starts, len(hashes)])
    codes = label_codes(split.labels)[0][order]
    mixed = np.minimum.reduceat(codes, starts) != np.maximum.reduceat(codes, starts)
    repeated = sizes > 1
    return Examples(
        hashes[starts],
        order[starts],
        len(hashes) - len(starts),
        order[starts[repeated] + 1],
        order[starts[mixed]],
    )


def duplicates(splits: dict[str, Split], found: dict[str, Examples], examples: int) -> list[dict]:
    """Warnings for repeated texts (or pairs) within a split, and for those that occur with different labels."""
    out = []
    for split, rows in splits.items():
        seen, noun = found[split], "pairs" if "text_pair" in rows.text_columns() else "texts"
        if seen.repeats:
            shown = np.sort(seen.second)[:examples]  # the first repeated examples in row order
            out.append(
                problem(
                    "warning",
                    "duplicate_texts",
                    f"{split} has {seen.repeats} repeated copies of {len(seen.second)} {noun}",
                    [key for batch in _key_batches(rows, shown) for key in batch],
                )
            )
        if len(seen.conflicting):
            out.append(
                problem(
                    "warning",
                    "conflicting_labels",
                    f"{split} has {len(seen.conflicting)} {noun} that occur with different labels",
                    _first_keys(rows, seen.conflicting, examples),
                )
            )
    return out


def leakage(splits: dict[str, Split], found: dict[str, Examples], examples: int) -> list[dict]:
    """A warning for each pair of splits that share texts (or pairs, in either order): scores on the
    later one are optimistic."""
    out = []
    for a, b in combinations([s for s in SPLITS if s in splits], 2):
        unique_a, unique_b = found[a].unique, found[b].unique
        at = np.minimum(np.searchsorted(unique_b, unique_a), len(unique_b) - 1)
        shared = unique_b[at] == unique_a
        if not shared.any():
            continue
        noun, n = "pairs" if "text_pair" in splits[a].text_columns() else "texts", int(shared.sum())
        if np.array_equal(unique_a, unique_b):
            what = f"{a} and {b} are the same {n} {noun}: scores on {b} are optimistic"
        else:
            what = f"{n} {noun} occur in both {a} and {b}: scores on {b} overstate accuracy"
        out.append(
            problem("warning", "leakage", what, _first_keys(splits[a], found[a].first[shared], examples))
        )
    return out
