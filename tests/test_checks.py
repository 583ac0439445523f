"""The data check flags each problem on small crafted inputs."""

import json

import pytest

from tests.conftest import make_rows, write_jsonl
from tests.test_cli import run, write_config
from textcls.checks import check_data, render
from textcls.data import DataError, TextClassificationData


def _data(tmp_path, backbone, train, test, **kw) -> TextClassificationData:
    files = {
        "train": write_jsonl(tmp_path / "tr.jsonl", train),
        "test": write_jsonl(tmp_path / "te.jsonl", test),
    }
    return TextClassificationData(
        train_file=str(files["train"]), test_file=str(files["test"]), model_name_or_path=backbone, **kw
    )


def _codes(report) -> dict:
    return {p["code"]: p for p in report["problems"]}


def test_clean_data_counts_and_lengths(tmp_path, tiny_backbone):
    report = check_data(_data(tmp_path, tiny_backbone, make_rows(20, 1), make_rows(5, 2)))
    assert report["splits"]["test"]["class_counts"] == {"food": 5, "sports": 5, "tech": 5}
    assert sum(report["splits"]["train"]["class_counts"].values()) == report["splits"]["train"]["rows"] == 54
    assert report["splits"]["train"]["token_lengths"]["max"] <= 13  # CLS + 3 topic words + <=8 filler + SEP
    assert not [p for p in report["problems"] if p["level"] == "error"]


def test_each_problem_is_flagged(tmp_path, tiny_backbone):
    train = (
        make_rows(20, 1) + [{"text": "   ", "label": "food"}, {"text": "pizza pizza", "label": "food"}] * 2
    )
    train += [{"text": "chef soup", "label": "Food"}, {"text": "rare one", "label": "rare"}]
    test = make_rows(3, 2) + [{"text": train[0]["text"], "label": train[0]["label"]}]
    test += [{"text": "unknown label", "label": "music"}]
    report = check_data(_data(tmp_path, tiny_backbone, train, test, max_length=4), min_class_examples=3)
    codes = _codes(report)
    assert (
        codes["labels_not_in_train"]["level"] == "error"
        and "music" in codes["labels_not_in_train"]["message"]
    )
    assert codes["label_variants"]["level"] == "error" and codes["label_variants"]["examples"] == [
        ["Food", "food"]
    ]
    assert "rare (1)" in codes["small_classes"]["message"]
    assert "2 empty" in codes["empty_texts"]["message"]
    assert "pizza pizza" in codes["duplicate_texts"]["examples"]
    assert any(p["code"] == "leakage" and train[0]["text"] in p["examples"] for p in report["problems"])
    assert codes["truncation"]["level"] == "warning"


