"""`textcls learning-curve`: would more labelled data help? Fit on growing, nested subsets of the
training split and score each fit on the same test rows, beside the TF-IDF baseline on the same subsets.

The data is read and split once; each fraction's subset is drawn from the next larger one, stratified
as the task stratifies (by class, iteratively over every label, or on quantile bins of the target), so
the subsets are nested and keep the training split's proportions. Each seed draws its own nested
subsets and trains with its own seed; the validation and test rows never change.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from textcls.baseline import Baselines, run_baselines
from textcls.data.rows import Split
from textcls.experiments.curve_outputs import write_outputs
from textcls.experiments.runs import (
    ExperimentError,
    best_checkpoint,
    experiment_dir,
    fit,
    fixed_splits_cli,
    fixed_splits_data,
    run_logger,
    test,
    without_options,
)
from textcls.launch import ToolCLI

FRACTIONS = [0.1, 0.25, 0.5, 1.0]
OPTIONS = ("fractions", "seeds", "output_dir")  # this command's own: the fits do not get them
BASELINE = "tfidf_logreg"


class LearningCurveCLI(ToolCLI):
    """ToolCLI with the learning curve's options."""

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument(
            "--fractions",
            type=float,
            nargs="+",
            default=FRACTIONS,
            help="Shares of the training split to train on, each in (0, 1].",
        )
        parser.add_argument(
            "--seeds",
            type=int,
            default=1,
            help="Repeats of every fraction, each with its own subsets and training seed.",
        )


def check_options(fractions: list[float], seeds: int) -> list[float]:
    """The distinct fractions in increasing order; ExperimentError for a fraction outside (0, 1] or seeds < 1."""
    outside = [f for f in fractions if not 0 < f <= 1]
    if outside:
        raise ExperimentError(
            f"--fractions must each be in (0, 1] (a share of the training split), got {', '.join(map(str, outside))}"
        )
    if seeds < 1:
        raise ExperimentError(f"--seeds must be at least 1, got {seeds}")
    return sorted(set(fractions))


def nested_subsets(labels: pd.Series, fractions: list[float], seed: int, task) -> dict[float, np.ndarray]:
    """Positions in `labels` of each fraction's subset: each drawn from the next larger one, stratified by
    `task` (textcls/tasks/), so a smaller subset lies inside every larger one."""
    positions, previous, subsets = np.arange(len(labels)), 1.0, {}
    for fraction in sorted(fractions, reverse=True):
        if fraction < previous:
            kept = labels.iloc[positions].reset_index(drop=True)
            parts, _ = task.split(kept, {"left_out": 1 - fraction / previous}, seed)
            positions = positions[np.sort(parts["train"])]
        subsets[fraction], previous = positions, fraction
    return dict(sorted(subsets.items()))


def run_learning_curve(cli: ToolCLI, args: list[str]) -> pd.DataFrame:
    """Fit, test and run the TF-IDF baseline on every fraction and seed; write the table, figure and sentence.

    Args:
        cli: The parsed command (config, overrides, `--fractions`, `--seeds`, `--output_dir`).
        args: The command line, whose config and overrides every fit gets.

    Returns:
        One row per fit and baseline run: fraction, seed, train_rows, model, metric, score, run.
    """
    cfg = cli.config
    fractions = check_options(cfg.fractions, cfg.seeds)
    folder = Path(cfg.output_dir) if cfg.output_dir else experiment_dir(cfg, "learning_curve")
    data = cli.datamodule
    splits, names, task = data.splits, data.label_names, data.task  # read and split once
    if "validation" not in splits or "test" not in splits:
        raise ExperimentError(
            "a learning curve needs validation and test data: set data.*_file or data.*_fraction"
        )
    metric = task.headline[0]
    base_seed = cfg.seed_everything if type(cfg.seed_everything) is int else 42
    fit_args = without_options(args, OPTIONS)
    rows = []
    for k in range(cfg.seeds):
        subsets = nested_subsets(splits["train"].labels, fractions, data.hparams.seed + k, task)
        for fraction, positions in subsets.items():
            train = splits["train"].take(positions)
            task.check_train(train.labels)
            subset = {**splits, "train": train}
            run = f"fraction_{fraction:g}_seed_{k}"
            common = {"fraction": fraction, "seed": k, "train_rows": len(train), "metric": metric}
            print(f"learning curve: {run}, {len(train)} training rows")
            args_k = [
                *fit_args,
                "--seed_everything",
                str(base_seed + k),
                run_logger(folder.parent, folder.name, run),
            ]
            score = fine_tune(args_k, subset, names, metric)
            rows.append({**common, "model": "fine-tuned", "score": score, "run": str(folder / run)})
            baseline = fixed_splits_data(cfg.data, subset, names)
            results = run_baselines(baseline, folder / run / "baseline", Baselines(methods=[BASELINE]))
            if BASELINE in results:
                rows.append(
                    {
                        **common,
                        "model": "TF-IDF",
                        "score": results[BASELINE][metric],
                        "run": str(folder / run),
                    }
                )
            write_outputs(pd.DataFrame(rows), folder, metric, final=False)  # progress, rewritten as it grows
    table = pd.DataFrame(rows)
    print(write_outputs(table, folder, metric))
    return table


def fine_tune(args: list[str], splits: dict[str, Split], names: list[str], metric: str) -> float:
    """Fit on `splits`, then test the best checkpoint: its test `metric`."""
    cli_class = fixed_splits_cli(splits, names)
    checkpoint = best_checkpoint(fit(args, cli_class=cli_class))
    metrics = test([*args, "--report.explain_mistakes", "0"], checkpoint, cli_class)
    return float(metrics[metric])
