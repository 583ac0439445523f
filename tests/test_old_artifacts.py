"""Checkpoints and exported folders written by an older textcls still load, predict, test and export,
with the outputs that code recorded (tests/fixtures/old_main, made at commit 777ba9d by its make.py).

Each test works in a copy of the fixture folder: the checkpoints name their backbone `backbone`, a
path relative to it.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.test_cli import run
from textcls.inference import load_predictor

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "old_main"
KINDS = ("single", "multi")
PREDICT_FILE = {"single": "predict.csv", "multi": "ml_predict.csv"}
# what `test` needs besides --ckpt_path (the checkpoint carries the rest), as in make.py
TEST_ARGS = {
    "single": ["--data.test_file", "test.jsonl"],
    "multi": ["--data.test_file", "ml_test.csv", "--data.label_column", "labels"],
}
RUN_SPECIFIC = {"checkpoint"}  # where the measured checkpoint lay (and its hash): not a measurement
LABELS = ["food", "sports", "tech"]


@pytest.fixture
def old(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "old_main"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("make.py", "__pycache__"))
    monkeypatch.chdir(folder)
    return folder


def read_predictions(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False)  # an empty `labels` cell is no label, not NaN


def prob_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith("prob_") or c == "confidence"]


def assert_same_predictions(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The same columns, texts and labels, and the same probabilities to 1e-5."""
    assert list(actual.columns) == list(expected.columns)
    probs = prob_columns(expected)
    np.testing.assert_allclose(
        actual[probs].to_numpy(float), expected[probs].to_numpy(float), rtol=0, atol=1e-5
    )
    pd.testing.assert_frame_equal(actual.drop(columns=probs), expected.drop(columns=probs))


def numbers(value, path: str = "") -> dict:
    """The numbers (and nulls) of a metrics.json, by their path; text and run-specific keys left out."""
    if isinstance(value, dict):
        items = [(key, item) for key, item in value.items() if key not in RUN_SPECIFIC]
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return {path: value} if value is None or isinstance(value, int | float) else {}
    return {k: v for key, item in items for k, v in numbers(item, f"{path}/{key}").items()}


def expected_metrics(kind: str) -> dict:
    return json.loads((FIXTURE / "expected" / f"{kind}_test_metrics.json").read_text())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("source", ["{}.ckpt", "{}_export"], ids=["checkpoint", "exported"])
def test_predict_gives_the_recorded_predictions(old, kind, source):
    source = source.format(kind)
    out = ["--data.predict_file", PREDICT_FILE[kind], "--prediction.output_path", "out.csv"]
    run("predict", "--ckpt_path", source, *out, "--data.cache_dir", "cache", cwd=old)
    expected = read_predictions(old / "expected" / f"{Path(source).stem}_predict.csv")
    assert_same_predictions(read_predictions(old / "out.csv"), expected)


@pytest.mark.parametrize("kind", KINDS)
def test_test_gives_the_recorded_metrics(old, kind):
    args = ["--ckpt_path", f"{kind}.ckpt", *TEST_ARGS[kind], "--data.cache_dir", "cache"]
    run("test", *args, "--report.explain_mistakes", "0", cwd=old)  # explanations: slow, not in metrics.json
    (written,) = old.glob("lightning_logs/*/version_*/metrics.json")
    expected = numbers(expected_metrics(kind))
    assert {"/f1_macro", "/thresholds/food" if kind == "multi" else "/temperature"} <= expected.keys()
    actual = numbers(json.loads(written.read_text()))
    assert {path: actual.get(path, "missing") for path in expected} == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_export_of_an_old_checkpoint_predicts_as_the_recorded_export(old, kind):
    from transformers import pipeline

    run("export", "--ckpt_path", f"{kind}.ckpt", "--output_dir", "exported", cwd=old)
    expected = read_predictions(old / "expected" / f"{kind}_export_predict.csv")
    texts, probs = expected["text"].tolist(), expected[[f"prob_{name}" for name in LABELS]].to_numpy(float)
    predictor = load_predictor(old / "exported")
    np.testing.assert_allclose(predictor.predict_probs(texts), probs, rtol=0, atol=1e-5)

    answers = pipeline("text-classification", model=str(old / "exported"), device="cpu")(texts, top_k=None)
    scores = np.array(
        [[next(s["score"] for s in a if s["label"] == name) for name in LABELS] for a in answers]
    )
    # pipeline's softmax has no temperature: softmax(z) is softmax(z / T) ** T, normalized
    if kind == "single":
        probs = probs ** expected_metrics(kind)["temperature"]
        probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(scores, probs, rtol=0, atol=1e-5)


@pytest.mark.parametrize("source", ["multi.ckpt", "multi_export"])
def test_old_multi_label_models_keep_their_thresholds(old, source):
    tuned = expected_metrics("multi")["thresholds"]
    assert load_predictor(source).thresholds.values == [tuned[name] for name in LABELS]


@pytest.mark.parametrize("source", ["single.ckpt", "single_export"])
def test_old_single_label_models_keep_their_temperature(old, source):
    temperature = expected_metrics("single")["temperature"]
    assert temperature != 1.0  # fitted, not the default
    assert load_predictor(source).calibration.temperature == temperature
