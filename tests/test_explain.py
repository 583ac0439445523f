"""Explanations: Integrated Gradients per word, completeness, the files, the command and the test report."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import FILLER, TOPICS, make_rows, write_jsonl
from tests.test_cli import run, write_config
from textcls.backbone import load_classifier, load_tokenizer
from textcls.calibration import Calibration
from textcls.explain import baseline_ids, explain_predictor, explain_texts, text_positions
from textcls.explain.view import Explanation, WordScore, explanations_html, write_atomic, write_explanations
from textcls.inference import Predictor, load_predictor
from textcls.long_text import TextLayout
from textcls.tasks.multi_label import MultiLabel
from textcls.tasks.single_label import SingleLabel

pytest.importorskip("captum", reason="captum is not installed (the explain extra)")

LABELS = ["food", "sports", "tech"]
WORDS = sorted({w for ws in TOPICS.values() for w in ws.split()} | set(FILLER))
TEXTS = ["pizzas baked in the kitchen", "the teams scored a goal!", "my laptop is very slow today"]
# Completeness: sum of word scores = logit(text) - logit(baseline) within this, with COMPLETENESS_STEPS
COMPLETENESS_STEPS, REL_TOL, ABS_TOL = 200, 0.01, 1e-3


# initializer_range 0.3 (not 0.02): logits that depend on the words by more than rounding


def _bert(folder: Path):
    """A tiny random BERT whose WordPiece vocabulary splits `pizzas` into `pizza ##s`."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!", *WORDS, "##s", "##d", "##ed"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=3, initializer_range=0.3,
    )  # fmt: skip
    return BertForSequenceClassification(config), BertTokenizerFast(str(folder / "vocab.txt"))


