"""The parts of report.md that every test report shares: tables, the alerts of a comparison, and the
head (model, data, hyper-parameters)."""

import pandas as pd


def md_table(frame: pd.DataFrame) -> str:
    """A markdown table of `frame`; floats with 4 decimals, `|` and newlines escaped in cells."""

    def cell(v) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def texts_of(rows: pd.DataFrame) -> dict:
    """The text columns of report rows, in order: `text`, and `text_pair` for pairs of texts."""
    return {c: rows[c].to_numpy() for c in ("text", "text_pair") if c in rows}


def shortened(rows: pd.DataFrame, chars: int = 200) -> dict:
    """The text columns of report rows cut to their first `chars` characters, for report.md."""
    return {c: rows[c].str.slice(0, chars) for c in texts_of(rows)}


def beaten_by(
    metrics: dict, comparison: list[dict] | None, key: str = "f1_macro", words: str = "macro F1"
) -> list[str]:
    """One line for each other model (a baseline) that scores a higher test `key` (the task's headline
    score, named `words`) on the same rows."""
    mine = metrics.get(key)
    better = [row for row in comparison or [] if mine is not None and (row.get(key) or 0) > mine]
    return [
        f"{row['model']} scores a higher {words} than this model on the same test rows: "
        f"{row[key]:.4f} against {mine:.4f}"
        for row in sorted(better, key=lambda r: -r[key])
    ]


def markdown_head(info: dict, label_names: list[str], alerts: list[str] = ()) -> list[str]:
    """The title, what needs attention first (`alerts`), description, texts per label and split
    (`info["splits"]`; the rows of each split from `info["split_rows"]` when a text can carry several
    labels, else the counts' sum) and the hyper-parameters, as report.md lines."""
    out = [f"# Test report: {info['model']}", ""]
    if alerts:
        out += [f"> **Warning:** {alert}." for alert in alerts] + [""]
    if info.get("description"):
        out += [info["description"], ""]
    if info.get("splits"):
        out += ["## Data", ""]
        splits, rows_of = info["splits"], info.get("split_rows") or {}
        rows = [
            {"label": name, **{s: counts.get(name, 0) for s, counts in splits.items()}}
            for name in label_names
        ]
        totals = {s: rows_of.get(s, sum(counts.values())) for s, counts in splits.items()}
        rows.append({"label": "**rows**", **totals})
        out += [md_table(pd.DataFrame(rows)), ""]
    if info.get("hyperparameters"):
        out += ["## Hyper-parameters", ""]
        out += [f"- {k}: {v}" for k, v in info["hyperparameters"].items()] + [""]
    return out
