"""What `textcls learning-curve` writes: learning_curve.csv (every run), learning_curve.png (the score
against training rows, mean and range over seeds, per model) and learning_curve.md (the summary table
and one sentence: the gain of the last doubling of the training rows)."""

from pathlib import Path

import numpy as np
import pandas as pd

from textcls.report.markdown import md_table

TABLE, FIGURE, SUMMARY = "learning_curve.csv", "learning_curve.png", "learning_curve.md"
MODELS = ("fine-tuned", "TF-IDF")  # TF-IDF: word 1-2 gram TF-IDF + logistic regression (textcls/baseline)


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and fraction: mean training rows, and the score's mean, standard deviation, min and max
    over seeds."""
    grouped = table.groupby(["model", "fraction"], sort=True)
    summary = grouped.agg(
        train_rows=("train_rows", "mean"),
        seeds=("seed", "count"),
        mean=("score", "mean"),
        std=("score", "std"),
        min=("score", "min"),
        max=("score", "max"),
    ).reset_index()
    summary["train_rows"] = summary["train_rows"].round().astype(int)
    return summary


def last_doubling(summary: pd.DataFrame, metric: str) -> str:
    """One sentence: how much the mean score rose per doubling of the training rows between the two
    largest subsets, for each model."""
    parts, span = [], None
    for model in MODELS:
        points = summary[summary["model"] == model].sort_values("train_rows")
        if len(points) < 2:
            continue
        (n0, s0), (n1, s1) = points[["train_rows", "mean"]].to_numpy()[-2:]
        doublings = np.log2(n1 / n0)
        gain = (s1 - s0) / doublings if doublings > 0 else float("nan")
        span = span or (int(n0), int(n1), doublings)
        parts.append(f"{gain:+.3f} for the {model} model ({s0:.3f} -> {s1:.3f})")
    if not parts:
        return "One training size only: no doubling to measure (give two or more --fractions)."
    n0, n1, doublings = span
    per = "" if abs(doublings - 1) < 0.05 else f", per doubling ({doublings:.2f} doublings)"
    return (
        f"The last doubling of the training rows ({n0:,} -> {n1:,}{per}) changed the mean test {metric} by "
        + " and by ".join(parts)
        + "."
    )


def plot(summary: pd.DataFrame, path: Path, metric: str) -> None:
    """The mean score against training rows (log scale) per model, the band spanning min to max over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for model in MODELS:
        points = summary[summary["model"] == model].sort_values("train_rows")
        if points.empty:
            continue
        (line,) = ax.plot(points["train_rows"], points["mean"], marker="o", label=model)
        ax.fill_between(points["train_rows"], points["min"], points["max"], color=line.get_color(), alpha=0.2)
    ax.set_xscale("log", base=2)
    rows = sorted(summary["train_rows"].unique())
    ax.set_xticks(rows, [f"{n:,}" for n in rows])
    ax.minorticks_off()
    ax.set_xlabel("training rows")
    ax.set_ylabel(f"test {metric}")
    seeds = int(summary["seeds"].max())
    ax.set_title(f"Learning curve: mean over {seeds} seed{'s' * (seeds > 1)}, band min to max")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(table: pd.DataFrame, folder: Path, metric: str, final: bool = True) -> str:
    """Write the table (and, when `final`, the figure and summary) into `folder`; the sentence."""
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / TABLE, index=False)
    if not final:
        return ""
    summary = summarize(table)
    sentence = last_doubling(summary, metric)
    plot(summary, folder / FIGURE, metric)
    lines = [f"# Learning curve (test {metric})", "", sentence, "", md_table(summary), ""]
    (folder / SUMMARY).write_text("\n".join(lines))
    return f"{sentence}\nWrote {folder / TABLE}, {folder / FIGURE} and {folder / SUMMARY}"
