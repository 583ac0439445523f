"""`textcls label-issues` (folds, out-of-fold probabilities, cleanlab's ranking, the outputs) and the
corrections file that `fit` applies (`data.corrections_file`)."""

import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import make_multi_label_rows, make_rows, write_jsonl, write_pair_files
from tests.test_cli import run, run_process, write_config
from textcls.data import DataError, TextClassificationData
from textcls.label_issues import LabelIssuesError, frozen
from textcls.label_issues.folds import assign_folds, pooled_rows
from textcls.label_issues.rank import rank_issues
from textcls.label_issues.review import AS_GIVEN, decide


def flipped_rows(n_per_class: int = 30, flip: int = 7) -> tuple[list[dict], str]:
    """Easy rows (each class its own words) with the label of row `flip` changed; and its true label."""
    rows = make_rows(n_per_class, seed=5)
    true = rows[flip]["label"]
    rows[flip]["label"] = next(label for label in ("sports", "tech", "food") if label != true)
    return rows, true


def tiny_config(tmp_path, backbone, files, **data) -> str:
    config = write_config(tmp_path, backbone, files, max_epochs=1)
    settings = yaml.safe_load(config.read_text())
    settings["data"] |= {"max_length": 24, **data}
    settings["trainer"]["precision"] = "32-true"
    config.write_text(yaml.safe_dump(settings))
    return str(config)


# ----------------------------------------------------------------------------- folds and probabilities


def test_folds_are_stratified_by_class_and_by_every_label():
    labels = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 10)
    folds = assign_folds(labels, 5, seed=0, multi_label=False)
    assert sorted(np.unique(folds)) == [0, 1, 2, 3, 4]
    per_fold = pd.crosstab(folds, labels)
    assert per_fold["a"].tolist() == [10] * 5 and per_fold["b"].tolist() == [6] * 5
    assert per_fold["c"].tolist() == [2] * 5
    sets = pd.Series([tuple(r["labels"].split(";")) for r in make_multi_label_rows(150)])
    folds = assign_folds(sets, 3, seed=0, multi_label=True)
    for name in ("food", "sports", "tech"):
        positives = np.bincount(folds[sets.map(lambda s, n=name: n in s).to_numpy()], minlength=3)
        assert positives.max() - positives.min() <= 2, (name, positives)


def test_every_row_gets_exactly_one_out_of_fold_probability(tiny_backbone, tmp_path, monkeypatch):
    train = write_jsonl(tmp_path / "train.jsonl", make_rows(20, seed=1))
    data = TextClassificationData(
        train_file=str(train), model_name_or_path=tiny_backbone, max_length=24, test_fraction=0
    )
    rows = pooled_rows(data)  # train and the validation split off it: every row of the file
    assert sorted(rows["row"]) == list(range(60)) and set(rows["file"]) == {str(train)}
    folds = assign_folds(rows["label"], 4, seed=0, multi_label=False)
    trained_on = []
    fit = frozen.fold_classifier
    monkeypatch.setattr(
        frozen, "fold_classifier", lambda x, y, n, seed: trained_on.append(len(x)) or fit(x, y, n, seed)
    )
    probs = frozen.frozen_probabilities(rows, folds, data)
    assert probs.shape == (60, 3) and np.allclose(probs.sum(1), 1)
    # four classifiers, each trained on the rows of the other three folds
    assert trained_on == [int((folds != k).sum()) for k in range(4)]


def test_cleanlab_missing_is_one_line_with_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cleanlab", None)
    rows = pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})
    with pytest.raises(LabelIssuesError, match=r'pip install "textcls\[labels\]"'):
        rank_issues(rows, np.array([[0.9, 0.1], [0.2, 0.8]]), ["x", "y"])


# ----------------------------------------------------------------------------- the command


