"""The data check's report: counts, token lengths and problems of every labelled split.

It reads and splits the data with the same code as training (TextClassificationData), so it sees
exactly the rows `fit` will see. What differs by kind of task (label sets, their pairs, the words of
the messages) comes from the data's task (textcls/tasks/).
"""

import pandas as pd

from textcls.checks.labels import (
    duplicates,
    empty_texts,
    label_variants,
    leakage,
    small_classes,
    unseen_labels,
)
from textcls.checks.lengths import length_problems, token_lengths
from textcls.data import SPLITS, TextClassificationData, label_sort_key


def check_data(
    data: TextClassificationData,
    min_class_examples: int = 5,
    truncation_warning: float = 0.05,
    length_sample: int = 20_000,
    examples: int = 3,
) -> dict:
    """Counts, token lengths and problems of every labelled split.

    Returns a dict with `labels`, `max_length`, the task's `check_header` (which kind of task),
    `splits` (per split: rows, class_counts, class_shares, token_lengths (with `windows` per text and
    their cost when data.long_text is chunks, see textcls/checks/lengths.py); for multi-label data also
    label_cardinality, max_labels_per_text, no_label_rows and no_label_share), the task's own entries
    (multi-label: `co_occurrence`, the top label pairs of train) and `problems` (each: level "error" or
    "warning", code, message, examples).
    """
    data.check_max_length()
    # labels only in validation/test are reported here as an error rather than raised while reading
    frames, task = data.split_frames, data.task
    labels = _label_names(data, frames)
    # one entry per (text, label): a text with several labels counts once for each
    occurrences = {split: task.occurrences(frame["label"]) for split, frame in frames.items()}
    problems = (
        unseen_labels(occurrences, labels, bool(data.hparams.labels))
        + label_variants(occurrences)
        + small_classes(occurrences, labels, min_class_examples, task.check_words()["examples"])
        + empty_texts(data.empty_rows, examples)
        + duplicates(frames, examples)
        + leakage(frames, examples)
    )
    splits = {
        split: _split_summary(data, frames[split], occurrences[split], labels, length_sample)
        for split in SPLITS
        if split in frames
    }
    problems += length_problems(splits, data.layout, truncation_warning, data.token_limit)
    problems += task.check_problems(splits)
    problems.sort(key=lambda p: p["level"] != "error")
    report = {
        "labels": labels,
        "max_length": data.hparams.max_length,
        **task.check_header(),
        "splits": splits,
    }
    return {**report, **task.check_report(frames), "problems": problems}


def _split_summary(
    data: TextClassificationData, frame: pd.DataFrame, occurrences: pd.Series, labels: list[str], sample: int
) -> dict:
    counts = occurrences.value_counts()
    ordered = sorted(set(labels) | set(counts.index), key=label_sort_key)
    return {
        "rows": len(frame),
        "class_counts": {name: int(counts.get(name, 0)) for name in ordered},
        "class_shares": {name: round(float(counts.get(name, 0)) / len(frame), 4) for name in ordered},
        **data.task.check_split_stats(frame["label"]),
        "token_lengths": token_lengths(data, frame, sample),
    }


def _label_names(data: TextClassificationData, frames: dict[str, pd.DataFrame]) -> list[str]:
    if data.hparams.labels:
        return list(data.hparams.labels)
    source = frames["train"] if "train" in frames else pd.concat(frames.values())
    return data.task.names_in(source["label"])
