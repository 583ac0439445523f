"""The classification head (`model.pooling`): each pooling reads the documented vector, `auto` follows a
sentence-transformers backbone, the pooled head exports with its own code, old checkpoints keep their
head, and multi-label heads start at the labels' base rates."""

import json
import shutil
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.test_cli import run, write_config
from textcls.backbone import BackboneError, load_classifier, resolve_pooling
from textcls.inference import load_predictor
from textcls.pooled_model import PooledTextClassifier

LABELS = ["food", "sports", "tech"]


def encoded(backbone):
    from textcls.backbone import load_tokenizer

    tokenizer = load_tokenizer(backbone)
    # a short and a long text: the short one is padded
    return tokenizer(["pizza goal", "laptop code server cloud phone app"], padding=True, return_tensors="pt")


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_each_pooling_reads_the_documented_vector(tiny_backbone, pooling):
    model = load_classifier(tiny_backbone, LABELS, pooling=pooling).eval()
    assert isinstance(model, PooledTextClassifier) and model.encoder.pooler is None
    batch = encoded(tiny_backbone)
    hidden = model.encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected_vectors = {
        "cls": hidden[:, 0],
        "mean": (hidden * mask).sum(1) / mask.sum(1),  # padding excluded
    }
    expected = model.classifier(expected_vectors[pooling])
    torch.testing.assert_close(model(**batch).logits, expected)
    # a padded text gives the logits it gives alone: padding never enters the vector
    alone = {k: v[:1, : int(batch["attention_mask"][0].sum())] for k, v in batch.items()}
    torch.testing.assert_close(model(**alone).logits[0], model(**batch).logits[0], atol=1e-5, rtol=1e-5)


def test_pooler_is_the_architectures_own_head(tiny_backbone):
    model = load_classifier(tiny_backbone, LABELS, pooling="pooler")
    assert type(model).__name__ == "BertForSequenceClassification"


def sentence_transformers_folder(tmp_path, backbone, **modes):
    folder = tmp_path / "st-backbone"
    shutil.copytree(backbone, folder)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    config = {
        "word_embedding_dimension": 32,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": False,
    }
    config.update({f"pooling_mode_{k}": v for k, v in modes.items()})
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(config))
    return str(folder)


@pytest.mark.parametrize(
    "modes,expected",
    [
        ({"mean_tokens": True}, "mean"),
        ({"cls_token": True}, "cls"),
        ({"max_tokens": True}, "pooler"),  # a pooling this head does not offer: the architecture's own
    ],
    ids=["mean", "cls", "max"],
)
def test_auto_follows_the_sentence_transformers_pooling(tmp_path, tiny_backbone, modes, expected):
    assert resolve_pooling(sentence_transformers_folder(tmp_path, tiny_backbone, **modes), "auto") == expected


def test_auto_is_the_own_head_for_other_backbones_and_explicit_choices_win(tmp_path, tiny_backbone):
    assert resolve_pooling(tiny_backbone, "auto") == "pooler"
    st = sentence_transformers_folder(tmp_path, tiny_backbone, mean_tokens=True)
    assert resolve_pooling(st, "cls") == "cls"
    with pytest.raises(BackboneError, match="model.pooling must be one of"):
        resolve_pooling(st, "max")


def predicted(config, ckpt_path, out) -> None:
    """`textcls predict` of data.predict_file with `ckpt_path` into `out`."""
    run(
        "predict",
        "--config",
        str(config),
        "--ckpt_path",
        str(ckpt_path),
        "--prediction.output_path",
        str(out),
        cwd=out.parent,
    )


def probs_of(path):
    frame = pd.read_csv(path)
    return frame[[c for c in frame.columns if c.startswith("prob_")]].to_numpy()


def fit_pooled(tmp_path, backbone, files, **model):
    config = write_config(tmp_path, backbone, files, max_epochs=2, precision="32-true")
    cfg = yaml.safe_load(config.read_text())
    cfg["model"].update(model)
    config.write_text(yaml.safe_dump(cfg))
    fit = run("fit", "--config", str(config), cwd=tmp_path)
    return config, fit


