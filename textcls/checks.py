"""The data check: what each split holds and what is wrong with it, before any training.

It reads and splits the data with the same code as training (TextClassificationData), so it sees
exactly the rows `fit` will see. Errors make training meaningless and stop `fit`; warnings do not.
"""

import json
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from textcls import checks_multilabel as ml
from textcls.checks_length import length_problems, render_lines, token_lengths
from textcls.data import SPLITS, DataError, TextClassificationData, label_sort_key
from textcls.data.multilabel import names_of
from textcls.data.split import distribution_table

REPORT_FILE = "data_check.json"
ROWS_FILE = "split_rows.json"
CHART_FILE = "class_counts.png"


class DataCheck(Callback):
    """Checks the data at the start of `fit` (and in `textcls check-data`).

    Reports rows, class counts and shares per split, labels only in validation/test, labels that
    differ only by case or spacing, small classes, empty and duplicate texts, texts shared between
    splits, and token lengths (for texts read in windows, also windows per text and their cost); for
    multi-label data the counts are each label's positive texts, with labels per text, texts with no
    label and the label pairs most often together. Writes
    `data_check.json`, `split_rows.json` and `class_counts.png` into the run's log folder. Errors
    stop `fit` with one line; the rest are warnings.

    Args:
        enabled: Check the data at the start of `fit`.
        min_class_examples: Warn about classes with fewer training examples than this.
        truncation_warning: Warn when more than this share of a split's texts is longer than
            data.max_length: cut, or with data.long_text: chunks read in windows (the warning gives the cost).
        length_sample: Measure token lengths on at most this many texts per split (a seeded sample).
        examples: How many example texts or rows each problem lists.
    """

    def __init__(
        self,
        enabled: bool = True,
        min_class_examples: int = 5,
        truncation_warning: float = 0.05,
        length_sample: int = 20_000,
        examples: int = 3,
    ):
        self.enabled, self.min_class_examples = enabled, min_class_examples
        self.truncation_warning, self.length_sample, self.examples = (
            truncation_warning,
            length_sample,
            examples,
        )

    def check(self, data: TextClassificationData) -> dict:
        """The full report of `data` as a JSON-ready dict (see `check_data`)."""
        return check_data(
            data, self.min_class_examples, self.truncation_warning, self.length_sample, self.examples
        )

    def run(
        self, data: TextClassificationData, folder: Path | None, table: bool = True, say=rank_zero_info
    ) -> dict:
        """Check, write into `folder` (when given), print with `say`, and raise DataError on an error."""
        report = self.check(data)
        if folder is not None:
            write_outputs(report, data, folder)
        say(render(report, table=table))
        raise_on_errors(report)
        return report

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or not self.enabled or trainer.datamodule is None:
            return
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        folder = Path(log_dir or ".") if trainer.is_global_zero else None
        # data.py prints the class table at the start of fit already
        self.run(trainer.datamodule, folder, table=False)


# ----------------------------------------------------------------------------- the checks


def check_data(
    data: TextClassificationData,
    min_class_examples: int = 5,
    truncation_warning: float = 0.05,
    length_sample: int = 20_000,
    examples: int = 3,
) -> dict:
    """Counts, token lengths and problems of every labelled split.

    Returns a dict with `labels`, `max_length`, `multi_label`, `splits` (per split: rows, class_counts,
    class_shares, token_lengths (with `windows` per text and their cost when data.long_text is chunks,
    see textcls/checks_length.py); for multi-label data also label_cardinality, max_labels_per_text,
    no_label_rows and no_label_share), `co_occurrence` (multi-label: the top label pairs of train) and
    `problems` (each: level "error" or "warning", code, message, examples).
    """
    data.check_max_length()
    # labels only in validation/test are reported here as an error rather than raised while reading
    frames, multi = data.split_frames, bool(data.hparams.multi_label)
    labels = _label_names(data, frames)
    # one entry per (text, label): a multi-label text counts once for each of its labels
    occurrences = {split: ml.label_occurrences(frame, multi) for split, frame in frames.items()}
    problems = (
        _unseen_labels(data, occurrences, labels)
        + _label_variants(occurrences)
        + _small_classes(occurrences, labels, min_class_examples, "positive texts" if multi else "examples")
        + _empty_texts(data, examples)
        + _duplicates(frames, examples)
        + _leakage(frames, examples)
    )
    splits = {}
    for split in [s for s in SPLITS if s in frames]:
        frame = frames[split]
        counts = occurrences[split].value_counts()
        ordered = sorted(set(labels) | set(counts.index), key=label_sort_key)
        splits[split] = {
            "rows": len(frame),
            "class_counts": {name: int(counts.get(name, 0)) for name in ordered},
            "class_shares": {name: round(float(counts.get(name, 0)) / len(frame), 4) for name in ordered},
            **(ml.label_set_stats(frame) if multi else {}),
            "token_lengths": token_lengths(data, frame, length_sample),
        }
    problems += length_problems(splits, data.layout, truncation_warning, data.token_limit)
    report = {"labels": labels, "max_length": data.hparams.max_length, "multi_label": multi, "splits": splits}
    if multi:
        report["co_occurrence"] = ml.co_occurrence(frames["train"]) if "train" in frames else []
        problems += [_problem("warning", "no_label", m) for m in ml.no_label_messages(splits)]
    problems.sort(key=lambda p: p["level"] != "error")
    return {**report, "problems": problems}


