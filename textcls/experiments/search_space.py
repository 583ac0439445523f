"""The search space of `textcls tune`: which config keys it tries, over which values.

A space maps config keys (as on the command line, without `--`) to their values, in YAML:

    model.learning_rate: {low: 1.0e-5, high: 3.0e-4, log: true}   # a float range, log-uniform
    model.warmup_ratio: {low: 0.0, high: 0.2}                      # a float range, uniform
    trainer.accumulate_grad_batches: {low: 1, high: 4}             # two integers: an integer range
    data.batch_size: [16, 32]                                      # a list: one of these values

A range may also give `step` (a grid of values from `low`). Each parameter becomes one Optuna
distribution, named by its key, and each trial's values reach its fit as `--key=value`.
"""

from pathlib import Path

import yaml

from textcls.experiments.runs import ExperimentError

# learning rate, warmup, weight decay, batch size and label smoothing: what moves a fine-tune most
DEFAULT_SPACE = {
    "model.learning_rate": {"low": 1e-5, "high": 3e-4, "log": True},
    "model.warmup_ratio": {"low": 0.0, "high": 0.2},
    "model.weight_decay": {"low": 0.0, "high": 0.1},
    "data.batch_size": [16, 32],
    "model.label_smoothing": {"low": 0.0, "high": 0.1},
}
RANGE_KEYS = {"low", "high", "log", "step"}


def default_space(task) -> dict:
    """The default space, less what the task refuses (a regression has no label smoothing)."""
    return {key: spec for key, spec in DEFAULT_SPACE.items() if not task.refuses([key])}


def read_space(path: str | Path) -> dict:
    """The space in a YAML file (see the module's docstring); ExperimentError when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise ExperimentError(f"search space '{path}' does not exist")
    try:
        space = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ExperimentError(
            f"search space '{path}' is not valid YAML: {' '.join(str(err).split())}"
        ) from err
    if not isinstance(space, dict) or not space:
        raise ExperimentError(f"search space '{path}' must map config keys to ranges or lists of values")
    return space


def distributions(space: dict, cfg, source: str = "the search space") -> dict:
    """One Optuna distribution per parameter of `space`; ExperimentError for a key that is not an option
    of the config `cfg` or a value that is neither a range nor a list."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for key, spec in space.items():
        if not isinstance(key, str) or key not in cfg or _is_group(cfg[key]):
            raise ExperimentError(
                f"{source}: unknown parameter '{key}' (use a config key such as model.learning_rate; "
                "`textcls fit --help` lists them)"
            )
        if isinstance(spec, list) and spec:
            out[key] = CategoricalDistribution(spec)
            continue
        if not isinstance(spec, dict) or not {"low", "high"} <= set(spec) or set(spec) - RANGE_KEYS:
            raise ExperimentError(
                f"{source}: '{key}' must be a list of values or a range {{low, high[, log][, step]}}, got {spec}"
            )
        low, high, step = (_number(key, spec.get(name)) for name in ("low", "high", "step"))
        log = bool(spec.get("log", False))
        if not low < high:
            raise ExperimentError(f"{source}: '{key}' needs low < high, got {low} and {high}")
        if log and step is not None:
            raise ExperimentError(f"{source}: '{key}' takes `log` or `step`, not both")
        if all(isinstance(v, int) for v in (low, high)) and (step is None or isinstance(step, int)):
            out[key] = IntDistribution(int(low), int(high), log=log, step=step or 1)
        else:
            out[key] = FloatDistribution(float(low), float(high), log=log, step=step)
    return out


def _number(key: str, value) -> int | float | None:
    # YAML reads 1e-5 (no dot) as a string
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ExperimentError(f"'{key}': {value!r} is not a number") from None


def _is_group(value) -> bool:
    return hasattr(value, "keys") and not isinstance(value, dict)


def suggest(trial, name: str, distribution):
    """The trial's value of `name`, drawn by its sampler from `distribution`."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    low, high, log, step = distribution.low, distribution.high, distribution.log, distribution.step
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, low, high, log=log, step=step)
    return trial.suggest_float(name, low, high, log=log, step=step)
