"""The data check's outputs: the printed text, `data_check.json`, `split_rows.json` and
`class_counts.png`.

They read the report alone (a saved data_check.json renders the same): its header names the kind of
task (`task_for`), which gives its own lines and words.
"""

import json
from pathlib import Path

import numpy as np

from textcls.checks.lengths import render_lines
from textcls.data import TextClassificationData
from textcls.data.split import distribution_table
from textcls.tasks import task_for

REPORT_FILE = "data_check.json"
ROWS_FILE = "split_rows.json"
CHART_FILE = "class_counts.png"


def render(report: dict, table: bool = True) -> str:
    """The report as text: the class table (optional), token lengths and problems."""
    lines = []
    splits = report["splits"]
    if table:
        counts = {split: info["class_counts"] for split, info in splits.items()}
        rows = {split: info["rows"] for split, info in splits.items()}  # a text may carry several labels
        lines.append("Label distribution:\n" + distribution_table(counts, rows))
    lines += task_for(report).check_lines(report)
    lines.append(f"Token lengths (max_length {report['max_length']}):")
    for split, info in splits.items():
        t = info["token_lengths"]
        longer = "in windows" if "windows" in t else "truncated"  # chunked texts are read whole
        lines.append(
            f"  {split:<10} median {t['median']:.0f}  p90 {t['p90']:.0f}  p99 {t['p99']:.0f}  max {t['max']}  "
            f"{longer} {t['truncated_share']:.1%}"
        )
        for side, s in t.get("sides", {}).items():  # a pair's two texts, each without special tokens
            lines.append(f"    {side:<10} median {s['median']:.0f}  p90 {s['p90']:.0f}  max {s['max']}")
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
    write_rows(folder / ROWS_FILE, {split: rows.rows for split, rows in data.raw_splits.items()})
    plot_class_counts(report).savefig(folder / CHART_FILE, dpi=100)


def write_rows(path: Path, rows: dict[str, np.ndarray], batch: int = 100_000) -> None:
    """`json.dumps(rows)` written a batch of row numbers at a time (no Python int per row at once)."""
    with open(path, "w") as f:
        for i, (split, numbers) in enumerate(rows.items()):
            f.write(("{" if i == 0 else ", ") + json.dumps(split) + ": [")
            for start in range(0, len(numbers), batch):
                f.write(
                    (", " if start else "") + ", ".join(map(str, numbers[start : start + batch].tolist()))
                )
            f.write("]")
        f.write("}" if rows else "{}")


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
    ax.set_title(f"Texts per {task_for(report).check_words()['class']} and split")
    ax.legend()
    return fig