def _problem(level: str, code: str, message: str, examples: list | None = None) -> dict:
    return {"level": level, "code": code, "message": message, "examples": examples or []}


def _label_names(data: TextClassificationData, frames: dict[str, pd.DataFrame]) -> list[str]:
    if data.hparams.labels:
        return list(data.hparams.labels)
    source = frames["train"] if "train" in frames else pd.concat(frames.values())
    if data.hparams.multi_label:
        return names_of(source["label"])
    return sorted(source["label"].unique().tolist(), key=label_sort_key)


def _unseen_labels(data, occurrences: dict[str, pd.Series], labels: list[str]) -> list[dict]:
    out = []
    known = set(labels)
    where = "the given data.labels" if data.hparams.labels else "train"
    for split in ("validation", "test"):
        if split not in occurrences:
            continue
        split_labels = occurrences[split]
        unseen = sorted(set(split_labels) - known, key=label_sort_key)
        if unseen:
            n = split_labels[split_labels.isin(unseen)].index.nunique()
            out.append(
                _problem(
                    "error",
                    "labels_not_in_train",
                    f"labels in {split} never occur in {where}: {', '.join(unseen)} ({n} rows); fix the "
                    "labels or add training examples",
                    unseen,
                )
            )
    return out


def _label_variants(occurrences: dict[str, pd.Series]) -> list[dict]:
    groups = defaultdict(set)
    for split_labels in occurrences.values():
        for label in split_labels.unique():
            groups[" ".join(label.split()).casefold()].add(label)
    variants = [sorted(names) for names in groups.values() if len(names) > 1]
    if not variants:
        return []
    named = "; ".join(" / ".join(repr(n) for n in names) for names in variants)
    return [
        _problem(
            "error",
            "label_variants",
            f"labels that differ only by case or spacing would be trained as different classes: {named}; "
            "write each label one way",
            variants,
        )
    ]


def _small_classes(
    occurrences: dict[str, pd.Series], labels: list[str], minimum: int, what: str = "examples"
) -> list[dict]:
    out = []
    for split, split_labels in occurrences.items():
        counts = split_labels.value_counts()
        if split == "train":
            small = [f"{n} ({int(counts.get(n, 0))})" for n in labels if int(counts.get(n, 0)) < minimum]
            if small:
                out.append(
                    _problem(
                        "warning",
                        "small_classes",
                        f"train has fewer than {minimum} {what} of {len(small)} classes: {', '.join(small)}",
                        small,
                    )
                )
            continue
        missing = [n for n in labels if n not in counts.index]
        if missing:
            out.append(
                _problem(
                    "warning",
                    "classes_missing",
                    f"{split} has no examples of {len(missing)} classes: {', '.join(missing)} "
                    "(their recall and F1 cannot be measured there)",
                    missing,
                )
            )
    return out


def _empty_texts(data: TextClassificationData, examples: int) -> list[dict]:
    return [
        _problem(
            "warning",
            "empty_texts",
            f"{split} had {len(rows)} empty or whitespace-only texts, dropped (source rows "
            f"{', '.join(map(str, rows[:examples]))}{', ...' if len(rows) > examples else ''})",
            rows[:examples],
        )
        for split, rows in data.empty_rows.items()
        if rows
    ]


