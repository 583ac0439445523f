"""Export: a Hugging Face folder that `pipeline` and `textcls predict` both load, with the same answers."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import make_rows
from tests.test_cli import run, write_config

LONG_TEXT = " ".join(["pizza goal laptop"] * 40)  # far beyond max_length: truncation must match


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_backbone):
    """A checkpoint of the tiny model trained for one epoch with max_length 16, and a test report."""
    tmp = tmp_path_factory.mktemp("export")
    from tests.conftest import write_jsonl

    files = {
        "train": write_jsonl(tmp / "train.jsonl", make_rows(30, seed=1)),
        "test": write_jsonl(tmp / "test.jsonl", make_rows(5, seed=2)),
        "predict": tmp / "predict.csv",
    }
    texts = [r["text"] for r in make_rows(4, seed=3)] + [LONG_TEXT]
    pd.DataFrame({"text": texts}).to_csv(files["predict"], index=False)
    config = write_config(tmp, tiny_backbone, files, max_epochs=1)
    run("fit", "--config", str(config), "--data.max_length", "16", cwd=tmp)
    run_dir = tmp / "logs" / "tiny" / "version_0"
    # the real test report, written by `test` into its own run folder next to the training run
    run("test", "--config", str(config), "--ckpt_path", "best", cwd=tmp)
    report = tmp / "logs" / "tiny" / "version_1" / "metrics.json"
    return {
        "tmp": tmp,
        "config": config,
        "ckpt": run_dir / "checkpoints" / "best.ckpt",
        "report": report,
        "files": files,
        "texts": texts,
    }


@pytest.fixture(scope="module")
def exported(trained):
    folder = trained["tmp"] / "exported"
    run("export", "--ckpt_path", str(trained["ckpt"]), "--output_dir", str(folder), cwd=trained["tmp"])
    return folder


def test_export_writes_a_standard_folder(exported, trained):
    names = {p.name for p in exported.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "metrics.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".ckpt")) for n in names)
    config = json.loads((exported / "config.json").read_text())
    assert config["id2label"] == {"0": "food", "1": "sports", "2": "tech"}
    assert config["label2id"] == {"food": 0, "sports": 1, "tech": 2}
    assert json.loads((exported / "tokenizer_config.json").read_text())["model_max_length"] == 16
    card = (exported / "README.md").read_text()
    report = json.loads(trained["report"].read_text())
    assert json.loads((exported / "metrics.json").read_text()) == report
    assert f"| accuracy | {report['accuracy']:.4f} |" in card  # metrics from the test report
    assert f"| f1_macro | {report['f1_macro']:.4f} |" in card
    assert "learning_rate: 0.003" in card and "max_length: 16" in card  # training settings
    assert str(trained["files"]["train"]) in card  # data
    # no temporary folder is left behind
    assert [p.name for p in exported.parent.iterdir() if p.name.startswith(".exported")] == []


def test_pipeline_matches_textcls_predict(exported, trained):
    from transformers import pipeline

    out = trained["tmp"] / "preds.csv"
    run(
        "predict",
        "--ckpt_path",
        str(trained["ckpt"]),
        "--data.predict_file",
        str(trained["files"]["predict"]),
        "--prediction.output_path",
        str(out),
        cwd=trained["tmp"],
    )
    preds = pd.read_csv(out)
    # pipeline gives the logits; textcls divides them by the stored temperature (see the model card)
    temperature = json.loads((exported / "calibration.json").read_text())["temperature"]
    assert f"softmax(logits / {temperature:.4f})" in (exported / "README.md").read_text()
    classify = pipeline("text-classification", model=str(exported), device="cpu")
    answers = classify(trained["texts"], top_k=None, truncation=True, function_to_apply="none")
    for (_, row), scores in zip(preds.iterrows(), answers, strict=True):
        logits = torch.tensor([s["score"] for s in scores])
        probs = (logits / temperature).softmax(-1)
        assert [s["label"] for s in scores][int(probs.argmax())] == row["label"]
        for s, p in zip(scores, probs.tolist(), strict=True):
            assert abs(p - row[f"prob_{s['label']}"]) < 1e-5


def test_predict_accepts_an_exported_folder(exported, trained):
    from_ckpt, from_folder = trained["tmp"] / "a.csv", trained["tmp"] / "b.csv"
    for source, out in ((trained["ckpt"], from_ckpt), (exported, from_folder)):
        run(
            "predict",
            "--ckpt_path",
            str(source),
            "--data.predict_file",
            str(trained["files"]["predict"]),
            "--prediction.output_path",
            str(out),
            cwd=trained["tmp"],
        )
    a, b = pd.read_csv(from_ckpt), pd.read_csv(from_folder)
    assert a["label"].tolist() == b["label"].tolist()
    probs = [c for c in a.columns if c.startswith("prob_")]
    assert probs == ["prob_food", "prob_sports", "prob_tech"]
    assert np.abs(a[probs].to_numpy() - b[probs].to_numpy()).max() < 1e-5


def test_export_refuses_to_overwrite(exported, trained):
    proc = run(
        "export",
        "--ckpt_path",
        str(trained["ckpt"]),
        "--output_dir",
        str(exported),
        cwd=trained["tmp"],
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "exists and is not empty" in proc.stderr and "--overwrite" in proc.stderr
    assert (exported / "model.safetensors").is_file()


def other_checkpoint(ckpt, path, scale: float):
    """A checkpoint of the same run with other weights (the classifier scaled): it predicts differently."""
    content = torch.load(ckpt, weights_only=True)
    for key in ("model.classifier.weight", "model.classifier.bias"):
        content["state_dict"][key] = content["state_dict"][key] * scale
    torch.save(content, path)
    return path


def test_export_carries_the_metrics_of_its_own_checkpoint(trained, exported, tmp_path, capsys):
    from textcls.export import export

    checkpoints = trained["ckpt"].parent
    # a newer test report, of another checkpoint, next to the run: export must not take it for best's
    other = other_checkpoint(trained["ckpt"], checkpoints / "other.ckpt", 0.0)
    run("test", "--config", str(trained["config"]), "--ckpt_path", str(other), cwd=trained["tmp"])
    newest = json.loads((trained["tmp"] / "logs" / "tiny" / "version_2" / "metrics.json").read_text())
    best = json.loads(trained["report"].read_text())
    assert newest["loss"] != best["loss"]

    folder = export(str(trained["ckpt"]), str(tmp_path / "best"))
    assert json.loads((folder / "metrics.json").read_text()) == best
    folder = export(str(other), str(tmp_path / "other"))
    assert json.loads((folder / "metrics.json").read_text()) == newest
    assert best["checkpoint"]["sha256"] == hashlib.sha256(trained["ckpt"].read_bytes()).hexdigest()
    assert newest["checkpoint"]["sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()

    # a checkpoint never tested: no numbers, said in one line
    untested = other_checkpoint(trained["ckpt"], checkpoints / "untested.ckpt", 2.0)
    capsys.readouterr()
    folder = export(str(untested), str(tmp_path / "untested"))
    assert not (folder / "metrics.json").exists() and not (folder / "confusion_matrix.png").exists()
    assert "No test report of this checkpoint was found" in (folder / "README.md").read_text()
    note = [line for line in capsys.readouterr().err.splitlines() if "test report" in line]
    assert len(note) == 1 and note[0].startswith("No test report of this checkpoint was found")
    # and a report of another checkpoint is refused when named explicitly
    from textcls.export import ExportError

    with pytest.raises(ExportError, match="test metrics of another checkpoint"):
        export(str(untested), str(tmp_path / "mixed"), metrics=str(trained["report"]))


@pytest.mark.slow
def test_onnx_export_agrees_with_pytorch(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from textcls.export import ONNX_FILE, export, onnx_probs, onnx_session
    from textcls.inference import load_predictor

    texts = [r["text"] for r in make_rows(70, seed=7)] + [LONG_TEXT]  # 211 texts, mixed lengths
    folder = export(str(trained["ckpt"]), str(tmp_path / "onnx"), onnx=True, check_texts=texts[:10])
    predictor = load_predictor(folder)
    torch_probs = predictor.predict_probs(texts, batch_size=16)
    ort_probs = onnx_probs(onnx_session(folder / ONNX_FILE), predictor, texts, batch_size=16)
    agreement = (torch_probs.argmax(-1) == ort_probs.argmax(-1)).mean()
    assert agreement >= 0.995
    assert np.abs(torch_probs - ort_probs).max() < 1e-4
    # batch and sequence axes are dynamic: another batch size and length runs too
    assert onnx_probs(onnx_session(folder / ONNX_FILE), predictor, texts[:3], batch_size=3).shape == (3, 3)
    assert torch.equal(torch.as_tensor(torch_probs.argmax(-1)), torch.as_tensor(ort_probs.argmax(-1)))


# ----------------------------------------------------------------------------- long texts in the card


def _card_predictor(backbone: str, pooling: str = "mean", **layout):
    from textcls.backbone import load_classifier, load_tokenizer
    from textcls.inference import Predictor
    from textcls.long_text import TextLayout

    model = load_classifier(backbone, ["food", "sports", "tech"]).eval()
    hparams = {
        "model": {"model_name_or_path": backbone, "chunk_pooling": pooling},
        "data": {"max_length": 16, **layout},
    }
    return Predictor(model, load_tokenizer(backbone), TextLayout(16, **layout), backbone, hparams)


def _python_blocks(card: str) -> list[str]:
    return [block.split("```")[0] for block in card.split("```python\n")[1:]]


def test_card_of_a_chunked_model_says_pipeline_cannot_and_its_textcls_call_works(tiny_backbone, tmp_path):
    from textcls.export import write_folder

    predictor = _card_predictor(tiny_backbone, "max", long_text="chunks", chunk_stride=4)
    folder = tmp_path / "chunked"
    write_folder(predictor, folder)
    card = (folder / "README.md").read_text()
    assert "in overlapping windows of 16 tokens that share 4 tokens" in card and "pooled (max)" in card
    assert "A plain `transformers.pipeline` on this folder cannot read texts this way (windows)" in card
    assert "long_text: chunks" in card and "chunk_stride: 4" in card  # training settings
    # the card's textcls snippet runs as printed on the exported folder, and reads LONG_TEXT in windows
    [snippet] = [b for b in _python_blocks(card) if "load_predictor" in b]
    snippet = snippet.replace("path/to/this/folder", str(folder)).replace('["some text"]', "[LONG_TEXT]")
    *setup, call = snippet.strip().splitlines()
    scope = {"LONG_TEXT": LONG_TEXT}
    exec("\n".join([*setup, f"probs = {call.split('  #')[0]}"]), scope)
    np.testing.assert_allclose(scope["probs"], predictor.predict_probs([LONG_TEXT]), atol=1e-6)
    assert len(predictor.encode([LONG_TEXT])["input_ids"]) > 1  # several windows were pooled


def test_card_notes_pipeline_only_for_layouts_it_cannot_follow(tiny_backbone):
    from textcls.model_card import model_card

    head = model_card(_card_predictor(tiny_backbone))
    assert (
        "a longer text is cut to its first tokens" in head
        and "`pipeline(..., truncation=True)` does the same" in head
    )
    assert "cannot" not in head and "load_predictor" not in head
    head_tail = model_card(_card_predictor(tiny_backbone, truncation="head_tail", head_tokens=6))
    assert "cut to its first 6 tokens and its last ones" in head_tail
    assert "cannot read texts this way (head_tail truncation)" in head_tail and "load_predictor(" in head_tail
    tail = model_card(_card_predictor(tiny_backbone, truncation="tail"))
    assert "cut to its last tokens" in tail and "(tail truncation)" in tail


def test_card_says_why_probabilities_are_the_raw_softmax(tiny_backbone):
    from textcls.calibration import Calibration
    from textcls.model_card import model_card

    predictor = _card_predictor(tiny_backbone)
    predictor.calibration = Calibration(0.5)
    assert "softmax(logits / 0.5000)" in model_card(predictor)
    predictor.calibration = Calibration(1.0, note="0 of 12 validation predictions are wrong, ...")
    card = model_card(predictor)
    assert "raw softmax, as `pipeline` returns them: 0 of 12 validation predictions are wrong" in card
    assert "softmax(logits /" not in card
