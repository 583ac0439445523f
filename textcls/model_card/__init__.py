"""The model card (README.md) of an exported folder.

- `card`: the card (`model_card`) and how a model reads long texts, in words (`describe_layout`).
- one module per kind of task, named as its module in textcls/tasks/ is: the text that differs by
  kind (the opening line and `pipeline` snippet, the section on the decision rule), which the task
  supplies to the card (the task imports its module lazily).

`model_card` and `describe_layout` are imported on first use: the card builds on the predictor and
its task, and the tasks build on this package's per-kind modules.
"""

__all__ = ["describe_layout", "model_card"]


def __getattr__(name: str):
    if name in __all__:
        from textcls.model_card.card import describe_layout, model_card

        return {"describe_layout": describe_layout, "model_card": model_card}[name]
    raise AttributeError(f"module 'textcls.model_card' has no attribute '{name}'")
