"""The data check's report: counts, token lengths and problems of every labelled split.

It reads and splits the data with the same code as training (TextClassificationData), so it sees
exactly the rows `fit` will see. What differs by kind of task (label sets, their pairs, the words of
the messages) comes from the data's task (textcls/tasks/).
"""

import pandas as pd

from textcls.checks.duplicates import duplicates, hash_examples, leakage
from textcls.checks.labels import empty_texts, label_variants, small_classes, unseen_labels
from textcls.checks.lengths import length_problems, token_lengths
from textcls.data import SPLITS, TextClassificationData, label_sort_key
from textcls.data.rows import Split


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
    splits, task = data.raw_splits, data.task
    labels = _label_names(data, splits)
    # one entry per (text, label): a text with several labels counts once for each
    occurrences = {split: task.occurrences(rows.labels) for split, rows in splits.items()}
    hashes = {split: hash_examples(rows) for split, rows in splits.items()}  # one pass over the texts
    problems = (
        unseen_labels(occurrences, labels, bool(data.hparams.labels))
        + label_variants(occurrences)
        + small_classes(occurrences, labels, min_class_examples, task.check_words()["examples"])
        + empty_texts(data.empty_rows, examples)
        + duplicates(splits, hashes, examples)
        + leakage(splits, hashes, examples)
    )
    summaries = {
        split: _split_summary(data, splits[split], occurrences[split], labels, length_sample)
        for split in SPLITS
        if split in splits
    }
    problems += length_problems(summaries, data.layout, truncation_warning, data.token_limit)
    problems += task.check_problems(summaries)
    problems.sort(key=lambda p: p["level"] != "error")
    report = {
        "labels": labels,
        "max_length": data.hparams.max_length,
        **task.check_header(),
        "splits": summaries,
    }
    label_frames = {split: rows.labels.to_frame("label") for split, rows in splits.items()}
    return {**report, **task.check_report(label_frames), "problems": problems}


def _split_summary(
    data: TextClassificationData, rows: Split, occurrences: pd.Series, labels: list[str], sample: int
) -> dict:
    counts = occurrences.value_counts()
    ordered = sorted(set(labels) | set(counts.index), key=label_sort_key)
    return {
        "rows": len(rows),
        "class_counts": {name: int(counts.get(name, 0)) for name in ordered},
        "class_shares": {name: round(float(counts.get(name, 0)) / len(rows), 4) for name in ordered},
        **data.task.check_split_stats(rows.labels),
        "token_lengths": token_lengths(data, rows, sample),
    }


def _label_names(data: TextClassificationData, splits: dict[str, Split]) -> list[str]:
    if data.hparams.labels:
        return list(data.hparams.labels)
    if "train" in splits:
        return data.task.names_in(splits["train"].labels)
    return data.task.names_in(pd.concat([rows.labels.astype(object) for rows in splits.values()]))
