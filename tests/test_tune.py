"""`textcls tune`: the search space, a pruned search whose best.yaml `fit` accepts, resuming a study."""

import optuna
import pandas as pd
import pytest
import yaml
from jsonargparse import Namespace
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tests.test_cli import run, write_config
from textcls.experiments.runs import ExperimentError
from textcls.experiments.search_space import DEFAULT_SPACE, default_space, distributions
from textcls.experiments.tune_outputs import best_config
from textcls.tasks import task_for

CFG = Namespace(model=Namespace(learning_rate=1e-4, warmup_ratio=0.0), data=Namespace(batch_size=8))


def test_space_entries_become_optuna_distributions():
    space = {
        "model.learning_rate": {"low": "1e-5", "high": 3.0e-4, "log": True},  # YAML reads 1e-5 as a string
        "model.warmup_ratio": {"low": 0.0, "high": 0.2, "step": 0.05},
        "data.batch_size": [16, 32],
    }
    out = distributions(space, CFG)
    assert out["model.learning_rate"] == FloatDistribution(1e-5, 3e-4, log=True)
    assert out["model.warmup_ratio"] == FloatDistribution(0.0, 0.2, step=0.05)
    assert out["data.batch_size"] == CategoricalDistribution([16, 32])
    assert distributions({"data.batch_size": {"low": 8, "high": 64, "log": True}}, CFG)[
        "data.batch_size"
    ] == IntDistribution(8, 64, log=True)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"model.learnin_rate": [1e-4]}, "unknown parameter 'model.learnin_rate'"),
        ({"model": [1]}, "unknown parameter 'model'"),
        ({"model.learning_rate": {"low": 1e-3, "high": 1e-4}}, "needs low < high"),
        (
            {"model.learning_rate": {"low": 1e-5, "high": 1e-4, "lg": True}},
            "must be a list of values or a range",
        ),
        ({"model.learning_rate": {"low": "small", "high": 1e-4}}, "'small' is not a number"),
    ],
)
def test_bad_spaces_are_refused(space, message):
    with pytest.raises(ExperimentError, match=message):
        distributions(space, CFG)


def test_default_space_leaves_out_what_the_task_refuses():
    assert set(default_space(task_for({}))) == set(DEFAULT_SPACE)
    assert "model.label_smoothing" not in default_space(task_for({"problem_type": "regression"}))
    assert "model.label_smoothing" in default_space(task_for({"multi_label": True}))


def test_best_config_nests_the_keys():
    params = {"model.learning_rate": 1e-4, "data.batch_size": 16, "model.warmup_ratio": 0.1}
    assert best_config(params) == {
        "model": {"learning_rate": 1e-4, "warmup_ratio": 0.1},
        "data": {"batch_size": 16},
    }


def test_unknown_parameter_in_the_space_file_ends_in_one_line(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=1)
    space = tmp_path / "space.yaml"
    space.write_text("model.learnin_rate: {low: 1.0e-5, high: 1.0e-3}\n")
    proc = run("tune", "--config", str(config), "--search_space", str(space), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"textcls: error: search space '{space}': unknown parameter 'model.learnin_rate'")
    assert not (tmp_path / "logs" / "tiny" / "tune" / "trial_0").exists()


@pytest.mark.slow
def test_pruned_search_writes_a_best_yaml_that_fit_accepts_and_resumes(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=2, precision="32-true")
    space = tmp_path / "space.yaml"
    space.write_text(
        "model.learning_rate: {low: 1.0e-9, high: 1.0e-2, log: true}\nmodel.warmup_ratio: [0.0]\n"
    )
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    # a good trial, then one that cannot learn: with one start-up trial, the median pruner stops the second
    study = optuna.create_study(study_name="config", storage=storage, direction="maximize")
    study.enqueue_trial({"model.learning_rate": 5e-3})
    study.enqueue_trial({"model.learning_rate": 1e-9})
    args = [
        "--config",
        str(config),
        "--search_space",
        str(space),
        "--storage",
        storage,
        "--startup_trials",
        "1",
    ]
    proc = run("tune", *args, "--n_trials", "3", cwd=tmp_path)
    folder = tmp_path / "logs" / "tiny" / "tune"
    study = optuna.load_study(study_name="config", storage=storage)
    states = [t.state for t in study.trials]
    assert len(states) == 3
    assert states[:2] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert study.trials[1].last_step == 0  # stopped after its first epoch, not after both
    trials = pd.read_csv(folder / "trials.csv")
    assert trials["state"].tolist() == [s.name for s in states]
    assert (folder / "trial_0" / "checkpoints" / "best.ckpt").is_file()  # each trial an ordinary run
    assert any((folder / "trial_1").glob("events.out.tfevents.*"))  # the pruned one logged its epoch
    assert (folder / "history.png").stat().st_size > 5_000
    complete = states.count(optuna.trial.TrialState.COMPLETE)
    assert (folder / "importance.png").exists() == (complete >= 2)
    if complete < 2:
        assert "importance.png needs at least 2 complete trials" in proc.stdout
    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert best == {"model": {"learning_rate": study.best_params["model.learning_rate"], "warmup_ratio": 0.0}}
    assert study.best_value == pytest.approx(study.trials[0].value) or study.best_trial.number == 2

    run(
        "fit",
        "--config",
        str(config),
        "--config",
        str(folder / "best.yaml"),
        "--trainer.max_epochs",
        "1",
        cwd=tmp_path,
    )
    saved = yaml.safe_load(next((tmp_path / "logs" / "tiny").glob("version_*/config.yaml")).read_text())
    assert saved["model"]["learning_rate"] == best["model"]["learning_rate"]

    run("tune", *args, "--n_trials", "1", cwd=tmp_path)  # the stored study goes on
    assert len(optuna.load_study(study_name="config", storage=storage).trials) == 4
    assert len(pd.read_csv(folder / "trials.csv")) == 4
    assert any((folder / "trial_3").glob("events.out.tfevents.*"))


def test_without_optuna_the_line_says_what_to_install(monkeypatch):
    from textcls.experiments.tune import require_optuna

    monkeypatch.setitem(__import__("sys").modules, "optuna", None)  # what a missing package looks like
    with pytest.raises(ExperimentError, match=r'pip install "textcls\[tune\]"'):
        require_optuna()


def test_a_stopped_trial_is_recorded_as_failed(monkeypatch, tmp_path):
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from textcls.experiments import tune

    def stopped(*args, **kwargs):
        raise SIGTERMException

    monkeypatch.setattr(tune, "fit", stopped)
    study = optuna.create_study()
    objective = tune.Objective(
        ["--config", "c.yaml"], distributions({"data.batch_size": [8]}, CFG), "val/f1_macro", tmp_path
    )
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=1)
    assert [t.state for t in study.trials] == [
        optuna.trial.TrialState.FAIL
    ]  # not left RUNNING in the storage
