"""Multi-label export: `pipeline` gives the sigmoid probabilities of `textcls predict`, and the folder's
thresholds.json makes the exported-folder predictor and `predict --ckpt_path FOLDER` decide alike."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import cpu_with_bf16, make_multi_label_rows, write_multi_label_files
from tests.test_cli import run, write_config

LABELS = ["food", "sports", "tech"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_backbone):
    """A multi-label checkpoint of the tiny model (three epochs), its exported folder and predictions."""
    tmp = tmp_path_factory.mktemp("export_ml")
    files = write_multi_label_files(tmp)
    config = write_config(tmp, tiny_backbone, files, max_epochs=3)
    settings = yaml.safe_load(config.read_text())
    settings["data"].update(multi_label=True, label_column="labels", max_length=16)
    settings["model"]["learning_rate"] = 1e-2  # the tiny model then separates the topics in 3 epochs
    config.write_text(yaml.safe_dump(settings))
    with cpu_with_bf16():  # fit in bf16, predict in fp32: the probabilities must still match the pipeline's
        run("fit", "--config", str(config), "--data_check.enabled", "false", cwd=tmp)
        ckpt = tmp / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt"
        folder = tmp / "exported"
        run("export", "--ckpt_path", str(ckpt), "--output_dir", str(folder), cwd=tmp)
        out = {"tmp": tmp, "config": config, "ckpt": ckpt, "folder": folder, "files": files}
        out["preds"] = predict(out, ckpt, "from_ckpt.csv")
        out["forced"] = predict(out, ckpt, "forced.csv", "--prediction.at_least_one", "true")
    return out


def predict(trained, source, name: str, *extra: str) -> pd.DataFrame:
    out = trained["tmp"] / name
    args = ["--data.predict_file", str(trained["files"]["predict"]), "--prediction.output_path", str(out)]
    run(
        "predict",
        "--config",
        str(trained["config"]),
        "--ckpt_path",
        str(source),
        *args,
        *extra,
        cwd=trained["tmp"],
    )
    return pd.read_csv(out, keep_default_na=False)  # an empty `labels` cell is no label, not NaN


def test_folder_says_multi_label_and_carries_the_checkpoint_thresholds(trained):
    folder = trained["folder"]
    config = json.loads((folder / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert config["id2label"] == {"0": "food", "1": "sports", "2": "tech"}
    stored = torch.load(trained["ckpt"], weights_only=True)["thresholds"]
    assert json.loads((folder / "thresholds.json").read_text()) == stored
    assert len(stored["values"]) == 3 and any(stored["tuned"])  # 150 rows: every label has positives
    assert not (folder / "calibration.json").exists()  # no temperature for sigmoid probabilities
    card = (folder / "README.md").read_text()
    assert "multi-label classification" in card and "## Thresholds" in card
    for name, value in zip(LABELS, stored["values"], strict=True):
        assert f"| {name} | {value:.4f} |" in card


def test_pipeline_returns_the_probabilities_of_textcls_predict(trained):
    from transformers import pipeline

    preds = trained["preds"]
    classify = pipeline("text-classification", model=str(trained["folder"]), device="cpu")
    answers = classify(preds["text"].tolist(), top_k=None, truncation=True)
    thresholds = json.loads((trained["folder"] / "thresholds.json").read_text())["values"]
    cutoff = dict(zip(LABELS, thresholds, strict=True))
    for (_, row), scores in zip(preds.iterrows(), answers, strict=True):
        assert sorted(s["label"] for s in scores) == LABELS
        for s in scores:
            assert abs(s["score"] - row[f"prob_{s['label']}"]) < 1e-5
            # a label is given exactly when its probability reaches its own threshold
            if abs(s["score"] - cutoff[s["label"]]) > 1e-5:
                assert row[f"pred_{s['label']}"] == int(s["score"] >= cutoff[s["label"]])


def test_predict_from_the_folder_equals_predict_from_the_checkpoint(trained):
    a = trained["preds"]
    b = predict(trained, trained["folder"], "b.csv")
    pd.testing.assert_frame_equal(a, b, atol=1e-5, rtol=0)
    assert list(a.columns) == [
        "text",
        "labels",
        *[f"prob_{n}" for n in LABELS],
        *[f"pred_{n}" for n in LABELS],
    ]
    forced = predict(trained, trained["folder"], "c.csv", "--prediction.at_least_one", "true")
    pd.testing.assert_frame_equal(trained["forced"], forced, atol=1e-5, rtol=0)
    chosen = [f"pred_{n}" for n in LABELS]
    assert (forced[chosen].sum(1) >= 1).all()
    # a text with no label gets its top-scoring one; the others keep theirs
    empty = a[chosen].sum(1) == 0
    top = a.loc[empty, [f"prob_{n}" for n in LABELS]].to_numpy().argmax(1)
    assert forced.loc[empty, "labels"].tolist() == [LABELS[j] for j in top]
    assert forced.loc[~empty, "labels"].tolist() == a.loc[~empty, "labels"].tolist()


def test_exported_folder_predictor_decides_like_textcls_predict(trained):
    from textcls.inference import load_predictor
    from textcls.thresholds import decide

    expected, forced = trained["preds"], trained["forced"]
    texts = expected["text"].tolist()
    for source in (trained["folder"], trained["ckpt"]):
        predictor = load_predictor(source)
        assert predictor.multi_label and predictor.calibration is None
        probs = predictor.predict_probs(texts)
        logits = predictor.model(**predictor.encode(texts)).logits.detach()
        np.testing.assert_allclose(probs, torch.sigmoid(logits).numpy(), atol=1e-6)  # not a softmax
        pd.testing.assert_frame_equal(
            predictor.results(texts, probs), expected, atol=1e-5, rtol=0, check_dtype=False
        )
        table = predictor.results(texts, probs, at_least_one=True)
        pd.testing.assert_frame_equal(table, forced, atol=1e-5, rtol=0, check_dtype=False)
        chosen = decide(probs, predictor.thresholds).numpy().astype(int)
        assert (expected[[f"pred_{n}" for n in LABELS]].to_numpy() == chosen).all()


def test_export_refuses_a_target_precision_for_multi_label(trained, tmp_path):
    from textcls.export import ExportError, export

    with pytest.raises(ExportError, match="for single-label models"):
        export(str(trained["ckpt"]), str(tmp_path / "x"), target_precision=0.9)


@pytest.mark.slow
def test_onnx_agreement_on_label_sets(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from textcls.export import ONNX_FILE, export, onnx_agreement, onnx_probs, onnx_session
    from textcls.inference import load_predictor

    texts = [r["text"] for r in make_multi_label_rows(60, seed=7)]
    folder = export(str(trained["ckpt"]), str(tmp_path / "onnx"), onnx=True, check_texts=texts[:10])
    predictor = load_predictor(folder)
    ort = onnx_probs(onnx_session(folder / ONNX_FILE), predictor, texts)
    np.testing.assert_allclose(ort, predictor.predict_probs(texts), atol=1e-4)  # sigmoid, not softmax
    assert onnx_agreement(predictor, folder / ONNX_FILE, texts) >= 0.995
