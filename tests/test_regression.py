"""Numbers instead of labels (`data.problem_type: regression`): targets, standardisation, metrics, the
report, predictions, export and bad input, on pairs of texts scored 0 to 5."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import fit_test_predict, make_pair_rows, write_jsonl, write_pair_config, write_pair_files
from tests.test_cli import run
from textcls.data import DataError, TextClassificationData
from textcls.inference import load_predictor
from textcls.tasks.regression import Regression


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_backbone):
    """A tiny regression fitted, tested and used to predict through the real CLI."""
    tmp_path = tmp_path_factory.mktemp("regression")
    files = write_pair_files(tmp_path)
    config = write_pair_config(
        tmp_path, tiny_backbone, files, 5, label_column="score", problem_type="regression"
    )
    return {"tmp": tmp_path, "files": files, "config": config, **fit_test_predict(tmp_path, config)}


def test_the_checkpoint_keeps_the_standardisation_and_picks_by_pearson(trained):
    ckpt = torch.load(trained["ckpt"], weights_only=True)
    train = pd.read_json(trained["files"]["train"], lines=True)["score"]
    scaling = ckpt["target_scaling"]
    # the training split (90% of the file) gives the mean and standard deviation
    assert abs(scaling["mean"] - train.mean()) < 0.3 and abs(scaling["std"] - train.std(ddof=0)) < 0.3
    assert any("'monitor': 'val/pearson'" in key and "'mode': 'max'" in key for key in ckpt["callbacks"])
    assert ckpt["hyper_parameters"]["problem_type"] == "regression"
    assert ckpt["hyper_parameters"]["label_names"] == ["score"]


def test_the_report_has_regression_metrics_and_the_largest_errors(trained):
    folder = next((trained["tmp"] / "logs/tiny").glob("version_*/metrics.json")).parent
    metrics = json.loads((folder / "metrics.json").read_text())
    predictions = pd.read_csv(folder / "predictions.csv")
    y, p = predictions["true_score"].to_numpy(), predictions["predicted_score"].to_numpy()
    assert metrics["mse"] == pytest.approx(float(((p - y) ** 2).mean()), rel=1e-6)
    assert metrics["mae"] == pytest.approx(float(np.abs(p - y).mean()), rel=1e-6)
    assert metrics["pearson"] == pytest.approx(float(np.corrcoef(y, p)[0, 1]), abs=1e-6)
    assert {"spearman", "r2"} <= metrics.keys() and metrics["rows"] == 40
    assert (folder / "predicted_vs_true.png").stat().st_size > 0
    largest = pd.read_csv(folder / "largest_errors.csv")
    assert largest["error"].abs().is_monotonic_decreasing and "text_pair" in largest.columns
    report = (folder / "report.md").read_text()
    assert "## Error by target quantile" in report and "## Largest errors" in report
    assert "accuracy" not in metrics


def test_predictions_are_scores_in_the_targets_units(trained):
    predictions = pd.read_csv(trained["pred"])
    assert predictions.columns.tolist() == ["text", "text_pair", "score"]
    predictor = load_predictor(trained["ckpt"])
    pairs = list(zip(predictions["text"], predictions["text_pair"], strict=True))
    np.testing.assert_allclose(predictor.predict_probs(pairs)[:, 0], predictions["score"], atol=1e-5)
    # the model learnt the spread: same-topic pairs (5) score above different-topic ones (0)
    rows = make_pair_rows(10, seed=3)
    same = np.array([r["label"] == "same" for r in rows])
    assert predictions["score"][same].mean() > predictions["score"][~same].mean()


def test_an_exported_regression_folder_answers_in_units_with_pipeline(trained, tmp_path):
    from transformers import pipeline

    from textcls.export import export

    folder = export(str(trained["ckpt"]), str(tmp_path / "exported"))
    config = json.loads((folder / "config.json").read_text())
    assert config["problem_type"] == "regression" and len(config["id2label"]) == 1
    predictions = pd.read_csv(trained["pred"])
    classify = pipeline("text-classification", model=str(folder))
    inputs = [
        {"text": a, "text_pair": b}
        for a, b in zip(predictions["text"], predictions["text_pair"], strict=True)
    ]
    scores = [out["score"] for out in classify(inputs, truncation=True, function_to_apply="none")]
    np.testing.assert_allclose(scores, predictions["score"], atol=1e-5)
    run(
        "predict", "--config", str(trained["config"]), "--ckpt_path", str(folder),
        "--prediction.output_path", str(tmp_path / "again.csv"), cwd=trained["tmp"],
    )  # fmt: skip
    np.testing.assert_allclose(pd.read_csv(tmp_path / "again.csv")["score"], predictions["score"], atol=1e-5)


def test_splits_are_stratified_on_quantile_bins_of_the_target():
    values = pd.Series(np.linspace(0, 5, 200))
    parts, _ = Regression(["score"]).split(values, {"validation": 0.1, "test": 0.1}, seed=0)
    for split in ("validation", "test"):
        chosen = values[parts[split]]
        assert len(chosen) == 20 and chosen.min() < 0.6 and chosen.max() > 4.4  # each spans the range


def _data(backbone, tmp_path, rows, **kw) -> TextClassificationData:
    path = write_jsonl(tmp_path / "data.jsonl", rows)
    settings = {
        "train_file": str(path),
        "text_pair_column": "text_pair",
        "label_column": "score",
        "problem_type": "regression",
        "model_name_or_path": backbone,
        "cache_dir": str(tmp_path / "cache"),
    }
    return TextClassificationData(**(settings | kw))


def test_bad_targets_stop_with_one_line(tiny_backbone, tmp_path):
    rows = make_pair_rows(40, seed=4)
    rows[7]["score"] = "about three"
    with pytest.raises(DataError, match="'about three' at source row 7: data.problem_type regression needs"):
        _ = _data(tiny_backbone, tmp_path, rows).frames
    rows[7]["score"] = "inf"
    with pytest.raises(DataError, match="'inf' at source row 7"):
        _ = _data(tiny_backbone, tmp_path, rows).frames
    constant = [r | {"score": 2.5} for r in make_pair_rows(40, seed=4)]
    with pytest.raises(DataError, match="training targets are all 2.5"):
        _ = _data(tiny_backbone, tmp_path, constant).frames
    with pytest.raises(DataError, match="data.problem_type must be one of"):
        _ = _data(tiny_backbone, tmp_path, constant, problem_type="ordinal").task
    with pytest.raises(DataError, match="data.multi_label true means"):
        _ = _data(tiny_backbone, tmp_path, constant, multi_label=True).task


@pytest.mark.parametrize(
    "option, message",
    [
        (["--model.class_weights", "balanced"], "model.class_weights is for classifiers"),
        (["--model.label_smoothing", "0.1"], "model.label_smoothing is for classifiers"),
        (["--prediction.target_precision", "0.9"], "are for classifiers"),
    ],
)
def test_classifier_options_stop_a_regression_in_one_line(trained, option, message):
    command = "fit" if option[0].startswith("--model") else "predict"
    extra = [] if command == "fit" else ["--ckpt_path", "best"]
    proc = run(command, "--config", str(trained["config"]), *extra, *option, cwd=trained["tmp"], check=False)
    assert proc.returncode == 2 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_regression_baselines_are_ridge_and_the_pairs_cosine(trained, tiny_backbone, tmp_path, capsys):
    from textcls.baseline import Baselines, run_baselines

    files = trained["files"]
    data = _data(tiny_backbone, tmp_path, make_pair_rows(120, seed=1), max_length=24)
    data.hparams.test_file = str(files["test"])
    methods = ["tfidf_logreg", "tfidf_nb", "frozen_encoder", "zero_shot"]
    results = run_baselines(data, tmp_path / "b", Baselines(methods=methods))
    assert set(results) == {"tfidf_logreg", "frozen_encoder", "zero_shot"}
    printed = capsys.readouterr().out
    assert "tfidf_nb: skipped, it is a classifier" in printed and "Pearson" in printed
    assert results["tfidf_logreg"]["model"] == "TF-IDF + ridge regression"
    assert {"mse", "mae", "pearson", "spearman", "r2"} <= results["zero_shot"].keys()
    report = (tmp_path / "b/zero_shot/report.md").read_text()
    assert "cosine similarity" in report


def test_the_data_check_reports_the_targets(tiny_backbone, tmp_path):
    from textcls.checks import check_data, render

    report = check_data(_data(tiny_backbone, tmp_path, make_pair_rows(60, seed=4)))
    target = report["splits"]["train"]["target"]
    assert (
        target["min"] < 0 < 5 < target["max"]
        and sum(target["histogram"]["counts"]) == report["splits"]["train"]["rows"]
    )
    assert report["problem_type"] == "regression" and "Targets:" in render(report)
    assert not [p for p in report["problems"] if p["level"] == "error"]


@pytest.mark.slow
def test_onnx_of_a_regression_agrees_by_the_largest_difference(trained, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from textcls.export import ONNX_FILE, export, onnx_probs, onnx_session

    pairs = [(r["text"], r["text_pair"]) for r in make_pair_rows(30, seed=9)]
    folder = export(str(trained["ckpt"]), str(tmp_path / "onnx"), onnx=True, check_texts=pairs)
    assert "(max absolute difference" in capsys.readouterr().out
    predictor = load_predictor(folder)
    np.testing.assert_allclose(
        onnx_probs(onnx_session(folder / ONNX_FILE), predictor, pairs),
        predictor.predict_probs(pairs),
        atol=1e-4,
    )


def test_a_regression_on_single_texts(tiny_backbone, tmp_path):
    """No pair column: one text per row, scored; the prediction table names rows by their id."""
    rows = [
        {"id": i, "text": r["text"], "score": r["score"]} for i, r in enumerate(make_pair_rows(80, seed=8))
    ]
    files = {
        "train": write_jsonl(tmp_path / "train.jsonl", rows[:60]),
        "test": write_jsonl(tmp_path / "test.jsonl", rows[60:]),
        "predict": write_jsonl(tmp_path / "predict.jsonl", rows[60:70]),
    }
    config = write_pair_config(
        tmp_path, tiny_backbone, files, 1, text_pair_column=None, label_column="score",
        problem_type="regression", id_column="id",
    )  # fmt: skip
    predictions = pd.read_csv(fit_test_predict(tmp_path, config)["pred"])
    assert predictions.columns.tolist() == ["id", "score"] and predictions["id"].tolist() == list(
        range(60, 70)
    )
    assert np.isfinite(predictions["score"]).all()


def test_a_regression_on_pairs_fits_in_bf16_mixed(tiny_backbone, tmp_path, bf16_cpu):
    """The automatic precision of a CPU with native bf16 (bf16-mixed fit, fp32 validation): the loss
    and the scores stay finite, and the validation Pearson is logged."""
    files = write_pair_files(tmp_path, train=60, test=10, predict=5)
    config = write_pair_config(
        tmp_path, tiny_backbone, files, 1, label_column="score", problem_type="regression"
    )
    settings = yaml.safe_load(config.read_text())
    del settings["trainer"]["precision"]  # automatic: bf16-mixed on this (patched) CPU
    config.write_text(yaml.safe_dump(settings))
    made = fit_test_predict(tmp_path, config, test=False)
    assert torch.load(made["ckpt"], weights_only=True)["hyper_parameters"]["problem_type"] == "regression"
    assert np.isfinite(pd.read_csv(made["pred"])["score"]).all()
    saved = yaml.safe_load((tmp_path / "logs/tiny/version_0/config.yaml").read_text())
    assert saved["trainer"]["precision"] == "bf16-mixed"
    ckpt = torch.load(made["ckpt"], weights_only=True)
    [best] = [
        v["best_model_score"]
        for k, v in ckpt["callbacks"].items()
        if "val/pearson" in k and "best_model_score" in v
    ]
    assert torch.isfinite(best)
