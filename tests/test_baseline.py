"""Baselines without fine-tuning: sentence embeddings, zero-shot, frozen encoder, zero-shot NLI."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TOPICS
from tests.test_cli import run, write_config
from textcls.baseline import Baselines, run_baselines
from textcls.baseline.embeddings import SentenceEncoder
from textcls.data import DataError, TextClassificationData


def make_data(tiny_backbone, tmp_path, data_files) -> TextClassificationData:
    return TextClassificationData(
        train_file=str(data_files["train"]),
        test_file=str(data_files["test"]),
        model_name_or_path=tiny_backbone,
        cache_dir=str(tmp_path / "cache"),
    )


def test_sentence_embeddings_are_unit_length_and_independent_of_the_batch(tiny_backbone):
    encoder = SentenceEncoder(tiny_backbone, batch_size=3)
    texts = ["pizza", "match goal team coach score league", "laptop app", "soup bread kitchen chef taste"]
    together = encoder.encode(texts)
    alone = np.concatenate([encoder.encode([t]) for t in texts])
    assert together.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1, atol=1e-5)
    # padding in a batch of longer texts must not change a text's embedding, nor its row
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_zero_shot_and_frozen_encoder_write_reports(tiny_backbone, tmp_path, data_files):
    data = make_data(tiny_backbone, tmp_path, data_files)
    # descriptions made of each topic's words: even a random encoder's embeddings share them
    options = Baselines(methods=["zero_shot", "frozen_encoder"], label_descriptions=TOPICS)
    results = run_baselines(data, tmp_path / "baselines", options)
    assert set(results) == {"zero_shot", "frozen_encoder"}
    for key in results:
        metrics = json.loads((tmp_path / "baselines" / key / "metrics.json").read_text())
        assert metrics["rows"] == 30 and 0 <= metrics["accuracy"] <= 1
        predictions = pd.read_csv(tmp_path / "baselines" / key / "predictions.csv")
        # the top probability of three that sum to 1
        assert predictions["confidence"].between(1 / 3 - 1e-6, 1 + 1e-6).all() and len(predictions) == 30
    report = (tmp_path / "baselines" / "zero_shot" / "report.md").read_text()
    assert "No labelled data used" in report
    assert results["zero_shot"]["accuracy"] > 0.5  # chance is 1/3
    # trained on the training rows' embeddings, the frozen encoder separates these topics
    assert results["frozen_encoder"]["accuracy"] > 0.8


def test_label_descriptions_default_to_the_names_and_refuse_unknown_labels():
    options = Baselines(label_descriptions={"tech": "computers and phones"})
    assert options.descriptions(["product_quality", "tech"]) == ["product quality", "computers and phones"]
    with pytest.raises(DataError, match="names labels the data does not have: sport"):
        Baselines(label_descriptions={"sport": "games"}).descriptions(["food", "tech"])
    with pytest.raises(DataError, match="unknown baseline.methods bert"):
        Baselines(methods=["bert"])


def test_zero_shot_nli_runs_with_a_named_nli_model(tiny_backbone, tmp_path, data_files):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    nli = tmp_path / "tiny-nli"
    labels = {0: "entailment", 1: "neutral", 2: "contradiction"}
    config = BertConfig.from_pretrained(tiny_backbone, num_labels=3, id2label=labels)
    config.label2id = {v: k for k, v in labels.items()}
    BertForSequenceClassification(config).save_pretrained(nli)
    AutoTokenizer.from_pretrained(tiny_backbone).save_pretrained(nli)
    data = make_data(tiny_backbone, tmp_path, data_files)
    results = run_baselines(data, tmp_path / "b", Baselines(methods=["zero_shot_nli"], nli_model=str(nli)))
    metrics = results["zero_shot_nli"]
    assert metrics["rows"] == 30 and metrics["model"] == "zero-shot NLI tiny-nli"
    # without a model it is skipped, not failed
    assert run_baselines(data, tmp_path / "c", Baselines(methods=["zero_shot_nli"])) == {}


def test_baseline_command_options_and_unknown_label_error(tiny_backbone, tmp_path, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files)
    run("baseline", "--config", str(config), "--baseline.methods", "[tfidf_nb, zero_shot]", cwd=tmp_path)
    baselines = tmp_path / "logs" / "tiny" / "baselines"
    assert sorted(p.name for p in baselines.iterdir() if p.is_dir()) == ["tfidf_nb", "zero_shot"]
    proc = run(
        "baseline",
        "--config",
        str(config),
        "--baseline.label_descriptions",
        '{"sport": "games"}',
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "names labels the data does not have: sport" in proc.stderr.strip().splitlines()[-1]


def test_multi_label_baselines_tune_thresholds_on_validation(
    tiny_backbone, tmp_path, multi_label_files, capsys
):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from textcls.baseline import vectorizer
    from textcls.data.multilabel import multi_hot
    from textcls.metrics import compute_multilabel_scores
    from textcls.thresholds import Thresholds, decide, tune_thresholds

    data = TextClassificationData(
        train_file=str(multi_label_files["train"]),
        test_file=str(multi_label_files["test"]),
        model_name_or_path=tiny_backbone,
        cache_dir=str(tmp_path / "cache"),
        multi_label=True,
        label_column="labels",
    )
    methods = ["tfidf_logreg", "frozen_encoder", "zero_shot"]
    results = run_baselines(data, tmp_path / "baselines", Baselines(methods=methods))
    assert set(results) == {"tfidf_logreg", "frozen_encoder"}  # zero-shot picks one label: skipped
    assert "zero_shot: skipped" in capsys.readouterr().out
    labels, frames = data.label_names, data.frames
    y = {s: multi_hot(frames[s]["label"].tolist(), labels) for s in frames}
    for key, metrics in results.items():
        folder = tmp_path / "baselines" / key
        assert json.loads((folder / "metrics.json").read_text()) == metrics
        predictions = pd.read_csv(folder / "predictions.csv", keep_default_na=False)
        assert predictions["row"].tolist() == frames["test"]["row"].tolist()
        probs = predictions[[f"prob_{n}" for n in labels]].to_numpy()
        thresholds = Thresholds([metrics["thresholds"][n] for n in labels])
        # the scores are those of these probabilities at the tuned thresholds, and at 0.5
        tuned = compute_multilabel_scores(y["test"], decide(probs, thresholds).numpy())
        fixed = compute_multilabel_scores(y["test"], probs >= 0.5)
        assert metrics["f1_macro"] == pytest.approx(tuned["f1_macro"])
        assert metrics["f1_micro"] == pytest.approx(tuned["f1_micro"])
        assert metrics["at_threshold_0.5"]["f1_macro"] == pytest.approx(fixed["f1_macro"])
        assert metrics["rows"] == len(frames["test"]) == 40
    # the TF-IDF baseline again, by hand: the same rows, C and thresholds tuned on validation
    metrics = results["tfidf_logreg"]
    tfidf = vectorizer()
    x_train = tfidf.fit_transform(frames["train"]["text"])
    report = (tmp_path / "baselines" / "tfidf_logreg" / "report.md").read_text()
    c = float(report.split("- C: ")[1].split()[0])
    clf = OneVsRestClassifier(LogisticRegression(C=c, max_iter=3000, random_state=data.hparams.seed))
    clf.fit(x_train, y["train"])
    expected = tune_thresholds(
        clf.predict_proba(tfidf.transform(frames["validation"]["text"])), y["validation"], 0.5
    )
    assert list(metrics["thresholds"].values()) == pytest.approx(expected.values)
    test_probs = clf.predict_proba(tfidf.transform(frames["test"]["text"]))
    predictions = pd.read_csv(tmp_path / "baselines" / "tfidf_logreg" / "predictions.csv")
    np.testing.assert_allclose(predictions[[f"prob_{n}" for n in labels]].to_numpy(), test_probs, atol=1e-6)
    # topic words give the labels away: one-vs-rest TF-IDF finds them
    assert metrics["f1_macro"] > 0.7
