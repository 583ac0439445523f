"""The model card's text for a model that gives each text one class: what it is, its `pipeline`
snippet, and how its probabilities are calibrated."""

from textcls.calibration import Calibration
from textcls.checkpoint import CALIBRATION_FILE

# what the `pipeline` snippet classifies: a text, or a pair of texts (`pipeline` reads pairs as dicts)
EXAMPLES = {False: '"some text"', True: '{"text": "a sentence", "text_pair": "another sentence"}'}


def use_lines(label_names: list[str], backbone: str, remote: str, pairs: bool = False) -> list[str]:
    """The opening line and the Use section (`remote`: `pipeline`'s extra arguments, if any)."""
    names = ", ".join(f"`{n}`" for n in label_names)
    return [
        f"Fine-tuned from `{backbone}` with textcls to classify text into "
        f"{len(label_names)} classes: {names}.",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        f'classify = pipeline("text-classification", model="path/to/this/folder"{remote})',
        f"classify([{EXAMPLES[pairs]}], top_k=None, truncation=True)  # all class probabilities",
        "```",
        "",
    ]


def confidence_lines(calibration: Calibration | None) -> list[str]:
    """The Confidence section: the temperature and how to apply it (none without a calibration)."""
    if calibration is None:
        return []
    t = calibration.temperature
    if calibration.note:
        return [
            "## Confidence",
            "",
            f"Probabilities are the raw softmax, as `pipeline` returns them: {calibration.note}.",
            "",
        ]
    return [
        "## Confidence",
        "",
        f"textcls calibrates probabilities by temperature scaling: softmax(logits / {t:.4f}), the temperature",
        f"fitted on the validation split ({CALIBRATION_FILE}). `pipeline` alone returns the raw softmax;",
        f"`pipeline(..., function_to_apply='none')` gives the logits to divide by {t:.4f}.",
        "",
    ]
