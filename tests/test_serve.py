"""`textcls serve`: the real server as a subprocess on 127.0.0.1 (a free port), real HTTP requests.

Two servers per session of this file: a single-label checkpoint with an API key and a target precision,
and a multi-label exported folder that batches slowly (so that a request is surely in flight when
SIGTERM comes; that test stops it, and runs last).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import torch
import yaml

import textcls
from tests.conftest import make_rows, write_jsonl, write_multi_label_files
from tests.test_cli import ROOT, run, write_config

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
LONG_TEXT = " ".join(["pizza goal laptop"] * 40)  # beyond max_length 16: read truncated
MAX_BODY = 1_000_000  # the single-label server's body limit (bytes)
LABELS = ["food", "sports", "tech"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m textcls serve ARGS` on a free port, its output in a log file."""

    def __init__(self, folder: Path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"serve_{self.port}.log"
        environ = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env or {})}
        command = [sys.executable, "-m", "textcls", "serve", *args, "--port", str(self.port)]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                command, cwd=folder, env=environ, stdout=log, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, headers: dict | None = None, timeout: float = 300) -> "Server":
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.output()[-5000:]}")
            try:
                if requests.get(f"{self.url}/health", headers=headers, timeout=5).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        self.stop()
        raise AssertionError(f"serve was not ready after {timeout} s:\n{self.output()[-5000:]}")

    def post(self, body, headers: dict | None = None, **kwargs) -> requests.Response:
        return requests.post(f"{self.url}/predict", json=body, headers=headers, timeout=120, **kwargs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def single(tmp_path_factory, tiny_backbone):
    """A single-label checkpoint of the tiny model (max_length 16) and `predict`'s output on its texts."""
    tmp = tmp_path_factory.mktemp("serve")
    files = {
        "train": write_jsonl(tmp / "train.jsonl", make_rows(30, seed=1)),
        "test": write_jsonl(tmp / "test.jsonl", make_rows(5, seed=2)),
        "predict": tmp / "predict.csv",
    }
    texts = [r["text"] for r in make_rows(4, seed=3)] + [LONG_TEXT]
    pd.DataFrame({"text": texts}).to_csv(files["predict"], index=False)
    config = write_config(tmp, tiny_backbone, files, max_epochs=2)
    run("fit", "--config", str(config), "--data.max_length", "16", "--data_check.enabled", "false", cwd=tmp)
    ckpt = tmp / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt"
    target = target_inside(ckpt, texts)
    out = tmp / "pred.csv"
    args = ["--prediction.output_path", str(out), "--prediction.target_precision", target]
    run("predict", "--config", str(config), "--ckpt_path", str(ckpt), *args, cwd=tmp)
    preds = pd.read_csv(out)
    assert 0 < (preds["label"] == "UNCERTAIN").sum() < len(preds)  # both kinds of answer are compared
    return {"tmp": tmp, "ckpt": ckpt, "texts": texts, "preds": preds, "target": target}


def target_inside(ckpt: Path, texts: list[str]) -> str:
    """A target precision whose validation cut-off falls between the confidences of `texts`: some of
    them are then UNCERTAIN, some not."""
    from textcls.inference import load_predictor

    predictor = load_predictor(ckpt)
    confidence = predictor.predict_probs(texts).max(1)
    for target in np.round(np.arange(0.34, 1.0, 0.01), 2):
        if confidence.min() < predictor.cutoff(target)[0] <= confidence.max():
            return str(target)
    raise AssertionError(f"no target precision has a cut-off among the confidences {confidence}")


@pytest.fixture(scope="module")
def single_server(single):
    args = ["--model", str(single["ckpt"]), "--target_precision", single["target"]]
    server = Server(single["tmp"], *args, "--max_body_bytes", str(MAX_BODY), env={"TEXTCLS_API_KEY": KEY})
    yield server.wait_ready(AUTH)
    server.stop()


@pytest.fixture(scope="module")
def multi(tmp_path_factory, tiny_backbone):
    """A multi-label model of the tiny backbone, exported, and `predict`'s output from the folder."""
    tmp = tmp_path_factory.mktemp("serve_ml")
    files = write_multi_label_files(tmp)
    config = write_config(tmp, tiny_backbone, files, max_epochs=3)
    settings = yaml.safe_load(config.read_text())
    settings["data"].update(multi_label=True, label_column="labels", max_length=16)
    settings["model"]["learning_rate"] = 1e-2
    config.write_text(yaml.safe_dump(settings))
    run("fit", "--config", str(config), "--data_check.enabled", "false", cwd=tmp)
    ckpt = tmp / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt"
    folder = tmp / "exported"
    run("export", "--ckpt_path", str(ckpt), "--output_dir", str(folder), cwd=tmp)
    out = tmp / "pred.csv"
    run(
        "predict",
        "--config",
        str(config),
        "--ckpt_path",
        str(folder),
        "--prediction.output_path",
        str(out),
        cwd=tmp,
    )
    return {"tmp": tmp, "folder": folder, "preds": pd.read_csv(out, keep_default_na=False)}


@pytest.fixture(scope="module")
def multi_server(multi):
    # a batch waits 3 s to fill: a request is in flight long enough for the SIGTERM test
    args = ["--model", str(multi["folder"]), "--max_batch_size", "4", "--batch_timeout", "3"]
    server = Server(multi["tmp"], *args)
    yield server.wait_ready()
    server.stop()


@pytest.mark.slow
def test_single_label_answers_are_those_of_predict(single, single_server):
    response = single_server.post({"texts": single["texts"]}, AUTH)
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    preds = single["preds"]
    assert len(answers) == len(preds) == len(single["texts"])
    for answer, (_, row) in zip(answers, preds.iterrows(), strict=True):
        assert set(answer) == {"label", "confidence", "probs"}
        assert answer["label"] == row["label"]  # UNCERTAIN where predict says so, at the same target
        assert abs(answer["confidence"] - row["confidence"]) < 1e-5
        assert list(answer["probs"]) == LABELS
        for name in LABELS:
            assert abs(answer["probs"][name] - row[f"prob_{name}"]) < 1e-5


@pytest.mark.slow
def test_multi_label_answers_are_those_of_predict(multi, multi_server):
    preds = multi["preds"]
    response = multi_server.post({"texts": preds["text"].tolist()})
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert len(answers) == len(preds)
    for answer, (_, row) in zip(answers, preds.iterrows(), strict=True):
        assert set(answer) == {"labels", "probs"}
        assert answer["labels"] == [n for n in LABELS if row[f"pred_{n}"]]
        assert ";".join(answer["labels"]) == row["labels"]
        for name in LABELS:
            assert abs(answer["probs"][name] - row[f"prob_{name}"]) < 1e-5


def expected_probs(ckpt: Path, texts: list[str]) -> np.ndarray:
    from textcls.inference import load_predictor

    return load_predictor(ckpt).predict_probs(texts)


@pytest.mark.slow
def test_64_concurrent_requests_are_each_answered_with_their_own_texts(single, single_server):
    texts = [r["text"] for r in make_rows(22, seed=5)][:64]
    assert len(set(texts)) == 64
    expected = dict(zip(texts, expected_probs(single["ckpt"], texts), strict=True))
    # request i holds 1 to 3 texts, so that a batch mixes requests of several sizes
    bodies = [texts[i : i + 1 + i % 3] for i in range(64)]
    with ThreadPoolExecutor(64) as pool:
        responses = list(pool.map(lambda body: single_server.post({"texts": body}, AUTH), bodies))
    for body, response in zip(bodies, responses, strict=True):
        assert response.status_code == 200, response.text
        answers = response.json()["predictions"]
        assert len(answers) == len(body)
        for text, answer in zip(body, answers, strict=True):
            np.testing.assert_allclose(list(answer["probs"].values()), expected[text], atol=1e-5)


@pytest.mark.slow
def test_a_text_of_100000_characters_is_read_truncated_as_predict_reads_it(single, single_server):
    text = ("sports tech pizza " * 6000)[:100_000]
    response = single_server.post({"texts": [text]}, AUTH)
    assert response.status_code == 200, response.text
    [answer] = response.json()["predictions"]
    np.testing.assert_allclose(
        list(answer["probs"].values()), expected_probs(single["ckpt"], [text])[0], atol=1e-5
    )


def _body(texts) -> dict:
    return {"json": {"texts": texts}}


BAD_REQUESTS = {
    "not JSON": (
        {"data": b'{"texts": ["a"', "headers": {"Content-Type": "application/json"}},
        400,
        "not valid JSON",
    ),
    "texts missing": ({"json": {"text": ["a"]}}, 422, "texts: Field required"),
    "texts not a list": (_body("a text"), 422, "texts: Input should be a valid array"),
    "texts empty": (_body([]), 422, "texts: List should have at least 1 item"),
    "a number": (_body(["a", 3]), 422, "texts[1]: Input should be a valid string"),
    "a null": (_body([None]), 422, "texts[0]: Input should be a valid string"),
    "too many texts": (_body(["a"] * 257), 422, "at most 256 items"),
    "a text too long": (
        _body(["a" * 100_001]),
        422,
        "texts[0]: String should have at most 100000 characters",
    ),
    "not an object": ({"json": ["a"]}, 422, "body: Input should be"),
    "body too large": (_body(["a" * 90_000] * 12), 413, f"limit of {MAX_BODY}"),
    "wrong content type": (
        {"data": json.dumps({"texts": ["a"]}), "headers": {"Content-Type": "text/plain"}},
        415,
        "Content-Type: application/json",
    ),
    "no content type": ({"data": json.dumps({"texts": ["a"]}).encode()}, 415, "got none"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_REQUESTS, ids=str)
def test_a_bad_request_gets_a_4xx_naming_the_problem_and_the_server_lives_on(single_server, case):
    kwargs, status, words = BAD_REQUESTS[case]
    kwargs = dict(kwargs)
    headers = {**AUTH, **kwargs.pop("headers", {})}
    response = requests.post(f"{single_server.url}/predict", headers=headers, timeout=60, **kwargs)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert requests.get(f"{single_server.url}/health", headers=AUTH, timeout=30).status_code == 200


@pytest.mark.slow
def test_the_server_log_shows_no_traceback(single_server):
    assert single_server.post({"texts": ["ok"]}, AUTH).status_code == 200
    assert "Traceback" not in single_server.output()
    assert "ready at http://127.0.0.1" in single_server.output()


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/predict", "/health", "/info"])
def test_requests_without_the_api_key_get_401(single_server, path):
    call = requests.post if path == "/predict" else requests.get
    extra = {"json": {"texts": ["a"]}} if path == "/predict" else {}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = call(f"{single_server.url}{path}", headers=headers, timeout=30, **extra)
        assert response.status_code == 401, (headers, response.text)
        assert "Authorization: Bearer" in response.json()["detail"]
    assert call(f"{single_server.url}{path}", headers=AUTH, timeout=30, **extra).status_code == 200


@pytest.mark.slow
def test_info_gives_the_model_facts(single, single_server):
    from textcls.checkpoint import file_sha256
    from textcls.inference import load_predictor

    info = requests.get(f"{single_server.url}/info", headers=AUTH, timeout=30).json()["model"]
    predictor = load_predictor(single["ckpt"])
    assert info["label_names"] == LABELS
    assert info["task"] == "single_label_classification"
    assert info["max_length"] == 16 and info["layout"]["long_text"] == "truncate"
    assert info["temperature"] == pytest.approx(predictor.temperature)
    assert info["sha256"] == file_sha256(single["ckpt"])
    assert info["textcls_version"] == textcls.__version__
    assert info["target_precision"] == float(single["target"])
    assert info["uncertain_below"] == pytest.approx(predictor.cutoff(float(single["target"]))[0])


@pytest.mark.slow
def test_docs_are_served(single_server):
    schema = requests.get(f"{single_server.url}/openapi.json", timeout=30).json()
    assert "/predict" in schema["paths"] and "PredictRequest" in json.dumps(schema)
    assert requests.get(f"{single_server.url}/docs", timeout=30).status_code == 200


@pytest.mark.slow
def test_sigterm_answers_the_request_in_flight_then_exits_0(multi, multi_server):
    texts = multi["preds"]["text"].tolist()
    answer = {}
    thread = threading.Thread(target=lambda: answer.update(response=multi_server.post({"texts": texts})))
    thread.start()
    time.sleep(1.5)  # the request waits in the worker for its batch to fill (3 s)
    multi_server.proc.send_signal(signal.SIGTERM)
    thread.join(120)
    assert answer["response"].status_code == 200, answer["response"].text
    assert len(answer["response"].json()["predictions"]) == len(texts)
    assert multi_server.proc.wait(120) == 0, multi_server.output()[-3000:]
    assert "Traceback" not in multi_server.output()


# ----------------------------------------------------------------------------- refused before listening


def test_a_missing_model_is_one_line_before_listening(tmp_path):
    proc = run("serve", "--model", str(tmp_path / "nothing"), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("textcls: error: model ")
    assert "does not exist" in proc.stderr


def test_a_folder_that_is_not_a_model_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    proc = run("serve", "--model", str(tmp_path), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is neither a checkpoint file nor an exported model folder" in proc.stderr.strip().splitlines()[-1]


def test_without_litserve_one_line_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "litserve", None)  # `import litserve` now fails
    proc = run("serve", "--model", str(tmp_path), cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines()[-1]
        == 'textcls: error: textcls serve needs LitServe: pip install "textcls[serve]"'
    )


@pytest.mark.parametrize(
    "option, words",
    [(["--host", "example.com"], "--host must be one of"), (["--port", "80"], "--port must be from 1024"),
     (["--max_batch_size", "0"], "--max_batch_size must be at least 1"),
     (["--max_text_chars", "0"], "--max_text_chars must be at least 1")],
)  # fmt: skip
def test_an_option_that_cannot_work_is_one_line(tmp_path, option, words):
    proc = run("serve", "--model", str(tmp_path), *option, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and words in proc.stderr.strip().splitlines()[-1]


# ----------------------------------------------------------------------------- pairs and regression


def test_a_model_of_pairs_takes_each_pair_as_a_list_or_an_object():
    from pydantic import ValidationError

    from textcls.serve.guard import PredictRequest, request_model

    body = '{"texts": [["a b", "c"], {"text": "d", "text_pair": "e f"}]}'
    assert request_model(4, 10, pairs=True).model_validate_json(body).texts == [("a b", "c"), ("d", "e f")]
    assert PredictRequest.model_validate_json(body).inputs() == [("a b", "c"), ("d", "e f")]
    for bad in (
        '{"texts": ["a b"]}',
        '{"texts": [["a", "b", "c"]]}',
        '{"texts": [{"text": "a", "pair": "b"}]}',
    ):
        with pytest.raises(ValidationError):
            request_model(4, 10, pairs=True).model_validate_json(bad)
    with pytest.raises(ValidationError, match="at most 10 characters"):
        request_model(4, 10, pairs=True).model_validate_json('{"texts": [["a", "bbbbbbbbbbb"]]}')
    with pytest.raises(ValidationError):  # a model of single texts takes no pairs
        request_model(4, 10, pairs=False).model_validate_json('{"texts": [["a", "b"]]}')


def test_a_regression_answers_a_score_per_text():
    from textcls.serve.answers import answers
    from textcls.tasks import Regression

    task = Regression(["similarity"], mean=2.5, std=1.5)
    inputs = pd.DataFrame({"text": ["a", "b"], "text_pair": ["c", "d"]})
    scores = task.probabilities(torch.tensor([[0.0], [1.0]])).numpy()  # the standardisation undone
    table = task.prediction_table(inputs, scores)
    assert answers(table, task.label_names) == [{"score": s} for s in table["score"].tolist()]
    assert [a["score"] for a in answers(table, task.label_names)] == pytest.approx([2.5, 4.0])
