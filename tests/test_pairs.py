"""Two texts per example (`data.text_pair_column`): encoding, fit/predict, the predictor and bad input."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import fit_test_predict, make_pair_rows, write_jsonl, write_pair_config, write_pair_files
from tests.test_cli import run
from textcls.data import DataError, TextClassificationData
from textcls.inference import load_predictor


def _data(backbone: str, files: dict, tmp_path, **kw) -> TextClassificationData:
    settings = {
        "train_file": str(files["train"]),
        "test_file": str(files["test"]),
        "text_pair_column": "text_pair",
        "model_name_or_path": backbone,
        "max_length": 16,
        "batch_size": 8,
        "cache_dir": str(tmp_path / "cache"),
    }
    return TextClassificationData(**(settings | kw))


def test_a_pair_is_encoded_as_the_tokenizer_encodes_it(tiny_backbone, pair_files, tmp_path):
    """Token ids, segment ids and the longest_first cut all equal `tokenizer(text, text_pair, ...)`."""
    data = _data(tiny_backbone, pair_files, tmp_path)
    data.setup("test")
    frame = data.frames["test"]
    loader = data.test_dataloader()
    seen = 0
    for batch in loader:
        for row, i in enumerate(batch["idx"].tolist()):
            expected = data.tokenizer(
                frame["text"][i], frame["text_pair"][i], truncation="longest_first", max_length=16
            )
            n = int(batch["attention_mask"][row].sum())
            assert batch["input_ids"][row, :n].tolist() == expected["input_ids"]
            assert batch["token_type_ids"][row, :n].tolist() == expected["token_type_ids"]
            assert not batch["token_type_ids"][row, n:].any()  # padding is segment 0
            seen += 1
    assert seen == len(frame)
    lengths = data.encoded["test"].text_lengths
    assert (lengths > 16).any()  # some pairs were cut: the test covers truncation
    assert lengths[0] == len(data.tokenizer(frame["text"][0], frame["text_pair"][0])["input_ids"])


def test_fit_predict_and_the_predictor_read_pairs(tiny_backbone, pair_files, tmp_path):
    config = write_pair_config(tmp_path, tiny_backbone, pair_files, max_epochs=6)
    out = fit_test_predict(tmp_path, config)["pred"]
    predictions = pd.read_csv(out)
    given = pd.read_csv(pair_files["predict"])
    assert predictions.columns[:3].tolist() == ["text", "text_pair", "label"]
    assert predictions["text_pair"].tolist() == given["text_pair"].tolist()
    metrics = json.loads(next((tmp_path / "logs").glob("tiny/version_*/metrics.json")).read_text())
    assert metrics["rows"] == 40  # every test pair was read and scored

    ckpt = next((tmp_path / "logs").glob("tiny/version_0/checkpoints/best.ckpt"))
    predictor = load_predictor(ckpt)
    pairs = list(zip(given["text"], given["text_pair"], strict=True))
    probs = predictor.predict_probs(pairs)
    columns = [c for c in predictions.columns if c.startswith("prob_")]
    np.testing.assert_allclose(probs, predictions[columns].to_numpy(), atol=1e-5)
    as_dicts = predictor.predict_probs([{"text": a, "text_pair": b} for a, b in pairs])
    np.testing.assert_allclose(as_dicts, probs, atol=1e-6)
    table = predictor.results(pairs, probs)
    assert table["text_pair"].tolist() == given["text_pair"].tolist()
    with pytest.raises(ValueError, match="reads pairs of texts"):
        predictor.predict_probs(["only one text"])


def test_segment_ids_change_the_answer(tiny_backbone, pair_files, tmp_path):
    """The model is given the segment ids: swapping them for zeros changes its logits."""
    from textcls.model import TextClassifier

    data = _data(tiny_backbone, pair_files, tmp_path)
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    model = TextClassifier(tiny_backbone, ["different", "same"]).eval()
    with torch.no_grad():
        with_segments = model.text_logits(batch)
        without = model(batch["input_ids"], batch["attention_mask"])
    assert not torch.allclose(with_segments, without)


def test_pair_input_problems_are_one_line(tiny_backbone, pair_files, tmp_path):
    with pytest.raises(DataError, match="no column 'second'"):
        _data(tiny_backbone, pair_files, tmp_path, text_pair_column="second").setup("test")
    with pytest.raises(DataError, match="long_text chunks .* do not apply"):
        _data(tiny_backbone, pair_files, tmp_path, long_text="chunks")
    rows = make_pair_rows(20, seed=5)
    rows[3]["text_pair"] = "  "
    files = {
        "train": write_jsonl(tmp_path / "t.jsonl", rows),
        "test": write_jsonl(tmp_path / "u.jsonl", rows),
    }
    with pytest.raises(DataError, match="1 empty texts or second texts"):
        _data(tiny_backbone, files, tmp_path, empty_texts="error").setup("test")
    with pytest.warns(UserWarning, match="dropped 1 empty or whitespace-only texts or second texts"):
        data = _data(tiny_backbone, files, tmp_path)
        data.setup("test")
    assert len(data.frames["test"]) == 19


# ----------------------------------------------------------------------------- every other path


@pytest.fixture(scope="module")
def pair_model(tmp_path_factory, tiny_backbone):
    """A tiny pair classifier fitted with the real CLI, its predictions and its exported folder."""
    tmp_path = tmp_path_factory.mktemp("pairs")
    files = write_pair_files(tmp_path, train=120, test=30, predict=12)
    config = write_pair_config(tmp_path, tiny_backbone, files, max_epochs=2)
    made = fit_test_predict(tmp_path, config, test=False)
    folder = tmp_path / "exported"
    run("export", "--ckpt_path", str(made["ckpt"]), "--output_dir", str(folder), cwd=tmp_path)
    return {"tmp": tmp_path, "files": files, "config": config, "folder": folder, **made}


def test_pipeline_reads_a_pair_as_textcls_predict_does(pair_model):
    from transformers import pipeline

    predictions = pd.read_csv(pair_model["pred"])
    classify = pipeline("text-classification", model=str(pair_model["folder"]))
    pairs = [
        {"text": a, "text_pair": b}
        for a, b in zip(predictions["text"], predictions["text_pair"], strict=True)
    ]
    outputs = classify(pairs, top_k=None, truncation=True, function_to_apply="none")
    temperature = json.loads((pair_model["folder"] / "calibration.json").read_text())["temperature"]
    for out, (_, row) in zip(outputs, predictions.iterrows(), strict=True):
        logits = torch.tensor(
            [next(o["score"] for o in out if o["label"] == n) for n in ("different", "same")]
        )
        probs = (logits / temperature).softmax(-1).numpy()
        np.testing.assert_allclose(probs, row[["prob_different", "prob_same"]].to_numpy(float), atol=1e-5)
    card = (pair_model["folder"] / "README.md").read_text()
    assert '{"text": "a sentence", "text_pair": "another sentence"}' in card


@pytest.mark.slow
def test_onnx_takes_the_segment_ids_and_agrees(pair_model, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from textcls.export import ONNX_FILE, export, onnx_probs, onnx_session

    rows = make_pair_rows(40, seed=9)
    pairs = [(r["text"], r["text_pair"]) for r in rows]
    folder = export(str(pair_model["ckpt"]), str(tmp_path / "onnx"), onnx=True, check_texts=pairs[:10])
    session = onnx_session(folder / ONNX_FILE)
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
    predictor = load_predictor(folder)
    np.testing.assert_allclose(
        onnx_probs(session, predictor, pairs), predictor.predict_probs(pairs), atol=1e-4
    )


def test_explanations_cover_both_texts_and_show_the_separator(pair_model):
    pytest.importorskip("captum")
    from textcls.explain import explain_predictor

    predictor = load_predictor(pair_model["ckpt"])
    pair = ("pizza recipe bake", "goal team match")
    [e] = explain_predictor(predictor, [pair], n_steps=16)
    assert e.text == "pizza recipe bake [SEP] goal team match"
    assert [w.word for w in e.words] == ["pizza", "recipe", "bake", "goal", "team", "match"]
    assert all(e.text[w.start : w.end] == w.word for w in e.words)
    assert e.probability == pytest.approx(float(predictor.predict_probs([pair]).max()), abs=1e-5)


def test_the_data_check_sees_pairs(pair_model, tiny_backbone, tmp_path):
    from textcls.checks import check_data, render

    rows = make_pair_rows(40, seed=6)
    rows[5] = rows[4] | {
        "text": rows[4]["text_pair"],
        "text_pair": rows[4]["text"],
    }  # the same pair, reversed
    test = make_pair_rows(10, seed=7) + [rows[0]]
    files = {
        "train": write_jsonl(tmp_path / "a.jsonl", rows),
        "test": write_jsonl(tmp_path / "b.jsonl", test),
    }
    report = check_data(_data(tiny_backbone, files, tmp_path, val_fraction=0.0))
    codes = {p["code"]: p["message"] for p in report["problems"]}
    assert "repeated copies of 1 pairs" in codes["duplicate_texts"]
    assert codes["leakage"].startswith("1 pairs occur in both train and test")
    sides = report["splits"]["train"]["token_lengths"]["sides"]
    assert set(sides) == {"text", "text_pair"} and sides["text"]["max"] <= 7
    assert "text_pair  median" in render(report)


def test_baselines_on_pairs_use_both_texts(pair_model, tiny_backbone, tmp_path, capsys):
    from textcls.baseline import Baselines, run_baselines

    files = pair_model["files"]
    data = _data(tiny_backbone, files, tmp_path, max_length=24)
    results = run_baselines(
        data, tmp_path / "b", Baselines(methods=["tfidf_logreg", "frozen_encoder", "zero_shot"])
    )
    assert set(results) == {"tfidf_logreg", "frozen_encoder"}
    assert "zero_shot: skipped, it compares one text with label descriptions" in capsys.readouterr().out
    info = (tmp_path / "b/tfidf_logreg/report.md").read_text()
    assert "product and absolute difference" in info
    assert results["frozen_encoder"]["rows"] == 30


def test_pair_features_are_each_side_with_their_product_and_difference():
    from textcls.baseline.pairs import combine, pair_tfidf_features

    texts = {"train": ["a goal", "the pizza"], "validation": ["a goal"], "test": ["pizza"]}
    pairs = {"train": ["a pizza", "the goal"], "validation": ["goal"], "test": ["the pizza"]}
    x, what, _ = pair_tfidf_features(texts, pairs)
    n = x["train"].shape[1] // 4
    u, v = x["test"][:, :n].toarray(), x["test"][:, n : 2 * n].toarray()
    np.testing.assert_allclose(x["test"][:, 2 * n : 3 * n].toarray(), u * v)
    np.testing.assert_allclose(x["test"][:, 3 * n :].toarray(), np.abs(u - v))
    assert (u * v).sum() > 0  # "pizza" is in both texts of the test pair
    dense = combine(np.ones((1, 2)), np.zeros((1, 2)))
    assert dense.tolist() == [[1, 1, 0, 0, 0, 0, 1, 1]]


def test_a_backbone_without_segment_ids_gets_none(tiny_backbone, pair_files, tmp_path):
    """RoBERTa-like tokenizers give no segment ids (DistilBERT's forward refuses them): pairs are then
    read from the separator tokens alone, in training and in the predictor alike."""
    data = _data(tiny_backbone, pair_files, tmp_path)
    data.tokenizer.model_input_names = ["input_ids", "attention_mask"]
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    assert "token_type_ids" not in batch and batch["input_ids"].shape[0] > 0