def test_a_planted_label_flip_is_ranked_first(tiny_backbone, tmp_path):
    rows, true = flipped_rows()
    for i, row in enumerate(rows):
        row["id"] = f"doc{i}"
    files = {"train": write_jsonl(tmp_path / "train.jsonl", rows), "test": None, "predict": None}
    config = tiny_config(tmp_path, tiny_backbone, files, id_column="id", test_file=None, test_fraction=0)
    run("label-issues", "--config", config, "--folds", "3", cwd=tmp_path)
    issues = pd.read_csv(tmp_path / "logs" / "tiny" / "label_issues" / "label_issues.csv")
    assert list(issues.columns) == [
        *("file", "row", "id", "text", "given_label", "suggested_label", "label_quality"),
    ]
    worst = issues.iloc[0]
    assert (worst["file"], worst["row"], worst["id"]) == (str(files["train"]), 7, "doc7")
    assert (worst["given_label"], worst["suggested_label"]) == (rows[7]["label"], true)
    assert issues["label_quality"].is_monotonic_increasing
    summary = (tmp_path / "logs" / "tiny" / "label_issues" / "label_issues.md").read_text()
    assert f"{len(issues)} of 90 training and validation rows" in summary and "| train.jsonl | 7 |" in summary
    # the review's decision, read back by the data as fit reads it
    decide(tmp_path / "corrections.csv", worst["file"], worst["row"], worst["suggested_label"])
    data = TextClassificationData(
        train_file=str(files["train"]), corrections_file=str(tmp_path / "corrections.csv"),
        model_name_or_path=tiny_backbone, test_fraction=0,
    )  # fmt: skip
    assert pd.concat(data.frames.values()).set_index("row").loc[7, "label"] == true


def test_label_sets_are_checked_with_cleanlabs_multi_label_ranking(
    tiny_backbone, tmp_path, multi_label_files
):
    rows = pd.read_csv(multi_label_files["train"])
    true = rows.loc[4, "labels"]
    rows.loc[4, "labels"] = "tech" if "tech" not in true else "food"  # a wrong label set
    rows.to_csv(multi_label_files["train"], index=False)
    config = tiny_config(tmp_path, tiny_backbone, multi_label_files, multi_label=True, label_column="labels")
    run("label-issues", "--config", config, "--folds", "3", "--output_dir", "out", cwd=tmp_path)
    issues = pd.read_csv(tmp_path / "out" / "label_issues.csv", keep_default_na=False)
    assert len(issues) and issues["label_quality"].is_monotonic_increasing
    given = issues.set_index("row")["given_label"]
    assert all(given[r] == ";".join(sorted(rows.loc[r, "labels"].split(";"))) for r in given.index)
    assert set(";".join(issues["suggested_label"]).split(";")) <= {"food", "sports", "tech", ""}


