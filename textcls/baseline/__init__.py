"""Baselines on exactly the fine-tuning splits (`textcls baseline`): `run_baselines` with its options
`Baselines` (textcls/baseline/run.py)."""

from textcls.baseline.run import Baselines, run_baselines, vectorizer

__all__ = ["Baselines", "run_baselines", "vectorizer"]
