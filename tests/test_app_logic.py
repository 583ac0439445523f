"""The app's logic without a browser: upload parsing, the shared threshold, cached file predictions, history."""

import importlib.util

import numpy as np
import pandas as pd
import pytest

from textcls.app import (
    default_column,
    file_probs,
    given_labels,
    history_entry,
    label_table,
    read_upload,
    stored_target,
    uncertain_threshold,
    upload_texts,
    why_html,
)
from textcls.backbone import load_classifier, load_tokenizer
from textcls.calibration import Calibration
from textcls.callbacks import PredictionWriter
from textcls.data import DataError
from textcls.inference import Predictor
from textcls.long_text import TextLayout
from textcls.predictions import DEFAULT_UNCERTAIN_BELOW

LABELS = ["food", "sports", "tech"]


@pytest.fixture(scope="module")
def predictor(tiny_backbone):
    model = load_classifier(tiny_backbone, LABELS).eval()
    return Predictor(model, load_tokenizer(tiny_backbone), TextLayout(16), tiny_backbone)


def test_read_upload_csv_and_jsonl():
    frame = read_upload("batch.CSV", b"id,text\n1,pizza recipe\n2,goal team\n")
    assert frame["text"].tolist() == ["pizza recipe", "goal team"]
    frame = read_upload("batch.jsonl", b'{"body": "laptop"}\n{"body": "soup"}\n')
    assert frame["body"].tolist() == ["laptop", "soup"]


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("batch.xlsx", b"x", "is not a CSV or JSONL file"),
        ("batch.csv", "text\ncafé\n".encode("latin-1"), "not valid utf-8"),
        ("batch.jsonl", b'{"text": "a"}\nnot json\n', "line 2 is not valid JSON"),
    ],
)
def test_read_upload_refuses_with_a_message(name, data, message):
    with pytest.raises(DataError, match=message):
        read_upload(name, data)


def test_text_column_and_missing_texts():
    assert default_column(["id", "text"]) == 1 and default_column(["body", "id"]) == 0
    frame = read_upload("b.jsonl", b'{"text": "a", "n": "x"}\n{"text": null, "n": "y"}\n')
    assert upload_texts(frame, "n") == ["x", "y"]
    with pytest.raises(DataError, match="column 'text' has empty values"):
        upload_texts(frame, "text")


def test_app_threshold_default_is_the_cli_default():
    assert PredictionWriter().uncertain_below == DEFAULT_UNCERTAIN_BELOW == 0.0


def test_file_predictions_are_computed_once_per_file_and_column(predictor, monkeypatch):
    data = b"text,other\npizza recipe bake,goal\nlaptop code server,soup\nmatch goal team,chip\n"
    frame = read_upload("b.csv", data)
    texts = upload_texts(frame, "text")
    expected = predictor.predict_probs(texts)
    calls = []
    real = Predictor.iter_probs

    def counting(self, texts, batch_size=32):
        calls.append(list(texts))
        return real(self, texts, batch_size)

    monkeypatch.setattr(Predictor, "iter_probs", counting)
    cache, seen = {}, []
    first = file_probs(cache, predictor, data, "text", texts, seen.append)
    assert seen == [1.0] and len(calls) == 1
    np.testing.assert_allclose(first, expected, atol=1e-6)
    # a rerun of the page (threshold moved, history used) with the same file predicts nothing
    for threshold in (0.0, 0.5, 0.9):
        again = file_probs(cache, predictor, data, "text", texts)
        assert again is first
        predictor.results(texts, again, uncertain_below=threshold)
    assert len(calls) == 1
    # another column or another file is predicted afresh
    file_probs(cache, predictor, data, "other", upload_texts(frame, "other"))
    file_probs(cache, predictor, data + b"soup,bread\n", "text", [*texts, "soup"])
    assert len(calls) == 3


def test_threshold_and_history(predictor):
    texts = ["pizza recipe bake", "goal team"]
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.8, 0.1]], dtype=np.float32)
    table = predictor.results(texts, probs, uncertain_below=0.6)
    assert table["label"].tolist() == ["UNCERTAIN", "sports"]
    assert predictor.results(texts, probs)["label"].tolist() == ["food", "sports"]
    entry = history_entry(texts[0], table.iloc[0])
    assert entry == {"text": "pizza recipe bake", "label": "UNCERTAIN", "confidence": pytest.approx(0.5)}
    assert isinstance(entry["confidence"], float)
    pd.DataFrame([entry])  # the history table shown by the app


