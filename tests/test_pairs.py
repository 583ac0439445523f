"""Two texts per example (`data.text_pair_column`): encoding, fit/predict, the predictor and bad input."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import make_pair_rows, write_jsonl
from tests.test_cli import run, write_config
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
    config = write_config(tmp_path, tiny_backbone, pair_files, max_epochs=6)
    settings = yaml.safe_load(config.read_text())
    settings["data"] |= {"text_pair_column": "text_pair", "max_length": 24}
    settings["trainer"]["precision"] = "32-true"
    config.write_text(yaml.safe_dump(settings))
    run("fit", "--config", str(config), cwd=tmp_path)
    run("test", "--config", str(config), "--ckpt_path", "best", cwd=tmp_path)
    out = tmp_path / "pred.csv"
    run(
        "predict", "--config", str(config), "--ckpt_path", "best",
        "--prediction.output_path", str(out), cwd=tmp_path,
    )  # fmt: skip
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
