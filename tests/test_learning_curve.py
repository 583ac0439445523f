"""`textcls learning-curve`: nested stratified subsets, the fits and baselines on them, the outputs."""

from collections import Counter

import pandas as pd
import pytest
import yaml

from tests.conftest import make_multi_label_rows
from tests.test_cli import run, write_config
from textcls.experiments.curve_outputs import last_doubling, summarize
from textcls.experiments.learning_curve import check_options, nested_subsets
from textcls.experiments.runs import ExperimentError, without_options
from textcls.tasks import task_for


def test_subsets_are_nested_and_stratified():
    labels = pd.Series(["a"] * 600 + ["b"] * 300 + ["c"] * 100)
    subsets = nested_subsets(labels, [0.1, 0.25, 0.5, 1.0], seed=3, task=task_for({}))
    assert list(subsets) == [0.1, 0.25, 0.5, 1.0]
    assert len(subsets[1.0]) == 1000
    for small, large in zip([0.1, 0.25, 0.5], [0.25, 0.5, 1.0], strict=True):
        assert set(subsets[small]) <= set(subsets[large])
    for fraction, positions in subsets.items():
        counts = Counter(labels.iloc[positions])
        assert len(positions) == pytest.approx(1000 * fraction, abs=2)
        for label, share in (("a", 0.6), ("b", 0.3), ("c", 0.1)):
            assert counts[label] / len(positions) == pytest.approx(share, abs=0.01)
    other = nested_subsets(labels, [0.1, 0.25, 0.5, 1.0], seed=4, task=task_for({}))
    assert set(other[0.1]) != set(subsets[0.1])  # each seed draws its own


def test_subsets_of_label_sets_and_targets_keep_the_task_stratification():
    label_sets = pd.Series([r["labels"].split(";") for r in make_multi_label_rows(400)])
    task = task_for({"multi_label": True})
    subsets = nested_subsets(label_sets, [0.25, 0.5], seed=0, task=task)
    assert set(subsets[0.25]) <= set(subsets[0.5])
    full = Counter(name for names in label_sets for name in names)
    part = Counter(name for names in label_sets.iloc[subsets[0.25]] for name in names)
    for name, count in full.items():
        assert part[name] == pytest.approx(count / 4, rel=0.1)
    targets = pd.Series([float(i) for i in range(400)])
    halves = nested_subsets(targets, [0.5], seed=0, task=task_for({"problem_type": "regression"}))
    kept = targets.iloc[halves[0.5]]
    assert kept.min() < 20 and kept.max() > 380  # quantile bins: the subset spans the range


def test_options_are_checked_in_one_line():
    assert check_options([1.0, 0.1, 0.5, 0.1], 2) == [0.1, 0.5, 1.0]
    with pytest.raises(ExperimentError, match=r"--fractions must each be in \(0, 1\].*1.5"):
        check_options([0.5, 1.5], 1)
    with pytest.raises(ExperimentError, match="--fractions"):
        check_options([0.0], 1)
    with pytest.raises(ExperimentError, match="--seeds must be at least 1"):
        check_options([0.5], 0)


def test_the_fits_get_the_config_and_overrides_but_not_the_commands_options():
    args = ["--config", "c.yaml", "--fractions", "0.1", "0.5", "--seeds=2", "--trainer.max_epochs", "1"]
    assert without_options(args, ("fractions", "seeds")) == [
        "--config",
        "c.yaml",
        "--trainer.max_epochs",
        "1",
    ]


def test_last_doubling_sentence():
    table = pd.DataFrame(
        [
            {"model": m, "fraction": f, "seed": s, "train_rows": n, "score": score}
            for m, base in (("fine-tuned", 0.8), ("TF-IDF", 0.7))
            for f, n, gain in ((0.5, 100, 0.0), (1.0, 200, 0.04))
            for s, noise in ((0, -0.01), (1, 0.01))
            for score in [base + gain + noise]
        ]
    )
    sentence = last_doubling(summarize(table), "f1_macro")
    assert "(100 -> 200)" in sentence
    assert "+0.040 for the fine-tuned model (0.800 -> 0.840)" in sentence
    assert "+0.040 for the TF-IDF model (0.700 -> 0.740)" in sentence


def test_bad_fractions_end_in_one_line(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=1)
    proc = run(
        "learning-curve", "--config", str(config), "--fractions", "0.5", "2", cwd=tmp_path, check=False
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "textcls: error: --fractions must each be in (0, 1] (a share of the training split), got 2.0"
    )


@pytest.mark.slow
def test_learning_curve_writes_real_scores(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=4, precision="32-true")
    args = ["--config", str(config), "--fractions", "0.25", "1.0", "--seeds", "2"]
    proc = run("learning-curve", *args, "--trainer.max_epochs", "1", cwd=tmp_path)
    folder = tmp_path / "logs" / "tiny" / "learning_curve"
    table = pd.read_csv(folder / "learning_curve.csv")
    assert len(table) == 8  # 2 fractions x 2 seeds x (fine-tuned, TF-IDF)
    assert set(table["model"]) == {"fine-tuned", "TF-IDF"}
    assert table["score"].between(0, 1).all() and table["score"].nunique() > 1
    # 108 training rows (120 less a 10% validation split, 36 per class): a quarter is 27
    assert sorted(set(table["train_rows"])) == [27, 108]
    runs = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert runs == [f"fraction_{f}_seed_{s}" for f in ("0.25", "1") for s in (0, 1)]
    for run_folder in runs:
        saved = yaml.safe_load((folder / run_folder / "config.yaml").read_text())
        assert saved["trainer"]["max_epochs"] == 1  # the override reached every fit
        assert (folder / run_folder / "checkpoints" / "best.ckpt").is_file()
        assert (folder / run_folder / "metrics.json").is_file()  # the test report of the best checkpoint
        assert (folder / run_folder / "baseline" / "tfidf_logreg" / "metrics.json").is_file()
    assert (folder / "learning_curve.png").stat().st_size > 10_000
    assert "The last doubling of the training rows" in proc.stdout
    assert "The last doubling" in (folder / "learning_curve.md").read_text()
