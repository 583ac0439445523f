"""The outputs: `label_issues.csv` (every flagged row, worst first) and `label_issues.md` (suspects per
class and the worst rows)."""

from pathlib import Path

import pandas as pd

from textcls.report.markdown import md_table

CSV_FILE, MD_FILE = "label_issues.csv", "label_issues.md"
COLUMNS = ["file", "row", "id", "text", "text_pair", "given_label", "suggested_label", "label_quality"]
WORST = 20


def write_issues(
    issues: pd.DataFrame, rows: pd.DataFrame, label_names: list[str], folder: Path, how: str, separator: str
) -> tuple[Path, Path]:
    """Write the flagged rows `issues` of the checked `rows` into `folder`; `how` says how the
    probabilities were made (for the markdown), `separator` joins a label set. Returns the two files."""
    folder.mkdir(parents=True, exist_ok=True)
    table = issues[[c for c in COLUMNS if c in issues]]
    table.to_csv(folder / CSV_FILE, index=False)
    (folder / MD_FILE).write_text(summary(table, rows, label_names, how, separator), encoding="utf-8")
    return folder / CSV_FILE, folder / MD_FILE


def summary(
    issues: pd.DataFrame, rows: pd.DataFrame, label_names: list[str], how: str, separator: str
) -> str:
    """label_issues.md: how many rows were checked and flagged, per given label, and the worst ones."""
    given = rows["label"].explode()  # a label set counts for each of its labels
    flagged = issues["given_label"].astype(str).str.split(separator).explode()
    per_class = pd.DataFrame(
        {"given label": label_names, "rows": [int((given == n).sum()) for n in label_names]}
    )
    per_class["flagged"] = [int((flagged == n).sum()) for n in label_names]
    per_class["share"] = [
        f"{f / max(r, 1):.1%}" for f, r in zip(per_class["flagged"], per_class["rows"], strict=True)
    ]
    worst = issues.head(WORST).copy()
    worst["file"] = worst["file"].map(lambda f: Path(f).name)
    worst["text"] = worst["text"].map(_short)
    worst["label_quality"] = worst["label_quality"].map(lambda q: f"{q:.3f}")
    worst = worst[["file", "row", "text", "given_label", "suggested_label", "label_quality"]]
    lines = [
        "# Label issues",
        "",
        f"{len(issues)} of {len(rows)} training and validation rows ({len(issues) / len(rows):.1%}) are flagged "
        f"as possibly mislabelled. {how}",
        "",
        "## Suspects per given label",
        "",
        md_table(per_class),
        "",
        f"## The {len(worst)} worst",
        "",
        md_table(worst),
    ]
    return "\n".join(lines) + "\n"


def _short(text: str, width: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"
