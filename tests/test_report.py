"""fit, baseline and test through the real CLI: every report file is produced, parses and agrees."""

import json
import time
import types
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from tests.conftest import make_rows, write_jsonl
from tests.test_cli import run, write_config
from textcls.callbacks import timing
from textcls.data import TextClassificationData
from textcls.metrics import compute_metrics
from textcls.model import TextClassifier
from textcls.report import TestReport
from textcls.tasks.single_label import stage_metrics


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


def test_training_time_of_a_resumed_fit_includes_the_time_before(
    tmp_path, tiny_backbone, data_files, monkeypatch
):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=1)
    runs = tmp_path / "logs" / "tiny"
    with monkeypatch.context() as patched:  # the first run's clock goes 1000 times as fast
        fast = types.SimpleNamespace(perf_counter=lambda: 1000 * time.perf_counter())
        patched.setattr(timing, "time", fast)
        run("fit", "--config", str(config), cwd=tmp_path)
    before = torch.load(runs / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)["train_seconds"]

    start = time.perf_counter()
    resume = ("--ckpt_path", "last", "--trainer.max_epochs", "2")
    run("fit", "--config", str(config), *resume, cwd=tmp_path)
    took = time.perf_counter() - start
    after = torch.load(runs / "version_1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert after["global_step"] == 2 * 14 and before < after["train_seconds"] < before + took

    run(
        "test", "--config", str(config), "--ckpt_path", "last", "--report.explain_mistakes", "0", cwd=tmp_path
    )
    reported = json.loads((runs / "version_2" / "metrics.json").read_text())["train_seconds"]
    assert reported == round(after["train_seconds"], 1)


# ----------------------------------------------------------------------------- score by text length


def test_length_buckets_are_quartiles_and_ties_stay_together():
    from textcls.report.by_length import by_length_table, length_buckets
    from textcls.tasks import SingleLabel

    lengths = np.array([10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33, 40, 41, 42, 90])
    assert np.bincount(length_buckets(lengths)).tolist() == [4, 4, 4, 4]
    assert length_buckets(np.full(7, 16)).tolist() == [0] * 7  # one length: one bucket
    y_true = np.zeros(16, dtype=int)
    y_pred = np.array([0] * 4 + [0, 0, 0, 1] + [0, 1, 1, 1] + [1] * 4)  # accuracy 1, 3/4, 1/4, 0
    table = by_length_table(lengths, y_true, y_pred, SingleLabel(["0", "1"]).report_module().length_score)
    assert table["rows"].tolist() == [4, 4, 4, 4] and table["accuracy"].tolist() == [1.0, 0.75, 0.25, 0.0]
    assert table["min_tokens"].tolist() == [10, 20, 30, 40] and table["max_tokens"].tolist() == [
        13,
        23,
        33,
        90,
    ]


def test_multi_label_score_by_length_is_macro_f1_at_the_thresholds(tmp_path):
    import json

    from textcls.metrics import compute_multilabel_scores
    from textcls.report import compose_report
    from textcls.tasks import MultiLabel
    from textcls.thresholds import Thresholds

    rng = np.random.default_rng(0)
    labels = [("a",), ("a", "b"), ("b",), ("c",)] * 5
    test = pd.DataFrame({"row": range(20), "text": ["t"] * 20, "label": labels})
    probs = rng.random((20, 3))
    lengths = np.arange(20) * 3 + 5
    thresholds = Thresholds([0.3, 0.5, 0.7], [True] * 3, [])
    task = MultiLabel(["a", "b", "c"], thresholds=thresholds)
    metrics, _ = compose_report(tmp_path, task, test, probs, {"model": "m"}, lengths=lengths)
    table = pd.DataFrame(metrics["by_length"])
    y_true = np.array([[n in row for n in "abc"] for row in labels], dtype=int)
    y_pred = (probs >= np.array([0.3, 0.5, 0.7])).astype(int)
    first = slice(0, 5)  # lengths rise with the row: the first quartile is the first 5 rows
    assert table["rows"].tolist() == [5] * 4
    assert table["f1_macro"][0] == pytest.approx(
        compute_multilabel_scores(y_true[first], y_pred[first])["f1_macro"]
    )
    assert json.loads((tmp_path / "metrics.json").read_text())["by_length"] == table.to_dict(orient="records")
    assert (
        "## By text length" in (tmp_path / "report.md").read_text()
        and "macro F1" in (tmp_path / "report.md").read_text()
    )


def test_report_by_length_of_chunked_long_texts(tmp_path, tiny_backbone):
    import random

    rng = random.Random(3)
    rows = {
        split: [
            {"text": " ".join([r["text"]] * rng.randint(1, 8)), "label": r["label"]}
            for r in make_rows(n, seed)
        ]
        for split, n, seed in (("train", 10, 1), ("test", 8, 2))
    }
    data = TextClassificationData(
        train_file=str(write_jsonl(tmp_path / "train.jsonl", rows["train"])),
        test_file=str(write_jsonl(tmp_path / "test.jsonl", rows["test"])),
        model_name_or_path=tiny_backbone,
        max_length=16,
        long_text="chunks",
        batch_size=8,
        cache_dir=str(tmp_path / "cache"),
    )
    logger = TensorBoardLogger(tmp_path / "logs", name="tiny")
    trainer = L.Trainer(
        accelerator="cpu",
        logger=logger,
        callbacks=[TestReport(explain_mistakes=0)],
        enable_progress_bar=False,
    )
    trainer.test(TextClassifier(tiny_backbone, data.label_names), datamodule=data)
    folder = Path(logger.log_dir)
    table = pd.read_csv(folder / "by_length.csv")
    assert table["rows"].sum() == len(rows["test"]) == 24 and len(table) == 4
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["by_length"] == table.to_dict(orient="records")
    assert "## By text length" in (folder / "report.md").read_text()
    # each bucket's accuracy is that of the predictions whose full token length falls in its range
    preds = pd.read_csv(folder / "predictions.csv")
    preds["tokens"] = [len(ids) for ids in data.tokenizer(preds["text"].tolist())["input_ids"]]
    assert preds["tokens"].max() > 16  # the texts were read in several windows
    for bucket in table.itertuples():
        inside = preds[preds["tokens"].between(bucket.min_tokens, bucket.max_tokens)]
        assert len(inside) == bucket.rows
        assert bucket.accuracy == pytest.approx((inside["true_label"] == inside["predicted_label"]).mean())


def test_single_label_report_leads_with_a_better_baseline(tmp_path):
    from textcls.report import compose_report
    from textcls.tasks import SingleLabel

    test = pd.DataFrame({"row": range(4), "text": ["a", "b", "c", "d"], "label": ["x", "y", "x", "y"]})
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.2, 0.8]])  # 3 of 4 right
    weaker = {"model": "TF-IDF + naive Bayes", "accuracy": 0.5, "f1_macro": 0.33, "train_seconds": 1.0}
    stronger = {
        "model": "TF-IDF + logistic regression",
        "accuracy": 1.0,
        "f1_macro": 1.0,
        "train_seconds": 1.0,
    }
    task = SingleLabel(["x", "y"])
    metrics, _ = compose_report(tmp_path, task, test, probs, {"model": "fine-tuned"}, [weaker, stronger])
    assert metrics["alerts"] == [
        f"TF-IDF + logistic regression scores a higher macro F1 than this model on the same test rows: "
        f"1.0000 against {metrics['f1_macro']:.4f}"
    ]
    assert (tmp_path / "report.md").read_text().splitlines()[2].startswith("> **Warning:** TF-IDF + logistic")


def test_the_log_loss_of_float32_probabilities_does_not_warn():
    """A scikit-learn classifier on float32 features (the frozen-encoder baseline) gives float32
    probabilities whose rows sum to 1 only to 1e-7: the log loss takes them without a warning."""
    import warnings

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 64)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    probs = np.zeros((100, 2))
    probs[:] = LogisticRegression(C=16, max_iter=3000).fit(x[:300], y[:300]).predict_proba(x[300:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = compute_metrics(y[300:], probs)["loss"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert loss == pytest.approx(log_loss(y[300:], probs), rel=1e-6)