def _duplicates(frames: dict[str, pd.DataFrame], examples: int) -> list[dict]:
    out = []
    for split, frame in frames.items():
        text = frame["text"].str.strip()
        repeated = text.duplicated(keep="first")
        if repeated.any():
            shown = text[repeated].drop_duplicates().head(examples).tolist()
            out.append(
                _problem(
                    "warning",
                    "duplicate_texts",
                    f"{split} has {int(repeated.sum())} repeated copies of {text[repeated].nunique()} texts",
                    shown,
                )
            )
        labels_per_text = frame.assign(text=text).groupby("text")["label"].nunique()
        conflicting = labels_per_text[labels_per_text > 1]
        if len(conflicting):
            out.append(
                _problem(
                    "warning",
                    "conflicting_labels",
                    f"{split} has {len(conflicting)} texts that occur with different labels",
                    conflicting.index[:examples].tolist(),
                )
            )
    return out


def _leakage(frames: dict[str, pd.DataFrame], examples: int) -> list[dict]:
    texts = {split: set(frame["text"].str.strip()) for split, frame in frames.items()}
    out = []
    for a, b in combinations([s for s in SPLITS if s in frames], 2):
        shared = texts[a] & texts[b]
        if not shared:
            continue
        if texts[a] == texts[b]:
            what = f"{a} and {b} are the same {len(shared)} texts: scores on {b} are optimistic"
        else:
            what = f"{len(shared)} texts occur in both {a} and {b}: scores on {b} overstate accuracy"
        out.append(
            _problem(
                "warning",
                "leakage",
                what,
                sorted(shared)[:examples],
            )
        )
    return out


def raise_on_errors(report: dict) -> None:
    """Raise DataError (one line) naming the first error and how many more there are."""
    errors = [p for p in report["problems"] if p["level"] == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more errors: run `textcls check-data`)" if len(errors) > 1 else ""
        raise DataError(f"data check: {errors[0]['message']}{more}")


# ----------------------------------------------------------------------------- output


def render(report: dict, table: bool = True) -> str:
    """The report as text: the class table (optional), token lengths and problems."""
    lines = []
    splits = report["splits"]
    if table:
        counts = {split: info["class_counts"] for split, info in splits.items()}
        rows = {split: info["rows"] for split, info in splits.items()}  # a text may carry several labels
        lines.append("Label distribution:\n" + distribution_table(counts, rows))
    if report.get("multi_label"):
        lines += ml.render_lines(report)
    lines.append(f"Token lengths (max_length {report['max_length']}):")
    for split, info in splits.items():
        t = info["token_lengths"]
        longer = "in windows" if "windows" in t else "truncated"  # chunked texts are read whole
        lines.append(
            f"  {split:<10} median {t['median']:.0f}  p90 {t['p90']:.0f}  p99 {t['p99']:.0f}  max {t['max']}  "
            f"{longer} {t['truncated_share']:.1%}"
        )
    lines += render_lines(splits)
    if not report["problems"]:
        lines.append("Data check: no problems found")
    for problem in report["problems"]:
        lines.append(f"Data check {problem['level']}: {problem['message']}")
        lines += [f"    e.g. {example!r}" for example in problem["examples"] if isinstance(example, str)]
    return "\n".join(lines)


def write_outputs(report: dict, data: TextClassificationData, folder: Path) -> None:
    """Write the report (JSON), the row ids of each split (JSON) and the class-count chart (PNG)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REPORT_FILE).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    rows = {split: frame["row"].tolist() for split, frame in data.split_frames.items()}
    (folder / ROWS_FILE).write_text(json.dumps(rows))
    plot_class_counts(report).savefig(folder / CHART_FILE, dpi=100)


def plot_class_counts(report: dict):
    """Horizontal bars of each class's count, one colour per split."""
    from matplotlib.figure import Figure

    names = report["labels"]
    splits = list(report["splits"])
    height = max(3.0, 0.25 * len(names) * len(splits) + 1.5)
    fig = Figure(figsize=(8, height), layout="constrained")
    ax = fig.add_subplot()
    bar = 0.8 / len(splits)
    y = np.arange(len(names))
    for i, split in enumerate(splits):
        counts = [report["splits"][split]["class_counts"].get(n, 0) for n in names]
        ax.barh(y + i * bar, counts, height=bar, label=f"{split} ({report['splits'][split]['rows']} rows)")
    ax.set_yticks(y + bar * (len(splits) - 1) / 2, names, fontsize=max(6, 11 - len(names) // 10))
    ax.invert_yaxis()
    ax.set_xlabel("texts")
    ax.set_title(f"Texts per {'label' if report.get('multi_label') else 'class'} and split")
    ax.legend()
    return fig
