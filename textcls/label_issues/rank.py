"""Ranking with cleanlab (confident learning, Northcutt et al. 2021): which given labels the out-of-fold
probabilities disagree with, worst first by self-confidence (the probability of the given label; for
label sets, cleanlab's aggregate of each label's). cleanlab is an optional extra (AGPL-3.0)."""

import numpy as np
import pandas as pd

from textcls.label_issues.errors import LabelIssuesError

INSTALL = 'label-issues needs cleanlab (AGPL-3.0, an optional extra): pip install "textcls[labels]"'
SET_THRESHOLD = 0.5  # the suggested label set of a multi-label row: labels whose probability reaches it


def rank_issues(
    rows: pd.DataFrame, probs: np.ndarray, label_names: list[str], separator: str = ";"
) -> pd.DataFrame:
    """The flagged rows of `rows`, worst first, with `given_label`, `suggested_label` and `label_quality`
    (0 to 1, lower is more likely wrong); `probs` are the rows' out-of-fold probabilities, `separator`
    joins a label set."""
    index = {name: i for i, name in enumerate(label_names)}
    multi = isinstance(rows["label"].iloc[0], (tuple, list))
    if multi:
        labels = [[index[n] for n in names] for names in rows["label"]]
        flagged, quality = _rank_sets(labels, probs)
        suggested = [
            separator.join(label_names[j] for j in np.flatnonzero(p >= SET_THRESHOLD)) for p in probs[flagged]
        ]
        given = [separator.join(names) for names in rows["label"].iloc[flagged]]
    else:
        labels = rows["label"].map(index).to_numpy()
        probs = probs / probs.sum(1, keepdims=True)  # float32 softmax rows: cleanlab wants sums of 1
        flagged, quality = _rank_classes(labels, probs)
        suggested = [label_names[j] for j in probs[flagged].argmax(1)]
        given = rows["label"].iloc[flagged].tolist()
    out = rows.iloc[flagged].drop(columns=["label"]).reset_index(drop=True)
    out["given_label"], out["suggested_label"] = given, suggested
    out["label_quality"] = quality[flagged]
    return out


def _cleanlab():
    try:
        import cleanlab
    except ImportError as err:
        raise LabelIssuesError(INSTALL) from err
    return cleanlab


def _rank_classes(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _cleanlab()
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    flagged = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    return flagged, get_label_quality_scores(labels, probs, method="self_confidence")


def _rank_sets(labels: list[list[int]], probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _cleanlab()
    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    flagged = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    return flagged, get_label_quality_scores(labels, probs, method="self_confidence")