def test_check_data_command_and_fit_stops_on_errors(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files)
    out = tmp_path / "check"
    proc = run("check-data", "--config", str(config), "--output_dir", str(out), cwd=tmp_path)
    assert "Token lengths" in proc.stdout
    report = json.loads((out / "data_check.json").read_text())
    assert report["splits"]["test"]["rows"] == 30 and (out / "class_counts.png").stat().st_size > 1000

    rows = make_rows(20, 1) + [{"text": "chef soup", "label": "FOOD"}]
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    proc = run("fit", "--config", str(config), "--data.train_file", str(bad), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'FOOD' / 'food'" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("n", [1])
def test_render_is_plain_text(n, tmp_path, tiny_backbone):
    from textcls.checks import render

    text = render(check_data(_data(tmp_path, tiny_backbone, make_rows(10, n), make_rows(3, 2))))
    assert "Label distribution" in text and "no problems" in text


def test_truncation_advice_is_bounded_by_the_backbone_limit(tmp_path, tiny_backbone):
    long = [{"text": "goal " * 150, "label": r["label"]} for r in make_rows(5, 1)]
    at_limit = check_data(_data(tmp_path, tiny_backbone, long, make_rows(3, 2), max_length=128))
    message = _codes(at_limit)["truncation"]["message"]
    assert "backbone's limit (128 tokens)" in message and "raising" not in message
    below = check_data(_data(tmp_path, tiny_backbone, long, make_rows(3, 2), max_length=64))
    assert "at most 128" in _codes(below)["truncation"]["message"]
    with pytest.raises(DataError, match="at most 128"):
        check_data(_data(tmp_path, tiny_backbone, long, make_rows(3, 2), max_length=700))


# ----------------------------------------------------------------------------- multi-label data

ML_TRAIN = ["a;b"] * 4 + ["a;b;c"] * 2 + ["c"] * 3 + [""] * 2 + ["b"]  # positives a 6, b 7, c 5


def _multi_label_data(tmp_path, backbone, train_labels, test_labels) -> TextClassificationData:
    import pandas as pd

    words = "goal match team coach score league player season win referee stadium pizza".split()
    files = {}
    for split, labels in (("train", train_labels), ("test", test_labels)):
        texts = [f"{words[i % 12]} {words[(i * 5 + 1) % 12]} {split} {i}" for i in range(len(labels))]
        files[split] = tmp_path / f"ml_{split}.csv"
        pd.DataFrame({"text": texts, "labels": labels}).to_csv(files[split], index=False)
    return TextClassificationData(
        train_file=str(files["train"]),
        test_file=str(files["test"]),
        model_name_or_path=backbone,
        multi_label=True,
        label_column="labels",
        val_fraction=0,  # the counts below are of all the training rows
    )


def test_multi_label_counts_cardinality_and_pairs(tmp_path, tiny_backbone):
    data = _multi_label_data(tmp_path, tiny_backbone, ML_TRAIN, ["a", "b;c", "", "a;b"])
    report = check_data(data, min_class_examples=6)
    train, test = report["splits"]["train"], report["splits"]["test"]
    assert report["multi_label"] and report["labels"] == ["a", "b", "c"]
    assert train["rows"] == 12 and train["class_counts"] == {"a": 6, "b": 7, "c": 5}
    assert train["class_shares"]["b"] == round(7 / 12, 4)
    assert train["label_cardinality"] == 1.5 and train["max_labels_per_text"] == 3  # 18 labels / 12 texts
    assert train["no_label_rows"] == 2 and test["no_label_rows"] == 1 and test["label_cardinality"] == 1.25
    assert report["co_occurrence"] == [
        {"labels": ["a", "b"], "texts": 6},
        {"labels": ["a", "c"], "texts": 2},
        {"labels": ["b", "c"], "texts": 2},
    ]
    codes = _codes(report)
    assert "c (5)" in codes["small_classes"]["message"] and "a (6)" not in codes["small_classes"]["message"]
    assert not [p for p in report["problems"] if p["level"] == "error"] and "no_label" not in codes
    text = render(report)
    assert "mean 1.50  max 3  no label 2" in text and "a + b: 6 texts" in text


def test_multi_label_unseen_label_is_an_error_and_many_empty_sets_a_warning(tmp_path, tiny_backbone):
    data = _multi_label_data(tmp_path, tiny_backbone, ML_TRAIN, ["a;d", "d", "b", "", "", "", ""])
    codes = _codes(check_data(data))
    unseen = codes["labels_not_in_train"]
    assert unseen["level"] == "error" and unseen["examples"] == ["d"] and "(2 rows)" in unseen["message"]
    assert codes["no_label"]["level"] == "warning" and "57% of test texts (4)" in codes["no_label"]["message"]


def test_check_data_command_on_multi_label_data(tmp_path, tiny_backbone, multi_label_files):
    import yaml

    config = write_config(tmp_path, tiny_backbone, multi_label_files)
    settings = yaml.safe_load(config.read_text())
    settings["data"] |= {"multi_label": True, "label_column": "labels"}
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "check"
    proc = run("check-data", "--config", str(config), "--output_dir", str(out), cwd=tmp_path)
    assert "Labels per text:" in proc.stdout and "Labels most often together in train:" in proc.stdout
    report = json.loads((out / "data_check.json").read_text())
    assert report["splits"]["test"]["rows"] == 40 and set(report["labels"]) == {"food", "sports", "tech"}
    # every fifth text carries two topics: 8 of the 40 test texts
    assert report["splits"]["test"]["label_cardinality"] == 1.2
    assert sum(report["splits"]["test"]["class_counts"].values()) == 48
    assert (out / "class_counts.png").stat().st_size > 1000


# ----------------------------------------------------------------------------- long texts


def _long_rows(n_per_class: int, seed: int) -> list[dict]:
    """Texts of 10 to 80 words (each one token of the tiny vocabulary): most longer than 16 tokens."""
    import random

    rng = random.Random(seed)
    return [
        {"text": " ".join([r["text"]] * rng.randint(2, 10)), "label": r["label"]}
        for r in make_rows(n_per_class, seed)
    ]


def test_chunked_texts_report_windows_as_training_reads_them(tmp_path, tiny_backbone):
    import numpy as np

    from textcls.checks.lengths import windows_per_text
    from textcls.long_text import encode_texts

    kw = {"max_length": 16, "long_text": "chunks", "chunk_stride": 5, "max_chunks_per_text": 2}
    data = _data(tmp_path, tiny_backbone, _long_rows(6, 1), _long_rows(4, 2), **kw)
    report = check_data(data)
    test_texts = data.split_frames["test"]["text"].tolist()
    windows = np.bincount(encode_texts(test_texts, data.tokenizer, data.layout)["owner"])
    assert windows.max() > 2  # the texts do need several windows
    w = report["splits"]["test"]["token_lengths"]["windows"]
    assert w["max"] == windows.max() and w["mean"] == round(float(windows.mean()), 4)
    assert w["p90"] == float(np.percentile(windows, 90)) and w["cost"] == w["mean"]
    assert w["train_cost"] == round(float(np.minimum(windows, 2).mean()), 4)
    # a text of up to 14 content tokens is one window; each further 9 tokens (16 - 2 - 5) add one
    assert windows_per_text(np.array([14, 15, 23, 24]), data.layout, 2).tolist() == [1, 2, 2, 3]
    codes = _codes(report)
    assert "truncation" not in codes  # nothing is cut
    assert f"{w['cost']:.2f}x" in codes["long_text_cost"]["message"]
    assert "windows per text: mean" in render(report)


def test_most_texts_cut_by_head_truncation_get_a_long_documents_hint(tmp_path, tiny_backbone):
    train, test = _long_rows(6, 1), _long_rows(4, 2)
    head = check_data(_data(tmp_path, tiny_backbone, train, test, max_length=16))
    assert head["splits"]["test"]["token_lengths"]["truncated_share"] > 0.5
    assert "windows" not in head["splits"]["test"]["token_lengths"]
    message = _codes(head)["truncation"]["message"]
    assert "head_tail" in message and "long_text: chunks" in message and "Long documents" in message
    both = check_data(_data(tmp_path, tiny_backbone, train, test, max_length=16, truncation="head_tail"))
    message = _codes(both)["truncation"]["message"]
    assert "first 4 and last tokens are kept" in message and "Long documents" not in message
    # a few long texts: the plain warning, no hint
    few = check_data(_data(tmp_path, tiny_backbone, make_rows(10, 1) + train[:3], test, max_length=16))
    cut = {
        p["message"].split(" of ")[1].split()[0]: p["message"]
        for p in few["problems"]
        if p["code"] == "truncation"
    }
    assert few["splits"]["train"]["token_lengths"]["truncated_share"] < 0.5
    assert "Long documents" not in cut["train"] and "Long documents" in cut["test"]
