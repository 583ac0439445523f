"""Baselines on exactly the fine-tuning splits (`textcls baseline`), so a fine-tuned model has something
to beat: `run_baselines` and its options `Baselines` (`run`), the trained classifiers and their TF-IDF
features (`trained`), their one-vs-rest form for label sets (`one_vs_rest`), the baselines without
labelled data (`zero_shot`) and the sentence embeddings two of them use (`embeddings`).

`Baselines` and `run_baselines` are imported on first use: the tasks (textcls/tasks/) fit the trained
baselines with this package's modules, and `run` builds on the tasks.
"""

from textcls.baseline.trained import vectorizer

__all__ = ["Baselines", "run_baselines", "vectorizer"]


def __getattr__(name: str):
    if name in ("Baselines", "run_baselines"):
        from textcls.baseline import run

        return getattr(run, name)
    raise AttributeError(f"module 'textcls.baseline' has no attribute '{name}'")
