"""What `textcls tune` writes: best.yaml (the best trial's values as a config to add with a second
`--config`), trials.csv (every trial, stored ones included), and Optuna's history and importance plots."""

import warnings
from pathlib import Path

import yaml

BEST, TRIALS, HISTORY, IMPORTANCE = "best.yaml", "trials.csv", "history.png", "importance.png"


def best_config(params: dict) -> dict:
    """Dotted keys (`model.learning_rate`) as the nested config they name."""
    config: dict = {}
    for key, value in params.items():
        *groups, name = key.split(".")
        node = config
        for group in groups:
            node = node.setdefault(group, {})
        node[name] = value
    return config


def write_outputs(study, folder: Path, args: list[str]) -> str:
    """Write the study's results into `folder`; what was written, as lines to print."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    pruned = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
    study.trials_dataframe().to_csv(folder / TRIALS, index=False)
    lines = [
        f"{len(study.trials)} trials stored, {len(complete)} complete, {len(pruned)} pruned: {folder / TRIALS}"
    ]
    if not complete:
        return "\n".join([*lines, "No trial completed: no best.yaml, history.png or importance.png"])
    best = study.best_trial
    header = (
        f"# textcls tune, study '{study.study_name}': trial {best.number} of {len(study.trials)}, validation "
        f"score {best.value:.4f} (run {best.user_attrs.get('run')}).\n# Use: textcls fit {' '.join(args[:2])} "
        f"--config {folder / BEST} (and the overrides the trials ran with).\n"
    )
    (folder / BEST).write_text(header + yaml.safe_dump(best_config(best.params), sort_keys=False))
    lines.append(f"Best: trial {best.number}, {best.value:.4f}: {best.params}; settings in {folder / BEST}")
    lines += plots(study, folder, len(complete))
    return "\n".join(lines)


def plots(study, folder: Path, complete: int) -> list[str]:
    """Optuna's optimization history and parameter importances as PNG (importance needs two complete trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    written = []
    with warnings.catch_warnings():  # optuna marks its matplotlib plots experimental
        warnings.simplefilter("ignore")
        figures = {HISTORY: optuna_plots.plot_optimization_history}
        if complete >= 2:
            figures[IMPORTANCE] = optuna_plots.plot_param_importances
        for name, draw in figures.items():
            ax = draw(study)
            ax.figure.tight_layout()
            ax.figure.savefig(folder / name, dpi=120)
            plt.close(ax.figure)
            written.append(str(folder / name))
    lines = [f"Plots: {', '.join(written)}"]
    if complete < 2:
        lines.append(f"importance.png needs at least 2 complete trials ({complete} so far): not written")
    return lines
