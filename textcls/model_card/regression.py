"""The model card's text for a model that gives each text a number: what it predicts and its
`pipeline` snippet (the folder's network answers in the target's units: textcls folded the
standardisation of the targets into its output layer at export)."""

from textcls.model_card.single_label import EXAMPLES


def use_lines(target: str, backbone: str, remote: str, pairs: bool) -> list[str]:
    """The opening line and the Use section (`remote`: `pipeline`'s extra arguments, if any)."""
    what = "each pair of texts" if pairs else "each text"
    return [
        f"Fine-tuned from `{backbone}` with textcls to predict a number for {what}: `{target}` "
        "(regression, `problem_type: regression`), in the units of the training targets.",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        f'score = pipeline("text-classification", model="path/to/this/folder"{remote})',
        f'score([{EXAMPLES[pairs]}], truncation=True, function_to_apply="none")  # the number, as "score"',
        "```",
        "",
    ]