def test_calibrated_probabilities_and_the_stored_cutoff(predictor, tiny_backbone):
    from dataclasses import replace

    from textcls.tasks.single_label import SingleLabel

    texts = ["pizza recipe bake", "goal team", "laptop code server"]
    raw = predictor.predict_probs(texts)
    validation = Calibration(2.0, np.array([0.9, 0.8, 0.6, 0.5]), np.array([True, True, False, True]), 0.99)
    scaled = replace(predictor, task=SingleLabel(predictor.label_names, calibration=validation))
    probs = scaled.predict_probs(texts)
    logits = np.log(raw)
    expected = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum(1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert (probs.argmax(1) == raw.argmax(1)).all()
    # the cached file predictions are the calibrated ones too
    np.testing.assert_allclose(file_probs({}, scaled, b"x", "text", texts), probs, atol=1e-6)

    assert stored_target(scaled) == 0.99 and stored_target(predictor) == 0.0
    assert uncertain_threshold(scaled, 0.99, 0.0)[0] == 0.8  # the 0.9 and 0.8 rows: precision 1
    threshold, why = uncertain_threshold(scaled, 0.7, 0.0)
    assert threshold == 0.5 and "cut-off 0.5000" in why
    assert uncertain_threshold(scaled, 0.99, 0.3)[0] == 0.3  # the slider overrides
    assert uncertain_threshold(predictor, 0.0, 0.0)[0] == 0.0  # no target, no slider: never
    table = scaled.results(texts, np.array([[0.85, 0.1, 0.05], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]), 0.8)
    assert table["label"].tolist() == ["food", "UNCERTAIN", "tech"]


def test_why_view_is_computed_once_per_text(predictor, monkeypatch):
    pytest.importorskip("captum", reason="captum is not installed (the explain extra)")
    import textcls.explain as explain

    calls = []
    real = explain.explain_predictor

    def counting(predictor, texts, **kwargs):
        calls.append(list(texts))
        return real(predictor, texts, n_steps=4)

    monkeypatch.setattr(explain, "explain_predictor", counting)
    cache = {}
    view = why_html(cache, predictor, "pizza <i>recipe</i> bake")
    label = LABELS[int(predictor.predict_probs(["pizza <i>recipe</i> bake"])[0].argmax())]
    assert (
        view.count('class="textcls-word"') == 10 and "<i>" not in view and f"<b>{label} (probability" in view
    )
    assert why_html(cache, predictor, "pizza <i>recipe</i> bake") is view and len(calls) == 1  # page reruns
    why_html(cache, predictor, "goal team")
    assert len(calls) == 2


def _app(model_path: str) -> None:
    from textcls.app import page

    page(model_path)


def test_app_page_runs_without_a_browser(tiny_backbone):
    testing = pytest.importorskip("streamlit.testing.v1", reason="streamlit is not installed (the app extra)")
    app = testing.AppTest.from_function(_app, args=(tiny_backbone,), default_timeout=60)
    app.run()
    assert not app.exception
    assert app.sidebar.slider[0].value == DEFAULT_UNCERTAIN_BELOW
    app.text_area[0].input("pizza recipe bake sauce").run()
    app.button[0].click().run()
    assert not app.exception
    label = app.subheader[0].value.removeprefix("Label: ")
    assert label in {"LABEL_0", "LABEL_1"}  # the tiny backbone folder has a fresh two-class head
    history = app.dataframe[0].value
    assert history["text"].tolist() == ["pizza recipe bake sauce"] and history["label"].tolist() == [label]
    if importlib.util.find_spec("captum"):  # the "why" view under the prediction
        assert app.expander[0].label == "Why this label?"
        [view] = [e for e in app.expander[0].children.values() if e.type == "html"]
        assert view.proto.body.count('class="textcls-word"') == 4
    app.sidebar.slider[0].set_value(1.0).run()  # a widget change keeps the result, now UNCERTAIN
    assert app.subheader[0].value == "Label: UNCERTAIN"


# ----------------------------------------------------------------------------- multi-label

THRESHOLDS = [0.3, 0.5, 0.7]


@pytest.fixture(scope="module")
def multi_label_folder(tiny_backbone, tmp_path_factory):
    """An exported multi-label folder (what `textcls export` writes) with its own thresholds."""
    import json

    from textcls.thresholds import Thresholds

    folder = tmp_path_factory.mktemp("ml_app") / "model"
    model = load_classifier(tiny_backbone, LABELS)
    model.config.problem_type = "multi_label_classification"
    model.save_pretrained(folder)
    load_tokenizer(tiny_backbone).save_pretrained(folder)
    state = Thresholds(THRESHOLDS, [True, True, False], [9, 8, 2]).to_dict()
    (folder / "thresholds.json").write_text(json.dumps(state))
    return folder


def test_multi_label_results_label_table_and_history(multi_label_folder):
    import torch

    from textcls.inference import load_predictor

    predictor = load_predictor(multi_label_folder)
    assert predictor.multi_label and predictor.thresholds.values == THRESHOLDS
    texts = ["pizza recipe bake", "goal team", "laptop code server"]
    probs = predictor.predict_probs(texts)
    logits = predictor.model(**predictor.encode(texts)).logits.detach()
    np.testing.assert_allclose(probs, torch.sigmoid(logits).numpy(), atol=1e-6)
    # file predictions: the same sigmoid probabilities, and the multi-label table
    np.testing.assert_allclose(file_probs({}, predictor, b"x", "text", texts), probs, atol=1e-6)
    table = predictor.results(texts, probs)
    assert list(table.columns[:2]) == ["text", "labels"]
    expected = [
        ";".join(n for n, p, t in zip(LABELS, row, THRESHOLDS, strict=True) if p >= t) for row in probs
    ]
    assert table["labels"].tolist() == expected

    view = label_table(predictor, np.array([0.35, 0.45, 0.9], dtype=np.float32))
    assert view["label"].tolist() == LABELS and view["threshold"].tolist() == THRESHOLDS
    assert view["given"].tolist() == [True, False, True]
    assert view["probability"].tolist() == pytest.approx([0.35, 0.45, 0.9])
    assert given_labels(view) == "Labels: food, tech"
    nothing = np.array([0.1, 0.2, 0.6], dtype=np.float32)  # tech is the closest, but below 0.7
    assert given_labels(label_table(predictor, nothing)).startswith("Labels: none")
    assert given_labels(label_table(predictor, nothing, at_least_one=True)) == "Labels: tech"

    row = predictor.results(["goal team"], np.array([[0.1, 0.9, 0.8]]), at_least_one=True).iloc[0]
    assert history_entry("goal team", row) == {"text": "goal team", "labels": "sports;tech"}


def test_multi_label_app_page_runs_without_a_browser(multi_label_folder):
    testing = pytest.importorskip("streamlit.testing.v1", reason="streamlit is not installed (the app extra)")
    app = testing.AppTest.from_function(_app, args=(str(multi_label_folder),), default_timeout=60)
    app.run()
    assert not app.exception
    assert not app.sidebar.slider  # no single-label "uncertain" cut-off for a multi-label model
    app.text_area[0].input("pizza recipe bake sauce").run()
    app.button[0].click().run()
    assert not app.exception
    assert app.subheader[0].value.startswith("Labels: ")
    table = app.dataframe[0].value
    assert table["label"].tolist() == LABELS and table["threshold"].tolist() == THRESHOLDS
    given = table.loc[table["given"], "label"].tolist()
    history = app.dataframe[1].value
    assert history["labels"].tolist() == [";".join(given)]
    assert not app.expander  # no "why" view for multi-label models; a caption says so
    assert any("single-label models" in c.value for c in app.caption)
    app.sidebar.checkbox[0].check().run()  # at least one label: never an empty set
    assert not app.exception and not app.subheader[0].value.startswith("Labels: none")


# ----------------------------------------------------------------------------- long texts


def test_app_page_shows_how_a_chunked_model_reads_long_texts(tiny_backbone, tmp_path):
    testing = pytest.importorskip("streamlit.testing.v1", reason="streamlit is not installed (the app extra)")
    from textcls.export import write_folder

    model = load_classifier(tiny_backbone, LABELS).eval()
    layout = TextLayout(16, long_text="chunks", chunk_stride=4)
    hparams = {
        "model": {"chunk_pooling": "max"},
        "data": {"max_length": 16, "long_text": "chunks", "chunk_stride": 4},
    }
    write_folder(
        Predictor(model, load_tokenizer(tiny_backbone), layout, tiny_backbone, hparams), tmp_path / "m"
    )
    app = testing.AppTest.from_function(_app, args=(str(tmp_path / "m"),), default_timeout=60)
    app.run()
    assert not app.exception
    shown = " ".join(m.value for m in app.markdown)
    assert "Long texts:" in shown and "windows of 16 tokens that share 4 tokens" in shown and "(max)" in shown
    app.text_area[0].input(" ".join(["pizza recipe bake sauce"] * 10)).run()  # 40 tokens: several windows
    app.button[0].click().run()
    assert not app.exception and app.subheader[0].value.startswith("Label: ")
