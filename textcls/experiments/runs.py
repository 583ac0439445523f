"""The fits an experiment runs: ordinary `textcls fit` (and `test`) runs of a config and its overrides,
each in a named folder under the config's log folder, optionally on splits given in advance.

A learning curve trains on subsets of one training split while the validation and test rows stay the
same, whatever each fit's seed: `fixed_splits_cli` builds a CLI whose data module takes its splits
from the experiment instead of reading and splitting the files again.
"""

import json
from functools import cached_property
from pathlib import Path

from textcls.callbacks import FiniteLossCheck, TrainingTime
from textcls.checkpoint import logger_dir
from textcls.data import TextClassificationData
from textcls.data.rows import Split
from textcls.launch import MONITOR, TextclsCLI, make_cli
from textcls.tasks import KINDS, problem_type_of


class ExperimentError(Exception):
    """An experiment's option that cannot work (a fraction outside (0, 1], an unknown parameter to
    search, ...): shown as one line."""


class FixedSplitsData(TextClassificationData):
    """TextClassificationData whose splits are set by the experiment (`given`, `names`): the
    configured files are not read again, and the label names are those of the whole training split."""

    given: dict[str, Split] = {}
    names: list[str] = []

    @cached_property
    def raw_splits(self) -> dict[str, Split]:
        return dict(self.given)

    @property
    def label_names(self) -> list[str]:
        return list(self.hparams.labels) if self.hparams.labels else list(self.names)


def fixed_splits_cli(splits: dict[str, Split], names: list[str]) -> type[TextclsCLI]:
    """A TextclsCLI whose data module trains, validates and tests on `splits` (label names `names`)."""
    data_class = type("FixedSplitsData", (FixedSplitsData,), {"given": splits, "names": names})

    class FixedSplitsCLI(TextclsCLI):
        def __init__(self, model_class, datamodule_class, *args, **kwargs):
            super().__init__(model_class, data_class, *args, **kwargs)

    return FixedSplitsCLI


def fixed_splits_data(settings: dict, splits: dict[str, Split], names: list[str]) -> FixedSplitsData:
    """A data module with the config's `settings` on `splits` (for the baselines, which take one)."""
    data_class = type("FixedSplitsData", (FixedSplitsData,), {"given": splits, "names": names})
    return data_class(**settings)


def run_logger(save_dir: Path, name: str, version: str) -> str:
    """`--trainer.logger=...`: TensorBoard in `save_dir/name/version` (it replaces a config's logger)."""
    init = {"save_dir": str(save_dir), "name": name, "version": version}
    return "--trainer.logger=" + json.dumps(
        {"class_path": "lightning.pytorch.loggers.TensorBoardLogger", "init_args": init}
    )


def fit(
    args: list[str], callbacks: list | None = None, cli_class: type[TextclsCLI] | None = None
) -> TextclsCLI:
    """Run `textcls fit ARGS` in this process (with the fit command's own callbacks and `callbacks`)."""
    defaults = {"callbacks": [FiniteLossCheck(), TrainingTime(), *(callbacks or [])]}
    return make_cli(["fit", *args], cli_class, trainer_defaults=defaults)


def test(args: list[str], checkpoint: Path, cli_class: type[TextclsCLI] | None = None) -> dict:
    """Run `textcls test ARGS --ckpt_path CHECKPOINT` in this process; the test report's metrics."""
    cli = make_cli(["test", *args, "--ckpt_path", str(checkpoint)], cli_class)
    return json.loads((Path(cli.trainer.log_dir) / "metrics.json").read_text())


def best_checkpoint(cli: TextclsCLI) -> Path:
    """The fit's best checkpoint (its last one when it kept no best)."""
    callback = cli.trainer.checkpoint_callback
    path = callback.best_model_path or callback.last_model_path if callback else ""
    if not path:
        raise RuntimeError(f"the fit in {cli.trainer.log_dir} saved no checkpoint")
    return Path(path)


def best_score(cli: TextclsCLI, monitor: str) -> float:
    """The fit's best value of `monitor` (the checkpoint's; the last logged one without checkpoints)."""
    callback = cli.trainer.checkpoint_callback
    score = callback.best_model_score if callback else None
    if score is None:
        score = cli.trainer.callback_metrics.get(monitor)
    if score is None:
        raise RuntimeError(f"the fit in {cli.trainer.log_dir} logged no '{monitor}'")
    return float(score)


def monitor_of(cfg) -> dict[str, str]:
    """What "best" means for this config's fits: its checkpoint's monitor if set, else the task's."""
    if {"monitor": cfg.checkpoint.monitor, "mode": cfg.checkpoint.mode} != MONITOR:
        return {"monitor": cfg.checkpoint.monitor, "mode": cfg.checkpoint.mode}
    return dict(KINDS[problem_type_of(cfg.data)].monitor)


def experiment_dir(cfg, name: str) -> Path:
    """`<the config's log folder>/<name>`: where an experiment's runs and results go by default."""
    return logger_dir(cfg) / name


def without_options(args: list[str], options: tuple[str, ...]) -> list[str]:
    """`args` less the experiment's own `options` (`--name VALUE...` or `--name=VALUE`): what every fit gets."""
    kept, skipping = [], False
    for arg in args:
        name = arg.split("=", 1)[0]
        if name.startswith("--"):
            skipping = name[2:] in options
            if skipping:
                continue
        if not skipping:
            kept.append(arg)
    return kept