def test_pairs_are_read_as_pairs(tiny_backbone, tmp_path):
    files = write_pair_files(tmp_path, train=60)
    config = tiny_config(tmp_path, tiny_backbone, files, text_pair_column="text_pair")
    run("label-issues", "--config", config, "--folds", "2", "--output_dir", "out", cwd=tmp_path)
    issues = pd.read_csv(tmp_path / "out" / "label_issues.csv")
    assert list(issues.columns)[:5] == ["file", "row", "text", "text_pair", "given_label"]
    rows = pd.read_json(files["train"], lines=True)
    assert (rows.loc[issues["row"], "text_pair"].to_numpy() == issues["text_pair"].to_numpy()).all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--folds", "1"], "--folds must be at least 2"),
        (["--method", "bert"], "--method must be one of frozen, finetune, got 'bert'"),
        (["--data.problem_type", "regression", "--data.label_column", "score"], "label-issues is for labels"),
    ],
)
def test_bad_options_and_regression_are_one_line_errors(
    tiny_backbone, tmp_path, data_files, options, message
):
    rows = [r | {"score": float(i % 5)} for i, r in enumerate(make_rows(10))]
    data_files["train"] = write_jsonl(tmp_path / "train.jsonl", rows)
    config = tiny_config(tmp_path, tiny_backbone, data_files)
    proc = run("label-issues", "--config", config, *options, cwd=tmp_path, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("textcls: error: ") and message in last
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_finetune_runs_a_fit_per_fold_through_the_real_cli(tiny_backbone, tmp_path):
    rows, _ = flipped_rows(12)
    files = {"train": write_jsonl(tmp_path / "train.jsonl", rows), "test": None, "predict": None}
    config = tiny_config(tmp_path, tiny_backbone, files, test_file=None, test_fraction=0, val_fraction=0.2)
    out = tmp_path / "found"
    proc = run_process(
        "label-issues", "--config", config, "--method", "finetune", "--folds", "2",
        "--trainer.max_epochs", "2", "--output_dir", str(out), cwd=tmp_path,
    )  # fmt: skip
    folds = tmp_path / "logs" / "tiny" / "label_issues"
    for k in (0, 1):  # each an ordinary run with the override applied, its data beside it
        assert (folds / f"fold_{k}" / "checkpoints" / "best.ckpt").exists()
        assert yaml.safe_load((folds / f"fold_{k}" / "config.yaml").read_text())["trainer"]["max_epochs"] == 2
        assert len(pd.read_json(folds / f"fold_{k}" / "data" / "train.jsonl", lines=True)) > 0
    issues = pd.read_csv(out / "label_issues.csv")
    assert set(issues["given_label"]) <= {"sports", "tech", "food"} and "rows flagged" in proc.stdout
    assert (out / "label_issues.md").exists()


# ----------------------------------------------------------------------------- corrections


def write_corrections(path, rows: list[tuple]) -> str:
    pd.DataFrame(rows, columns=["file", "row", "label"]).to_csv(path, index=False)
    return str(path)


def test_corrections_are_applied_before_splitting(tiny_backbone, tmp_path):
    rows, true = flipped_rows()
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    corrections = write_corrections(
        tmp_path / "corrections.csv", [(str(train), 7, true), (str(train), 8, rows[8]["label"])]
    )
    data = TextClassificationData(
        train_file=str(train), corrections_file=corrections, model_name_or_path=tiny_backbone
    )
    frames = pd.concat(data.frames.values())
    assert frames.set_index("row").loc[7, "label"] == true  # wherever the split put it
    plain = TextClassificationData(train_file=str(train), model_name_or_path=tiny_backbone)
    assert {s: len(f) for s, f in data.frames.items()} == {s: len(f) for s, f in plain.frames.items()}
    before = pd.concat(plain.frames.values()).set_index("row")["label"].sort_index()
    assert (frames.set_index("row")["label"].sort_index() != before).sum() == 1


def test_label_set_corrections(tiny_backbone, tmp_path, multi_label_files):
    train = str(multi_label_files["train"])
    corrections = write_corrections(tmp_path / "c.csv", [(train, 0, "tech;food"), (train, 1, "")])
    data = TextClassificationData(
        train_file=train, multi_label=True, label_column="labels", corrections_file=corrections,
        model_name_or_path=tiny_backbone, val_fraction=0, test_fraction=0,
    )  # fmt: skip
    labels = data.frames["train"].set_index("row")["label"]
    assert labels[0] == ("food", "tech") and labels[1] == ()


@pytest.mark.parametrize(
    ("correction", "message"),
    [
        ((None, 500, "food"), "has no row 500"),
        ((None, 3, "food"), "has no row 3"),  # an empty text, dropped when read
        ((None, 0, "music"), "label 'music' is not a label of the data"),
        (("elsewhere.csv", 0, "food"), "'elsewhere.csv' is not an input of this data"),
    ],
)
def test_corrections_that_do_not_fit_the_data_stop_with_one_line(
    tiny_backbone, tmp_path, correction, message
):
    rows = make_rows(5)
    rows[3]["text"] = "  "
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    corrections = write_corrections(tmp_path / "c.csv", [(correction[0] or str(train), *correction[1:])])
    data = TextClassificationData(
        train_file=str(train), corrections_file=corrections, model_name_or_path=tiny_backbone
    )
    with pytest.raises(DataError, match="line 2") as err:
        _ = data.frames
    assert message in str(err.value) and "\n" not in str(err.value)


def test_fit_applies_a_corrections_file_and_refuses_one_that_does_not_fit(
    tiny_backbone, tmp_path, data_files
):
    train = str(data_files["train"])
    given = pd.read_json(train, lines=True)["label"]
    other = next(label for label in ("sports", "tech", "food") if label != given[0])
    config = tiny_config(tmp_path, tiny_backbone, data_files, corrections_file="c.csv")
    write_corrections(tmp_path / "c.csv", [(train, 0, other), (train, 1, "music")])
    proc = run("fit", "--config", config, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "line 3: label 'music' is not a label of the data" in proc.stderr
    write_corrections(tmp_path / "c.csv", [(train, 0, other), (train, 1, given[1])])  # 1: correct as given
    proc = run("fit", "--config", config, "--trainer.limit_train_batches", "2", cwd=tmp_path)
    assert "corrections: 1 of the 2 rows in c.csv relabelled" in proc.stderr


def _review(issues: str, corrections: str) -> None:
    from textcls.label_issues.review import review_page

    review_page(issues, corrections)


def test_the_review_page_keeps_decisions_in_a_corrections_file(tmp_path):
    testing = pytest.importorskip("streamlit.testing.v1", reason="streamlit is not installed (the app extra)")
    issues, corrections = tmp_path / "label_issues.csv", tmp_path / "corrections.csv"
    pd.DataFrame(
        {
            "file": ["train.csv", "train.csv"],
            "row": [7, 3],
            "text": ["pizza sauce bake", "goal match team"],
            "given_label": ["tech", "food"],
            "suggested_label": ["food", "sports"],
            "label_quality": [0.01, 0.2],
        }
    ).to_csv(issues, index=False)
    app = testing.AppTest.from_function(_review, args=(str(issues), str(corrections)), default_timeout=60)
    app.run()
    assert not app.exception
    assert app.radio[0].options == ["not reviewed", AS_GIVEN, "relabel to food", "relabel to sports"]
    app.radio[0].set_value("relabel to food").run()
    app.radio[1].set_value(AS_GIVEN).run()
    assert pd.read_csv(corrections).values.tolist() == [["train.csv", 7, "food"], ["train.csv", 3, "food"]]
    app.radio[0].set_value("relabel to sports").run()  # a second thought replaces the first
    assert pd.read_csv(corrections).values.tolist() == [["train.csv", 3, "food"], ["train.csv", 7, "sports"]]
    again = testing.AppTest.from_function(_review, args=(str(issues), str(corrections)), default_timeout=60)
    again.run()
    assert [r.value for r in again.radio] == ["relabel to sports", AS_GIVEN]


def _app_main(issues: str, corrections: str) -> None:
    from textcls.app import main

    main(["app.py", "--label_issues", issues, "--corrections", corrections, "--quantize", "none"])


def test_the_app_opens_the_review_page_without_a_model(tmp_path):
    testing = pytest.importorskip("streamlit.testing.v1", reason="streamlit is not installed (the app extra)")
    issues = tmp_path / "label_issues.csv"
    pd.DataFrame(
        {
            "file": ["t.csv"],
            "row": [0],
            "text": ["goal"],
            "given_label": ["food"],
            "suggested_label": ["sports"],
        }
        | {"label_quality": [0.1]}
    ).to_csv(issues, index=False)
    app = testing.AppTest.from_function(
        _app_main, args=(str(issues), str(tmp_path / "c.csv")), default_timeout=60
    )
    app.run()
    assert not app.exception and app.title[0].value == "Label issues" and len(app.radio) == 1
    proc = run("app", "--label_issues", str(tmp_path / "missing.csv"), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "--label_issues 'missing.csv' does not exist" in proc.stderr.replace(
        str(tmp_path) + "/", ""
    )
