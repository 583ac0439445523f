"""Experiments that run many fits of one config (`textcls learning-curve`, `textcls tune`), each fit an
ordinary textcls run in a folder of its own under the config's log folder.

- `runs.py`: running `fit` and `test` in this process, on splits given in advance where needed.
- `learning_curve.py`, `curve_outputs.py`: nested stratified subsets of the training split, and the
  curve's table, figure and sentence.
- `tune.py`, `search_space.py`, `tune_outputs.py`: the Optuna search, its space, and its results.
"""
