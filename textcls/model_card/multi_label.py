"""The model card's text for a model that gives each text any number of labels: what it is, its
`pipeline` snippet with the per-label thresholds, and the thresholds table."""

from textcls.checkpoint import THRESHOLDS_FILE
from textcls.model_card.single_label import EXAMPLES
from textcls.thresholds import Thresholds


def use_lines(
    label_names: list[str], backbone: str, remote: str, problem_type: str, pairs: bool = False
) -> list[str]:
    """The opening line and the Use section (`remote`: `pipeline`'s extra arguments, if any;
    `problem_type`: the one config.json names, which makes `pipeline` apply a sigmoid per label)."""
    names = ", ".join(f"`{n}`" for n in label_names)
    return [
        f"Fine-tuned from `{backbone}` with textcls for multi-label classification: a text gets any "
        f"number of these {len(label_names)} labels: {names}. Each label has its own "
        f"probability (a sigmoid, `problem_type: {problem_type}`), and a text gets every "
        f"label whose probability reaches that label's threshold ({THRESHOLDS_FILE}).",
        "",
        "## Use",
        "",
        "```python",
        "import json",
        "from transformers import pipeline",
        f'classify = pipeline("text-classification", model="path/to/this/folder"{remote})',
        'thresholds = json.load(open("path/to/this/folder/thresholds.json"))["values"]',
        f"scores = classify([{EXAMPLES[pairs] if pairs else repr('some text')}], top_k=None, truncation=True)[0]"
        "  # each label's probability",
        "cutoff = {classify.model.config.id2label[i]: t for i, t in enumerate(thresholds)}",
        'labels = [s["label"] for s in scores if s["score"] >= cutoff[s["label"]]]',
        "```",
        "",
    ]


def threshold_lines(label_names: list[str], thresholds: Thresholds) -> list[str]:
    """The Thresholds section: each label's cut-off, whether it was tuned, its validation positives."""
    tuned = thresholds.tuned or [False] * len(thresholds.values)
    positives = thresholds.positives or [None] * len(thresholds.values)
    lines = [
        "## Thresholds",
        "",
        "Each label's probability cut-off: tuned to the best F1 on the validation split, or the global "
        "`model.threshold` where it was not tuned (tuning off, or too few validation positives). "
        "`textcls predict --prediction.at_least_one true` gives a text with no label its top-scoring one.",
        "",
        "| label | threshold | tuned | validation positives |",
        "|---|---|---|---|",
    ]
    rows = zip(label_names, thresholds.values, tuned, positives, strict=True)
    lines += [f"| {n} | {v:.4f} | {'yes' if k else 'no'} | {'' if p is None else p} |" for n, v, k, p in rows]
    return [*lines, ""]