def test_pooled_head_fits_exports_with_its_code_and_agrees_everywhere(tmp_path, tiny_backbone, data_files):
    from transformers import AutoModelForSequenceClassification, pipeline

    backbone = sentence_transformers_folder(tmp_path, tiny_backbone, mean_tokens=True)
    config, fit = fit_pooled(tmp_path, backbone, data_files)
    assert "model.pooling 'mean'" in fit.stdout + fit.stderr  # auto says what it chose
    best = tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt"
    assert torch.load(best, weights_only=True)["hyper_parameters"]["pooling"] == "mean"  # never "auto"
    out = tmp_path / "pred.csv"
    predicted(config, "best", out)
    expected = probs_of(out)

    folder = tmp_path / "exported"
    # the ONNX graph of the pooled forward is checked against PyTorch on real texts as it is written
    run(
        "export",
        *("--ckpt_path", str(best), "--output_dir", str(folder)),
        *("--onnx", "true", "--check_file", str(data_files["predict"])),
        cwd=tmp_path,
    )
    assert (folder / "model.onnx").is_file()
    written = json.loads((folder / "config.json").read_text())
    assert written["textcls_pooling"] == "mean" and (folder / "modeling_textcls.py").is_file()
    assert (
        written["auto_map"]["AutoModelForSequenceClassification"] == "modeling_textcls.PooledTextClassifier"
    )
    assert "trust_remote_code=True" in (folder / "README.md").read_text()

    texts = pd.read_csv(data_files["predict"])["text"].tolist()
    # transformers alone, with the folder's own code (no textcls class involved in loading)
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__module__ != PooledTextClassifier.__module__
    classify = pipeline("text-classification", model=model, tokenizer=str(folder))
    scores = classify(texts, top_k=None, truncation=True, function_to_apply="none")
    logits = np.array(
        [[next(s["score"] for s in row if s["label"] == name) for name in LABELS] for row in scores]
    )
    temperature = json.loads((folder / "calibration.json").read_text())["temperature"]
    from_pipeline = torch.softmax(torch.tensor(logits) / temperature, -1).numpy()
    np.testing.assert_allclose(from_pipeline, expected, atol=1e-5)
    # the folder through textcls: the predictor and `predict --ckpt_path FOLDER`
    np.testing.assert_allclose(load_predictor(folder).predict_probs(texts), expected, atol=1e-5)
    again = tmp_path / "pred_folder.csv"
    predicted(config, str(folder), again)
    np.testing.assert_allclose(probs_of(again), expected, atol=1e-5)
    # int8 quantizes the pooled head's Linear layers too; explain follows the pooled forward
    int8 = load_predictor(folder, quantize="int8")
    assert type(int8.model.classifier).__module__.startswith("torch.ao.nn.quantized")
    np.testing.assert_allclose(int8.predict_probs(texts).sum(1), 1, atol=1e-5)
    explained = run(
        "explain", "--ckpt_path", str(folder), "--text", texts[0], "--format", "text", cwd=tmp_path
    )
    assert any(word in explained.stdout for word in texts[0].split())


def test_pooled_head_reads_long_texts_in_windows(tmp_path, tiny_backbone, data_files):
    backbone = sentence_transformers_folder(tmp_path, tiny_backbone, mean_tokens=True)
    config = write_config(tmp_path, backbone, data_files, max_epochs=1, precision="32-true")
    cfg = yaml.safe_load(config.read_text())
    cfg["data"].update(max_length=6, long_text="chunks", chunk_stride=2)
    config.write_text(yaml.safe_dump(cfg))
    run("fit", "--config", str(config), cwd=tmp_path)
    out = tmp_path / "pred.csv"
    predicted(config, "best", out)
    best = tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt"
    predictor = load_predictor(best)
    assert isinstance(predictor.model, PooledTextClassifier) and predictor.layout.chunked
    texts = pd.read_csv(data_files["predict"])["text"].tolist()
    np.testing.assert_allclose(predictor.predict_probs(texts), probs_of(out), atol=1e-5)


def test_checkpoint_from_before_pooling_keeps_its_head(tmp_path, tiny_backbone, data_files):
    backbone = sentence_transformers_folder(tmp_path, tiny_backbone, mean_tokens=True)
    config, _ = fit_pooled(tmp_path, backbone, data_files, pooling="pooler")
    ckpt_path = tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert ckpt["hyper_parameters"]["pooling"] == "pooler"
    new = tmp_path / "new.csv"
    predicted(config, str(ckpt_path), new)
    # what a checkpoint written before model.pooling existed looks like: no pooling at all, on a
    # backbone whose `auto` would now pick another head
    del ckpt["hyper_parameters"]["pooling"]
    old_path = tmp_path / "old.ckpt"
    torch.save(ckpt, old_path)
    old = tmp_path / "old.csv"
    predicted(config, str(old_path), old)
    np.testing.assert_allclose(probs_of(old), probs_of(new), atol=1e-6)
    texts = pd.read_csv(data_files["predict"])["text"].tolist()
    np.testing.assert_allclose(load_predictor(old_path).predict_probs(texts), probs_of(new), atol=1e-5)


def test_multi_label_head_starts_at_each_labels_log_prior_odds(tmp_path, tiny_backbone, multi_label_files):
    from textcls.data import TextClassificationData
    from textcls.model import TextClassifier

    data = TextClassificationData(
        train_file=str(multi_label_files["train"]),
        model_name_or_path=tiny_backbone,
        multi_label=True,
        label_column="labels",
        cache_dir=str(tmp_path / "cache"),
    )
    data.prepare_data()
    data.setup("fit")
    for pooling in ("pooler", "mean"):
        model = TextClassifier(tiny_backbone, data.label_names, multi_label=True, pooling=pooling)
        model._trainer = SimpleNamespace(datamodule=data)
        model.setup("fit")
        rows = len(data.frames["train"])
        prior = np.array(data.class_counts("train")) / rows
        bias = model.model.classifier.bias.detach().numpy()
        np.testing.assert_allclose(bias, np.log(prior / (1 - prior)), rtol=1e-5)
        # so each label starts near its base rate, not at 0.5
        assert np.all(torch.sigmoid(torch.tensor(bias)).numpy() < 0.5)


def test_pooler_without_trained_weights_is_reported(tmp_path, tiny_backbone):
    from transformers import BertConfig, BertModel

    folder = tmp_path / "no-pooler"
    shutil.copytree(tiny_backbone, folder)
    BertModel(BertConfig.from_pretrained(folder), add_pooling_layer=False).save_pretrained(folder)
    with pytest.warns(UserWarning, match="has no trained pooler weights"):
        load_classifier(str(folder), LABELS, pooling="pooler")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the backbone that has them: no word
        load_classifier(tiny_backbone, LABELS, pooling="pooler")
