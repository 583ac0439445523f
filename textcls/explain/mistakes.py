"""The test report's explained mistakes: explanations.html (and .json) for the most confident wrong
predictions, explained for the label the model wrongly gave (`report.explain_mistakes`)."""

from pathlib import Path

import numpy as np
import pandas as pd

from textcls.explain.attributions import explain_texts
from textcls.explain.view import write_explanations
from textcls.tasks import Task

REPORT_STEPS = 25  # the test report explains up to 20 texts: half the steps keep that to seconds on CPU


def explain_mistakes(
    folder: Path,
    test: pd.DataFrame,
    probs: np.ndarray,
    label_names: list[str],
    model,
    tokenizer,
    max_length: int,
    task: Task,
    top: int,
    n_steps: int,
) -> Path:
    """explanations.html (and .json) in `folder`: the `top` most confident mistakes of the test report,
    in misclassified.csv's order, each explained for the label the model wrongly gave it."""
    predicted = probs.argmax(1)
    # a pair is explained whole: both texts, shown joined by the separator token
    items = (
        list(zip(test["text"], test["text_pair"], strict=True)) if "text_pair" in test else list(test["text"])
    )
    table = pd.DataFrame({"text": items, "true": test["label"], "pred": predicted, "p": probs.max(1)})
    wrong = table[table["true"].to_numpy() != np.asarray(label_names)[predicted]]
    wrong = wrong.sort_values("p", ascending=False, kind="stable").head(top)
    explanations = explain_texts(
        model, tokenizer, wrong["text"].tolist(), label_names, max_length, n_steps,
        targets=wrong["pred"].tolist(), task=task,
    )  # fmt: skip
    for e, true in zip(explanations, wrong["true"], strict=True):
        e.true_label = str(true)
    path = folder / "explanations.html"
    write_explanations(explanations, path, n_steps, f"Why these mistakes: the {len(wrong)} most confident")
    return path
