"""fit, baseline and test through the real CLI: every report file is produced, parses and agrees."""

import json

import pandas as pd

from tests.test_cli import run, write_config


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
    assert "test/confusion_matrix" in events.Tags()["images"]
