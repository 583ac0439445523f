"""The multi-label test report: its pieces on hand-made decisions, and fit + test through the CLI."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.metrics import f1_score

from tests.test_cli import run, write_config
from textcls.metrics import compute_multilabel_scores
from textcls.report.multi_label import confused_pairs, label_cardinality, mistakes_table, per_label_table
from textcls.thresholds import Thresholds

NAMES = ["a", "b", "c", "d"]
Y_TRUE = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0]])
Y_PRED = np.array([[1, 0, 1, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0]])


def test_confused_pairs_and_mistakes_on_hand_made_decisions():
    # text 0 misses b, gets c; text 1 misses a, gets b and c; text 3 only gets d; text 4 misses a and c, gets b
    assert confused_pairs(Y_TRUE, Y_PRED, NAMES) == [
        {"missed": "a", "predicted_instead": "b", "texts": 2},
        {"missed": "a", "predicted_instead": "c", "texts": 1},
        {"missed": "b", "predicted_instead": "c", "texts": 1},
        {"missed": "c", "predicted_instead": "b", "texts": 1},
    ]
    assert confused_pairs(Y_TRUE, Y_PRED, NAMES, top=1)[0]["texts"] == 2
    test = pd.DataFrame({"row": [10, 11, 12, 13, 14], "text": ["t0", "t1", "t2", "t3", "t4"]})
    mistakes = mistakes_table(test, Y_TRUE, Y_PRED, NAMES, separator="|")
    assert mistakes["row"].tolist() == [11, 14, 10, 13]  # text 2 is exactly right; most wrong first
    assert mistakes["true_labels"].tolist() == ["a", "a|c", "a|b", ""]
    assert mistakes["predicted_labels"].tolist() == ["b|c", "b", "a|c", "d"]
    assert mistakes["missing_labels"].tolist() == ["a", "a|c", "b", ""]
    assert mistakes["extra_labels"].tolist() == ["b|c", "b", "c", "d"]
    assert mistakes["wrong_decisions"].tolist() == [3, 3, 2, 1]
    assert label_cardinality(Y_TRUE, Y_PRED) == pytest.approx({"true": 1.2, "predicted": 1.4})


def test_per_label_table():
    thresholds = Thresholds([0.3, 0.5, 0.7, 0.5], [True, False, True, False], [9, 2, 8, 0])
    table = per_label_table(Y_TRUE, Y_PRED, NAMES, thresholds).set_index("label")
    assert table["support"].tolist() == [3, 1, 2, 0] and table["predicted"].tolist() == [1, 2, 3, 1]
    assert table.loc["a", "precision"] == 1 and table.loc["a", "recall"] == pytest.approx(1 / 3)
    assert table.loc["d", "f1"] == 0 and table["threshold"].tolist() == [0.3, 0.5, 0.7, 0.5]
    assert table["tuned"].tolist() == [True, False, True, False]


def _label_matrix(column: pd.Series, names: list[str]) -> np.ndarray:
    sets = column.fillna("").map(lambda s: set(filter(None, s.split(";"))))
    return np.array([[name in s for name in names] for s in sets], dtype=int)


def test_fit_and_test_write_the_multi_label_report(tmp_path, tiny_backbone, multi_label_files):
    config = write_config(tmp_path, tiny_backbone, multi_label_files, max_epochs=3)
    settings = yaml.safe_load(config.read_text())
    settings["data"] |= {"multi_label": True, "label_column": "labels"}
    config.write_text(yaml.safe_dump(settings))
    run("fit", "--config", str(config), cwd=tmp_path)
    run("test", "--config", str(config), "--ckpt_path", "best", cwd=tmp_path)
    fit_dir, test_dir = (tmp_path / "logs" / "tiny" / f"version_{i}" for i in (0, 1))
    assert json.loads((fit_dir / "data_check.json").read_text())["multi_label"] is True

    names = ["food", "sports", "tech"]
    metrics = json.loads((test_dir / "metrics.json").read_text())
    stored = torch.load(fit_dir / "checkpoints" / "best.ckpt", weights_only=True)["thresholds"]
    assert list(metrics["thresholds"].values()) == pytest.approx(stored["values"])
    assert metrics["rows"] == 40 and metrics["checkpoint"]["sha256"]

    preds = pd.read_csv(test_dir / "predictions.csv")
    y_true, y_pred = (
        _label_matrix(preds["true_labels"], names),
        _label_matrix(preds["predicted_labels"], names),
    )
    probs = preds[[f"prob_{n}" for n in names]].to_numpy()
    values = np.array(stored["values"])
    clear = np.abs(probs - values) > 1e-6  # the CSV holds probabilities to float32 precision
    assert (y_pred == (probs >= values))[clear].all()  # the model's own thresholds decided
    assert y_true.sum() == 48  # every fifth of the 40 test texts carries two labels
    recomputed = compute_multilabel_scores(y_true, y_pred)
    assert {k: metrics[k] for k in recomputed} == pytest.approx(recomputed)
    at_half = compute_multilabel_scores(y_true, (probs >= 0.5).astype(int))
    assert metrics["at_threshold_0.5"] == pytest.approx(at_half)
    assert metrics["label_cardinality"]["predicted"] == pytest.approx(y_pred.sum(1).mean())

    # the same decisions as the logged test/* metrics (torchmetrics)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(test_dir)).Reload()
    for key in ("f1_macro", "f1_micro", "subset_acc", "hamming_loss"):
        assert events.Scalars(f"test/{key}")[-1].value == pytest.approx(metrics[key], abs=1e-6), key
    assert "test/label_f1" in events.Tags()["images"]

    per_label = pd.read_csv(test_dir / "per_label.csv")
    assert per_label["label"].tolist() == names and per_label["support"].tolist() == y_true.sum(0).tolist()
    assert per_label["f1"].to_numpy() == pytest.approx(
        f1_score(y_true, y_pred, average=None, zero_division=0)
    )
    assert per_label["threshold"].to_numpy() == pytest.approx(stored["values"])

    mistakes = pd.read_csv(test_dir / "misclassified.csv").fillna("")
    assert len(mistakes) == (y_true != y_pred).any(1).sum()
    for row in mistakes.itertuples():
        true, pred = (
            set(filter(None, row.true_labels.split(";"))),
            set(filter(None, row.predicted_labels.split(";"))),
        )
        assert set(filter(None, row.missing_labels.split(";"))) == true - pred
        assert set(filter(None, row.extra_labels.split(";"))) == pred - true
    report = (test_dir / "report.md").read_text()
    assert "## Per label" in report and "## Most confused label pairs" in report and "threshold 0.5" in report
    assert (test_dir / "label_f1.png").read_bytes()[:4] == b"\x89PNG"
    assert not (test_dir / "confusion_matrix.png").exists()


def test_report_leads_with_over_prediction_and_a_better_baseline(tmp_path):
    from textcls.report import compose_report
    from textcls.tasks import MultiLabel

    test = pd.DataFrame(
        {
            "row": range(5),
            "text": [f"t{i}" for i in range(5)],
            "label": [["a", "b"], ["a"], ["c"], [], ["a", "c"]],
        }
    )
    probs = np.full((5, 4), 0.4)  # every label passes thresholds of 0.3: 4 labels per text, 1.2 true
    thresholds = Thresholds([0.3] * 4, [True] * 4, [9] * 4)
    baseline = {"model": "TF-IDF + one-vs-rest logistic regression", "f1_macro": 0.9, "f1_micro": 0.9}
    info = {"model": "fine-tuned"}
    task = MultiLabel(NAMES, thresholds=thresholds, label_separator=";")
    metrics, _ = compose_report(tmp_path, task, test, probs, info, [baseline])
    assert len(metrics["alerts"]) == 2
    first_lines = (tmp_path / "report.md").read_text().splitlines()[:5]
    assert first_lines[2].startswith(
        "> **Warning:** TF-IDF + one-vs-rest logistic regression scores a higher"
    )
    assert "0.9000 against" in first_lines[2]
    assert "4.00 labels per text where the texts carry 1.20 (3.3x)" in first_lines[3]
    assert json.loads((tmp_path / "metrics.json").read_text())["alerts"] == metrics["alerts"]
    # a model that predicts about as many labels as there are, and beats the baseline: nothing to flag
    probs = np.where(_label_matrix(pd.Series(["a;b", "a", "c", "", "a;c"]), NAMES) > 0, 0.9, 0.1)
    weaker = {**baseline, "f1_macro": 0.5}
    metrics, _ = compose_report(tmp_path, task, test, probs, info, [weaker])
    assert metrics["alerts"] == [] and "Warning" not in (tmp_path / "report.md").read_text()
