"""fit, baseline and test through the real CLI: every report file is produced, parses and agrees."""

import json
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from tests.conftest import make_rows, write_jsonl
from tests.test_cli import run, write_config
from textcls.data import TextClassificationData
from textcls.metrics import stage_metrics
from textcls.model import TextClassifier
from textcls.report import TestReport, compute_metrics


def test_report_files_and_baselines_on_the_same_rows(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=2)
    root = tmp_path / "logs" / "tiny"
    run("baseline", "--config", str(config), cwd=tmp_path)
    run("fit", "--config", str(config), cwd=tmp_path)
    run("test", "--config", str(config), "--ckpt_path", "best", cwd=tmp_path)
    fit_dir, test_dir = root / "version_0", root / "version_1"

    # the baselines and the fine-tuned model saw the same train/validation/test rows
    fit_rows = json.loads((fit_dir / "split_rows.json").read_text())
    assert fit_rows == json.loads((root / "baselines" / "split_rows.json").read_text())
    assert json.loads((fit_dir / "data_check.json").read_text())["splits"]["train"]["rows"] == len(
        fit_rows["train"]
    )
    preds = pd.read_csv(test_dir / "predictions.csv")
    assert sorted(preds["row"]) == sorted(fit_rows["test"]) == list(range(30))
    for name in ("tfidf_logreg", "tfidf_nb"):
        assert sorted(pd.read_csv(root / "baselines" / name / "predictions.csv")["row"]) == sorted(
            fit_rows["test"]
        )

    for folder in (test_dir, root / "baselines" / "tfidf_logreg"):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["rows"] == 30 and 0 <= metrics["accuracy"] <= 1
        preds = pd.read_csv(folder / "predictions.csv")
        assert metrics["accuracy"] == (preds["true_label"] == preds["predicted_label"]).mean()
        matrix = pd.read_csv(folder / "confusion_matrix.csv", index_col=0)
        assert matrix.to_numpy().sum() == 30
        expected = pd.crosstab(preds["true_label"], preds["predicted_label"]).reindex(
            index=matrix.index, columns=matrix.columns, fill_value=0
        )
        assert (matrix.to_numpy() == expected.to_numpy()).all()
        per_class = pd.read_csv(folder / "per_class.csv")
        assert per_class["support"].tolist() == [10, 10, 10]
        assert "macro avg" in (folder / "classification_report.txt").read_text()
        mistakes = pd.read_csv(folder / "misclassified.csv")
        assert len(mistakes) == (preds["true_label"] != preds["predicted_label"]).sum()
        assert mistakes["confidence"].is_monotonic_decreasing
        assert (folder / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
        assert "## Per class" in (folder / "report.md").read_text()

    report = (test_dir / "report.md").read_text()
    assert "## Comparison on the same test rows" in report and "TF-IDF + logistic regression" in report
    assert json.loads((test_dir / "metrics.json").read_text())["train_seconds"] > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(test_dir)).Reload()
    for name in ("confusion_matrix", "reliability_diagram", "precision_coverage"):
        assert f"test/{name}" in events.Tags()["images"]


def test_report_and_logged_metrics_share_one_definition():
    """sklearn on arrays (report, baselines) and torchmetrics (logged) agree, with absent classes too."""
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = 5
        y_true = rng.integers(0, n, 40)
        y_pred = np.where(rng.random(40) < 0.6, y_true, rng.integers(0, n, 40))
        absent = rng.choice(n, size=trial % 3, replace=False)  # no examples and no predictions
        keep = ~np.isin(y_true, absent) & ~np.isin(y_pred, absent)
        y_true, y_pred = y_true[keep], y_pred[keep]
        probs = np.eye(n)[y_pred] * 0.9 + 0.02
        logged = stage_metrics(n, "")(torch.as_tensor(probs), torch.as_tensor(y_true))
        reported = compute_metrics(y_true, probs)
        for name, key in LOGGED_AS.items():
            assert reported[key] == pytest.approx(logged[name].item(), abs=1e-6), (trial, name)


LOGGED_AS = {
    "acc": "accuracy",
    "f1_macro": "f1_macro",
    "f1_weighted": "f1_weighted",
    "precision_macro": "precision_macro",
    "recall_macro": "recall_macro",
}


@pytest.mark.parametrize("absent", [False, True], ids=["all-classes", "class-absent"])
def test_logged_test_metrics_equal_metrics_json(tmp_path, tiny_backbone, data_files, absent):
    test_rows = make_rows(10, seed=2)
    if absent:  # no "tech" text in the test split, and the model never predicts it
        test_rows = [r for r in test_rows if r["label"] != "tech"]
    data = TextClassificationData(
        train_file=str(data_files["train"]),
        test_file=str(write_jsonl(tmp_path / "test.jsonl", test_rows)),
        model_name_or_path=tiny_backbone,
        batch_size=8,
        cache_dir=str(tmp_path / "cache"),
    )
    model = TextClassifier(tiny_backbone, data.label_names)
    if absent:
        with torch.no_grad():
            model.model.classifier.bias[data.label_names.index("tech")] = -1e4
    logger = TensorBoardLogger(tmp_path / "logs", name="tiny")
    trainer = L.Trainer(accelerator="cpu", logger=logger, callbacks=[TestReport()], enable_progress_bar=False)
    [logged] = trainer.test(model, datamodule=data)
    written = json.loads((Path(logger.log_dir) / "metrics.json").read_text())
    assert written["rows"] == len(test_rows)
    for name, key in LOGGED_AS.items():
        assert written[key] == pytest.approx(logged[f"test/{name}"], abs=1e-6), name
    assert written["loss"] == pytest.approx(logged["test/loss"], rel=1e-4)  # no class weights: the same loss
    preds = pd.read_csv(Path(logger.log_dir) / "predictions.csv")
    if absent:
        assert "tech" not in set(preds["predicted_label"]) | set(preds["true_label"])
