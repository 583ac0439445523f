"""Reviewing label issues in the web app: browse `label_issues.csv`, mark each row "correct as given" or
"relabel to X", and keep the decisions in a corrections file (CSV: `file`, `row`, `label`; a row
marked correct as given keeps its own label) that `fit` applies with `data.corrections_file`.

The logic is in plain functions (tested without Streamlit); `review_page` only lays out the widgets.
"""

from pathlib import Path

import pandas as pd

from textcls.data.corrections import COLUMNS

AS_GIVEN = "correct as given"
RELABEL = "relabel to "


def read_issues(path: str | Path) -> pd.DataFrame:
    """label_issues.csv as written by `textcls label-issues` (labels and rows kept as written)."""
    return pd.read_csv(
        path, dtype={"file": str, "given_label": str, "suggested_label": str}, keep_default_na=False
    )


def read_decisions(path: str | Path) -> pd.DataFrame:
    """The corrections file so far (empty when there is none yet)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.read_csv(path, dtype={"file": str, "label": str}, keep_default_na=False)


def decide(path: str | Path, file: str, row: int, label: str) -> pd.DataFrame:
    """Record that row `row` of `file` should carry `label` (its given label: correct as given), replacing
    an earlier decision on it; writes the corrections file and returns it."""
    table = read_decisions(path)
    table = table[~((table["file"] == file) & (table["row"].astype(int) == int(row)))]
    table = pd.concat(
        [table, pd.DataFrame([{"file": file, "row": int(row), "label": label}])], ignore_index=True
    )
    table.to_csv(path, index=False)
    return table


def decision_of(decisions: pd.DataFrame, issue: pd.Series) -> str | None:
    """What was decided on an issue's row: AS_GIVEN, RELABEL + label, or None (not reviewed yet)."""
    match = decisions[
        (decisions["file"] == issue["file"]) & (decisions["row"].astype(int) == int(issue["row"]))
    ]
    if match.empty:
        return None
    label = match["label"].iloc[-1]
    return AS_GIVEN if label == issue["given_label"] else RELABEL + label


def choices(issue: pd.Series, label_names: list[str]) -> list[str]:
    """The options for one issue: correct as given, the suggested label first, then every other label."""
    others = [n for n in label_names if n not in (issue["given_label"], issue["suggested_label"])]
    first = [issue["suggested_label"]] if issue["suggested_label"] != issue["given_label"] else []
    return [AS_GIVEN, *(RELABEL + n for n in first + others)]


def label_of(choice: str, issue: pd.Series) -> str:
    """The label a choice gives the row."""
    return issue["given_label"] if choice == AS_GIVEN else choice.removeprefix(RELABEL)


def label_names_of(issues: pd.DataFrame, separator: str = ";") -> list[str]:
    """The labels that occur in the issues (given or suggested), sorted; label sets split."""
    cells = pd.concat([issues["given_label"], issues["suggested_label"]]).astype(str)
    return sorted(
        {n for cell in cells for n in (cell.split(separator) if separator in cell else [cell]) if n}
    )


def review_page(issues_path: str, corrections_path: str, page_size: int = 20) -> None:
    """The Streamlit page: the issues worst first, page by page, a choice per row saved at once."""
    import streamlit as st

    issues = read_issues(issues_path)
    st.title("Label issues")
    st.caption(
        f"{len(issues)} rows from {issues_path}, worst first. Decisions are saved to {corrections_path}; "
        f"`textcls fit --data.corrections_file {corrections_path}` applies them."
    )
    decisions = read_decisions(corrections_path)
    reviewed = sum(decision_of(decisions, issue) is not None for _, issue in issues.iterrows())
    st.progress(reviewed / max(len(issues), 1), text=f"{reviewed} of {len(issues)} reviewed")
    pages = max((len(issues) - 1) // page_size + 1, 1)
    number = st.number_input("Page", 1, pages, 1) - 1
    names = label_names_of(issues)
    for i, issue in issues.iloc[number * page_size : (number + 1) * page_size].iterrows():
        st.divider()
        st.markdown(
            f"**{i + 1}.** `{Path(issue['file']).name}` row {issue['row']} · quality {issue['label_quality']:.3f}"
        )
        st.write(issue["text"])
        if "text_pair" in issue:
            st.write(issue["text_pair"])
        st.write(f"Given: **{issue['given_label']}** · suggested: **{issue['suggested_label']}**")
        options = ["not reviewed", *choices(issue, names)]
        current = decision_of(decisions, issue)
        choice = st.radio(
            "Decision",
            options,
            options.index(current) if current in options else 0,
            key=f"d{i}",
            horizontal=True,
        )
        if choice != "not reviewed" and choice != current:
            decisions = decide(corrections_path, issue["file"], issue["row"], label_of(choice, issue))
    st.download_button(
        "Download the corrections (CSV)", decisions.to_csv(index=False), Path(corrections_path).name
    )
