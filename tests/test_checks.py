"""The data check flags each problem on small crafted inputs."""

import json

import pytest

from tests.conftest import make_rows, write_jsonl
from tests.test_cli import run, write_config
from textcls.checks import check_data
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