def _roberta(folder: Path):
    """A tiny random RoBERTa with a byte-level BPE tokenizer trained here on the topic words."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    corpus = [r["text"] for r in make_rows(30)] + TEXTS
    bpe.train_from_iterator(corpus, vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    bpe.save_model(str(folder))
    tokenizer = RobertaTokenizerFast(str(folder / "vocab.json"), str(folder / "merges.txt"))
    config = RobertaConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=70, num_labels=3, pad_token_id=tokenizer.pad_token_id, initializer_range=0.3,
    )  # fmt: skip
    return RobertaForSequenceClassification(config), tokenizer


@pytest.fixture(scope="module", params=["wordpiece", "bpe"])
def network(request, tmp_path_factory):
    torch.manual_seed(0)
    build = _bert if request.param == "wordpiece" else _roberta
    model, tokenizer = build(tmp_path_factory.mktemp(request.param))
    return model.eval(), tokenizer


def test_one_score_per_word(network):
    model, tokenizer = network
    [e] = explain_texts(model, tokenizer, [TEXTS[0]], LABELS, 32, n_steps=10)
    assert [w.word for w in e.words] == TEXTS[0].split()  # `pizzas` and `baked` are two pieces each
    assert len(tokenizer(TEXTS[0])["input_ids"]) > len(TEXTS[0].split()) + 2
    assert all(TEXTS[0][w.start : w.end] == w.word for w in e.words)
    [e] = explain_texts(model, tokenizer, [TEXTS[1]], LABELS, 32, n_steps=10)
    assert [w.word for w in e.words] == ["the", "teams", "scored", "a", "goal", "!"]


def test_scores_add_up_to_the_logit_difference(network):
    """Completeness: the word scores sum to logit(text) - logit(baseline) of the label, within 1%
    (+1e-3) with 200 steps, and the reported delta is exactly what is missing."""
    model, tokenizer = network
    explanations = explain_texts(model, tokenizer, TEXTS, LABELS, 32, n_steps=COMPLETENESS_STEPS)
    differences = []
    for text, e in zip(TEXTS, explanations, strict=True):
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        base = baseline_ids(ids, tokenizer)
        assert base[0, 0] == ids[0, 0] and base[0, -1] == ids[0, -1]  # [CLS]/<s> and [SEP]/</s> kept
        assert (base[0, 1:-1] == tokenizer.pad_token_id).all()
        # the baseline keeps the text's positions (RoBERTa would number pad tokens differently)
        positions = text_positions(model, ids)
        offset = 0 if tokenizer.pad_token_id == 0 else tokenizer.pad_token_id + 1  # BERT 0.., RoBERTa 2..
        assert positions.tolist() == [list(range(offset, offset + ids.shape[1]))]
        target = LABELS.index(e.label)
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0]
            baseline = model(input_ids=base, position_ids=positions).logits[0]
        assert target == int(logits.argmax())  # the predicted label is the one explained
        difference = float(logits[target] - baseline[target])
        total = sum(w.score for w in e.words)
        differences.append(abs(difference))
        assert total == pytest.approx(difference, rel=REL_TOL, abs=ABS_TOL)
        assert e.delta == pytest.approx(total - difference, abs=1e-4)
        assert abs(e.delta) < ABS_TOL + REL_TOL * abs(difference)
    assert max(differences) > 0.1  # the checks above are not met by all-zero scores


def test_truncated_texts_say_so(network):
    model, tokenizer = network
    long = " ".join(["pizza goal laptop"] * 20)
    [e] = explain_texts(model, tokenizer, [long], LABELS, 8, n_steps=4)
    assert e.truncated and 0 < len(e.words) <= 6  # 8 tokens minus the two special ones
    seen = [w.word for w in e.words]
    assert seen[:-1] == long.split()[: len(seen) - 1] and long.split()[len(seen) - 1].startswith(seen[-1])
    assert "not seen" in explanations_html([e], "t", 4)


@pytest.fixture(scope="module")
def predictor(tiny_backbone):
    model = load_classifier(tiny_backbone, LABELS).eval()
    calibration = Calibration(2.0, np.array([0.9, 0.6]), np.array([True, False]))
    task = SingleLabel(LABELS, calibration=calibration)
    return Predictor(model, load_tokenizer(tiny_backbone), TextLayout(16), Path(tiny_backbone), task=task)


def test_label_and_probability_are_the_predictors(predictor):
    texts = ["pizza recipe bake sauce", "goal team match", "laptop code server cloud"]
    probs = predictor.predict_probs(texts)  # calibrated with temperature 2
    explanations = explain_predictor(predictor, texts, n_steps=4)
    for e, p in zip(explanations, probs, strict=True):
        assert e.label == LABELS[int(p.argmax())]
        assert e.probability == pytest.approx(float(p.max()), abs=1e-5)


def test_html_escapes_the_text_and_files_are_written_atomically(tmp_path, monkeypatch):
    text = 'pizza <script>alert("x")</script> & goal'
    words = [
        WordScore("pizza", 0, 5, 0.4),
        WordScore("<script>", 6, 14, -0.2),
        WordScore("goal", 38, 42, 0.1),
    ]
    e = Explanation(text, "food", 0.8, words, 0.001)
    page = explanations_html([e], "<b>title</b>", 50)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;title" in page
    assert "<s>" not in page and "(or &lt;s&gt;/&lt;/s&gt;)" in page  # the method line is escaped too
    assert "&amp; " in page and 'title="+0.4"' in page and 'title="-0.2"' in page

    out = tmp_path / "out" / "why.html"
    json_path = write_explanations([e], out, 50)
    assert json_path == tmp_path / "out" / "why.json" and out.read_text().startswith("<!DOCTYPE html>")
    saved = json.loads(json_path.read_text())
    assert saved["n_steps"] == 50 and saved["explanations"][0]["words"][1]["score"] == -0.2
    assert sorted(p.name for p in out.parent.iterdir()) == ["why.html", "why.json"]  # no temporary files

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(out, "half a page")
    assert out.read_text().startswith("<!DOCTYPE html>")  # the old file is intact
    assert sorted(p.name for p in out.parent.iterdir()) == ["why.html", "why.json"]


# ----------------------------------------------------------------------------- the command and the report


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_backbone):
    """A tiny model trained one epoch, tested (with 3 explained mistakes) and exported."""
    tmp = tmp_path_factory.mktemp("explain")
    files = {
        "train": write_jsonl(tmp / "train.jsonl", make_rows(20, seed=1)),
        "test": write_jsonl(tmp / "test.jsonl", make_rows(6, seed=2)),
        "predict": write_jsonl(tmp / "predict.jsonl", make_rows(1, seed=3)),
    }
    config = write_config(tmp, tiny_backbone, files, max_epochs=1)
    run("fit", "--config", str(config), "--data.max_length", "16", cwd=tmp)
    run("test", "--config", str(config), "--ckpt_path", "best", "--report.explain_mistakes", "3", cwd=tmp)
    ckpt = tmp / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt"
    run("export", "--ckpt_path", str(ckpt), "--output_dir", str(tmp / "exported"), cwd=tmp)
    return {"tmp": tmp, "config": config, "ckpt": ckpt, "exported": tmp / "exported", "files": files}


def test_explain_from_a_checkpoint_and_an_exported_folder(trained):
    tmp, texts = trained["tmp"], ["pizza recipe bake", "goal team <b>win</b>"]
    scores = {}
    for name in ("ckpt", "exported"):
        out = tmp / f"{name}.html"
        args = ["--text", texts[0], "--text", texts[1], "--n_steps", "8", "--output_path", str(out)]
        run("explain", "--ckpt_path", str(trained[name]), *args, cwd=tmp)
        saved = json.loads(out.with_suffix(".json").read_text())["explanations"]
        probs = load_predictor(trained[name]).predict_probs(texts)
        assert [e["text"] for e in saved] == texts
        assert [e["label"] for e in saved] == [LABELS[i] for i in probs.argmax(1)]
        np.testing.assert_allclose([e["probability"] for e in saved], probs.max(1), atol=1e-5)
        assert [len(e["words"]) for e in saved] == [3, 10]  # punctuation marks are words of their own
        page = out.read_text()
        assert "<b>" not in page and ">&lt;</span>" in page  # the text is escaped, word by word
        scores[name] = [w["score"] for e in saved for w in e["words"]]
    np.testing.assert_allclose(scores["ckpt"], scores["exported"], atol=1e-5)  # the same weights


def test_explain_best_of_a_config_from_its_predict_file_as_text(trained):
    proc = run(
        "explain", "--config", str(trained["config"]), "--ckpt_path", "best", "--format", "text",
        "--n_steps", "4", cwd=trained["tmp"],
    )  # fmt: skip
    predict = pd.read_json(trained["files"]["predict"], lines=True)
    assert proc.stdout.count(" -> ") == len(predict) and proc.stdout.count("  for:") == len(predict)
    assert "IG convergence delta" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        ([], 'nothing to explain: pass --text "..."'),
        (["--data.predict_file", "missing.csv"], "data file 'missing.csv' does not exist"),
        (["--ckpt_path", "nope.ckpt", "--text", "x"], "--ckpt_path 'nope.ckpt' does not exist"),
        (["--ckpt_path", "best", "--text", "x"], "--ckpt_path best needs --config"),
    ],
)
def test_clean_errors(trained, args, message):
    ckpt = [] if "--ckpt_path" in args else ["--ckpt_path", str(trained["ckpt"])]
    proc = run("explain", *ckpt, *args, cwd=trained["tmp"], check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert message in proc.stderr.strip().splitlines()[-1]


def test_the_test_report_explains_the_most_confident_mistakes(trained):
    folder = trained["tmp"] / "logs" / "tiny" / "version_1"
    mistakes = pd.read_csv(folder / "misclassified.csv")
    saved = json.loads((folder / "explanations.json").read_text())
    assert saved["n_steps"] == 25
    explained = saved["explanations"]
    assert len(explained) == min(3, len(mistakes)) and len(mistakes) > 0  # one epoch: it does err
    assert [e["text"] for e in explained] == mistakes["text"].head(3).tolist()
    assert [e["label"] for e in explained] == mistakes["predicted_label"].head(3).tolist()
    assert [e["true_label"] for e in explained] == mistakes["true_label"].head(3).tolist()
    np.testing.assert_allclose(
        [e["probability"] for e in explained], mistakes["confidence"].head(3), atol=1e-4
    )
    assert all(e["words"] for e in explained)
    assert (folder / "explanations.html").read_text().startswith("<!DOCTYPE html>")


def test_multi_label_explanations_report_each_labels_sigmoid(tiny_backbone):
    model = load_classifier(tiny_backbone, ["food", "sports", "tech"])
    tokenizer = load_tokenizer(tiny_backbone)
    texts = ["pizza sauce goal team", "laptop chip code"]
    task = MultiLabel(["food", "sports", "tech"])
    out = explain_texts(model, tokenizer, texts, ["food", "sports", "tech"], 32, n_steps=8, task=task)
    with torch.no_grad():
        enc = tokenizer(texts, padding=True, return_tensors="pt")
        probs = torch.sigmoid(model(**enc).logits)
    for explanation, row in zip(out, probs, strict=True):
        assert explanation.label == ["food", "sports", "tech"][int(row.argmax())]
        assert explanation.probability == pytest.approx(float(row.max()), abs=1e-5)


@pytest.mark.parametrize(
    "layout,quantized,message",
    [
        (TextLayout(16, long_text="chunks"), None, "reads texts in windows"),
        (TextLayout(16, "tail"), None, "by data.truncation: tail"),
        (TextLayout(16), "int8", "int8-quantized model gives no gradients"),
    ],
)
def test_what_explanations_cannot_follow_is_one_line(predictor, layout, quantized, message):
    from dataclasses import replace

    from textcls.explain import ExplainError

    other = replace(predictor, layout=layout, quantized=quantized)
    with pytest.raises(ExplainError, match=message):
        explain_predictor(other, ["goal team match"], n_steps=4)
