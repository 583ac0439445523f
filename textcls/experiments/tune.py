"""`textcls tune`: are my settings any good? An Optuna search over a config's settings, each trial an
ordinary fit (`<folder>/trial_N`, side by side in TensorBoard), scored by its best validation value of
the config's monitor (the task's: macro F1, or Pearson for a regression).

The TPE sampler draws each trial's values from the search space (textcls/experiments/search_space.py);
the median pruner stops a trial whose validation score after an epoch is below the median of the trials
before it at that epoch, through optuna-integration's Lightning callback. The study lives in its
storage (by default an SQLite file in the output folder), so running the command again adds trials.
"""

import sys
import warnings
from pathlib import Path

from lightning.pytorch.utilities.exceptions import SIGTERMException

from textcls.callbacks import NonFiniteLossError
from textcls.experiments.runs import (
    ExperimentError,
    best_score,
    experiment_dir,
    fit,
    monitor_of,
    run_logger,
    without_options,
)
from textcls.experiments.search_space import default_space, distributions, read_space, suggest
from textcls.experiments.tune_outputs import write_outputs
from textcls.launch import ToolCLI, run_name

OPTIONS = ("n_trials", "timeout", "search_space", "storage", "startup_trials", "output_dir")
STORAGE_FILE = "tune.db"


class TuneCLI(ToolCLI):
    """ToolCLI with the search's options."""

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--n_trials", type=int, default=20, help="Trials to run (added to those stored).")
        parser.add_argument(
            "--timeout", type=float | None, default=None, help="Start no new trial after this many seconds."
        )
        parser.add_argument(
            "--search_space",
            type=str | None,
            default=None,
            help="A YAML file of the config keys to search and their ranges or values (replaces the default "
            "space: learning rate, warmup ratio, weight decay, batch size, label smoothing).",
        )
        parser.add_argument(
            "--storage",
            type=str | None,
            default=None,
            help=f"Optuna storage URL of the study (default: sqlite:///<output_dir>/{STORAGE_FILE}); the "
            "study is named after the config and resumed when it exists.",
        )
        parser.add_argument(
            "--startup_trials",
            type=int,
            default=5,
            help="Trials that run in full before the median pruner stops any (its n_startup_trials).",
        )


def require_optuna():
    """The optuna module; ExperimentError saying how to install it when it is missing."""
    try:
        import optuna
        import optuna_integration  # noqa: F401
    except ImportError as err:
        raise ExperimentError(
            f'`textcls tune` needs Optuna ({err.name} is missing): pip install "textcls[tune]"'
        ) from err
    return optuna


def run_tune(cli: ToolCLI, args: list[str]):
    """Run the search, then write best.yaml, trials.csv, history.png and importance.png.

    Args:
        cli: The parsed command (config, overrides and the search's options).
        args: The command line, whose config and overrides every trial's fit gets.

    Returns:
        The Optuna study.
    """
    optuna = require_optuna()
    cfg = cli.config
    if cfg.n_trials < 1:
        raise ExperimentError(f"--n_trials must be at least 1, got {cfg.n_trials}")
    space = read_space(cfg.search_space) if cfg.search_space else default_space(cli.datamodule.task)
    source = f"search space '{cfg.search_space}'" if cfg.search_space else "the search space"
    params = distributions(space, cfg, source)
    folder = Path(cfg.output_dir) if cfg.output_dir else experiment_dir(cfg, "tune")
    folder.mkdir(parents=True, exist_ok=True)
    monitor = monitor_of(cfg)
    seed = cfg.seed_everything if type(cfg.seed_everything) is int else 42
    study = optuna.create_study(
        study_name=run_name(args),
        storage=cfg.storage or f"sqlite:///{folder / STORAGE_FILE}",
        load_if_exists=True,
        direction="maximize" if monitor["mode"] == "max" else "minimize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=cfg.startup_trials),
    )
    # seeded, and anew when resumed: the same seed would draw the first run's random start-up values again
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    objective = Objective(without_options(args, OPTIONS), params, monitor["monitor"], folder)
    try:
        # a diverging trial (non-finite loss) is a failed trial, not the end of the search
        study.optimize(objective, n_trials=cfg.n_trials, timeout=cfg.timeout, catch=(NonFiniteLossError,))
    except KeyboardInterrupt:
        print(write_outputs(study, folder, args))
        print("textcls: interrupted; the same command resumes the study", file=sys.stderr)
        sys.exit(130)
    print(write_outputs(study, folder, args))
    return study


class Objective:
    """One trial: a fit with the trial's values, pruned by the median pruner, scored by the best
    validation value of `monitor`."""

    def __init__(self, args: list[str], params: dict, monitor: str, folder: Path):
        self.args, self.params, self.monitor, self.folder = args, params, monitor, folder

    def __call__(self, trial) -> float:
        from optuna_integration import PyTorchLightningPruningCallback

        values = {name: suggest(trial, name, dist) for name, dist in self.params.items()}
        run = f"trial_{trial.number}"
        trial.set_user_attr("run", str(self.folder / run))
        settings = [f"--{name}={value}" for name, value in values.items()]
        logger = run_logger(self.folder.parent, self.folder.name, run)
        with warnings.catch_warnings():  # the callback's own: optuna-integration's Lightning is current
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            pruning = PyTorchLightningPruningCallback(trial, monitor=self.monitor)
        print(f"tune: {run}: {' '.join(settings)}")
        try:
            cli = fit([*self.args, *settings, logger], callbacks=[pruning])
        except (
            SIGTERMException
        ) as err:  # a SystemExit, which Optuna would let by with the trial still running
            raise KeyboardInterrupt from err  # Optuna records the trial as failed, then stops
        return best_score(cli, self.monitor)
