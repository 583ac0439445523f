"""Multi-label data, loss, thresholds and predictions (textcls/data/multilabel.py, textcls/thresholds.py)."""

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.test_cli import run, write_config
from textcls.data import DataError, TextClassificationData
from textcls.data.multilabel import iterative_split, multi_hot, read_label_sets
from textcls.model import TextClassifier
from textcls.tasks.multi_label import positive_weights
from textcls.thresholds import Thresholds, decide, tune_thresholds


def frame_of(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_joined_labels_are_sorted_deduplicated_sets():
    frame = frame_of(labels=["b;a", " a ; a", "", "c", None])
    sets = read_label_sets(frame, "train", "labels", None, ";")
    assert sets.tolist() == [("a", "b"), ("a",), (), ("c",), ()]


def test_indicator_columns_become_sets_named_by_column():
    frame = frame_of(text=["x", "y", "z"], toxic=["1", "0", "1"], funny=[0, 0, 1], angry=["", "0", "1.0"])
    sets = read_label_sets(frame, "train", "label", ["toxic", "funny", "angry"], ";")
    assert sets.tolist() == [("toxic",), (), ("angry", "funny", "toxic")]


@pytest.mark.parametrize("bad", ["2", "yes", "0.5"])
def test_indicator_cell_that_is_not_0_or_1_is_refused(bad):
    frame = frame_of(text=["x", "y"], toxic=["1", bad])
    with pytest.raises(DataError, match=rf"column 'toxic' holds '{bad}' at row 1.*0 or 1"):
        read_label_sets(frame, "train", "label", ["toxic"], ";")


def test_missing_label_columns_are_named():
    with pytest.raises(DataError, match="no column 'funny' of data.label_columns"):
        read_label_sets(frame_of(text=["x"], toxic=["1"]), "train", "label", ["toxic", "funny"], ";")
    with pytest.raises(DataError, match="no label column 'labels'"):
        read_label_sets(frame_of(text=["x"]), "train", "labels", None, ";")


def test_iterative_split_keeps_every_label_in_train_with_close_proportions():
    rng = np.random.default_rng(0)
    names = [f"l{i}" for i in range(8)]
    rates = np.linspace(0.03, 0.4, 8)
    sets = [tuple(n for n, r in zip(names, rates, strict=True) if rng.random() < r) for _ in range(2000)]
    parts = iterative_split(sets, {"validation": 0.1, "test": 0.1}, seed=0)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(2000))  # a partition
    assert abs(len(parts["validation"]) - 200) <= 5 and abs(len(parts["test"]) - 200) <= 5
    matrix = multi_hot(sets, names)
    overall = matrix.mean(0)
    for split, rows in parts.items():
        share = matrix[rows].mean(0)
        assert (matrix[rows].sum(0) > 0).all(), split
        # each label's share within 1.5 points of the whole (random splits of 200 rows miss by ~3)
        assert np.abs(share - overall).max() < 0.015, (split, share - overall)


def test_split_off_validation_is_stratified_and_label_only_in_test_is_refused(tmp_path, tiny_backbone):
    rows = [
        {"text": f"text {i}", "labels": "a;b" if i % 4 == 0 else ("a" if i % 2 else "c")} for i in range(200)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame([{"text": "x", "labels": "a;zebra"}]).to_csv(tmp_path / "test.csv", index=False)
    common = dict(multi_label=True, label_column="labels", model_name_or_path=tiny_backbone)
    data = TextClassificationData(train_file=str(tmp_path / "train.csv"), **common)
    assert data.label_names == ["a", "b", "c"]
    assert set(data.frames) == {"train", "validation", "test"}
    counts = {split: data.class_counts(split) for split in data.frames}
    # a: 150 texts (50 with b), b: 50, c: 50; 10% each to validation and test, label by label
    assert counts["validation"] == counts["test"] == [15, 5, 5] and counts["train"] == [120, 40, 40]
    data = TextClassificationData(
        train_file=str(tmp_path / "train.csv"), test_file=str(tmp_path / "test.csv"), **common
    )
    with pytest.raises(DataError, match="labels in test never occur in train: zebra"):
        _ = data.frames


def test_single_label_data_under_multi_label_warns(tmp_path, tiny_backbone):
    pd.DataFrame([{"text": f"t {i}", "labels": "ab"[i % 2]} for i in range(40)]).to_csv(
        tmp_path / "t.csv", index=False
    )
    data = TextClassificationData(
        train_file=str(tmp_path / "t.csv"),
        multi_label=True,
        label_column="labels",
        model_name_or_path=tiny_backbone,
    )
    with pytest.warns(UserWarning, match="no training text carries more than one label"):
        _ = data.frames


def test_label_columns_need_multi_label():
    with pytest.raises(DataError, match="data.label_columns is for multi-label data"):
        TextClassificationData(label_columns=["a", "b"])


def test_encoded_batches_carry_multi_hot_rows(tmp_path, tiny_backbone, multi_label_files):
    data = TextClassificationData(
        train_file=str(multi_label_files["train"]),
        multi_label=True,
        label_column="labels",
        model_name_or_path=tiny_backbone,
        cache_dir=str(tmp_path / "cache"),
        batch_size=4,
    )
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape[1] == 3
    frame = data.frames["validation"]
    expected = multi_hot(frame["label"].iloc[batch["idx"].numpy()].tolist(), data.label_names)
    assert np.array_equal(batch["labels"].numpy(), expected)


def test_positive_weights_are_negatives_over_positives_clamped():
    weights = positive_weights([10, 1, 0, 1000], rows=1000)
    assert weights.tolist() == pytest.approx([99.0, 100.0, 100.0, 0.01])


def test_loss_is_binary_cross_entropy_with_pos_weight_and_smoothing(tiny_backbone):
    model = TextClassifier(tiny_backbone, ["a", "b", "c"], multi_label=True, label_smoothing=0.1)
    model.loss_weights = torch.tensor([1.0, 2.0, 3.0])
    logits, labels = torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[1.0, 0.0, 1.0]])
    targets = labels * 0.9 + 0.05
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, targets, pos_weight=model.loss_weights
    )
    assert model.loss(logits, labels).item() == pytest.approx(expected.item())


def test_tuned_thresholds_maximise_each_labels_f1_and_fall_back_when_rare():
    probs = np.array([[0.9, 0.30], [0.6, 0.2], [0.4, 0.1], [0.35, 0.05], [0.2, 0.3], [0.7, 0.6]] * 2)
    targets = np.array([[1, 0], [1, 0], [1, 0], [0, 0], [0, 0], [1, 1]] * 2)
    tuned = tune_thresholds(probs, targets, default=0.5)
    # label 0: cutting at 0.4 keeps all 8 positives and no negative (F1 1): the threshold sits halfway
    # between 0.4 and the next lower score, 0.35; label 1 has 2 positives
    assert tuned.values == [pytest.approx(0.375), 0.5]
    assert tuned.tuned == [True, False] and tuned.positives == [8, 2]
    assert tuned.fallback_labels(["a", "b"]) == ["b"]
    assert Thresholds.from_dict(tuned.to_dict()) == tuned


def test_decide_applies_per_label_thresholds_and_at_least_one():
    thresholds = Thresholds([0.5, 0.2, 0.9])
    probs = torch.tensor([[0.6, 0.1, 0.95], [0.4, 0.19, 0.8], [0.1, 0.3, 0.2]])
    assert decide(probs, thresholds).tolist() == [
        [True, False, True],
        [False, False, False],
        [False, True, False],
    ]
    assert decide(probs, thresholds, at_least_one=True)[1].tolist() == [False, False, True]


def multi_label_config(tmp_path, backbone, files, **model) -> str:
    """tests/test_cli.py's config, made multi-label: a 20% validation split, logs under `ml`."""
    path = write_config(tmp_path, backbone, files, max_epochs=6)
    config = yaml.safe_load(path.read_text())
    config["model"].update(model)
    config["data"].update(multi_label=True, label_column="labels", val_fraction=0.2)
    config["trainer"]["logger"]["init_args"]["name"] = "ml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_fit_stores_tuned_thresholds_and_predict_applies_them(
    tmp_path, tiny_backbone, multi_label_files, bf16_cpu
):
    config = multi_label_config(tmp_path, tiny_backbone, multi_label_files)
    run("fit", "--config", config, cwd=tmp_path)
    best = tmp_path / "logs" / "ml" / "version_0" / "checkpoints" / "best.ckpt"
    ckpt = torch.load(best, weights_only=True)
    assert ckpt["hyper_parameters"]["multi_label"] is True
    thresholds = Thresholds.from_dict(ckpt["thresholds"])
    assert len(thresholds.values) == 3 and all(thresholds.tuned) and sum(thresholds.positives) >= 30

    out = tmp_path / "preds.csv"
    # the checkpoint alone says it is multi-label
    args = ["--ckpt_path", str(best), "--data.predict_file", str(multi_label_files["predict"])]
    run("predict", *args, "--prediction.output_path", str(out), cwd=tmp_path)
    preds = pd.read_csv(out, keep_default_na=False)
    names = ["food", "sports", "tech"]
    assert list(preds.columns) == [
        "text",
        "labels",
        *[f"prob_{n}" for n in names],
        *[f"pred_{n}" for n in names],
    ]
    assert preds["text"].tolist() == pd.read_csv(multi_label_files["predict"])["text"].tolist()
    probs = preds[[f"prob_{n}" for n in names]].to_numpy()
    chosen = probs >= np.array(thresholds.values)
    assert np.array_equal(preds[[f"pred_{n}" for n in names]].to_numpy(), chosen.astype(int))
    assert preds["labels"].tolist() == [
        ";".join(n for n, c in zip(names, row, strict=True) if c) for row in chosen
    ]

    at_least_one = tmp_path / "one.csv"
    run(
        "predict",
        *args,
        "--prediction.output_path",
        str(at_least_one),
        "--prediction.at_least_one",
        "true",
        cwd=tmp_path,
    )
    assert (pd.read_csv(at_least_one, keep_default_na=False)["labels"] != "").all()


def test_uncertain_below_is_refused_for_multi_label(tmp_path, tiny_backbone, multi_label_files):
    config = multi_label_config(tmp_path, tiny_backbone, multi_label_files)
    proc = run(
        "predict",
        "--config",
        config,
        "--ckpt_path",
        "none",
        "--prediction.uncertain_below",
        "0.5",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2 and "for single-label models" in proc.stderr


def test_fixed_threshold_when_tuning_is_off(tmp_path, tiny_backbone, multi_label_files):
    config = multi_label_config(
        tmp_path, tiny_backbone, multi_label_files, tune_thresholds=False, threshold=0.3
    )
    run("fit", "--config", config, "--data_check.enabled", "false", "--trainer.max_epochs", "1", cwd=tmp_path)
    ckpt = torch.load(tmp_path / "logs" / "ml" / "version_0" / "checkpoints" / "best.ckpt", weights_only=True)
    assert ckpt["thresholds"]["values"] == [0.3] * 3 and not any(ckpt["thresholds"]["tuned"])


def test_best_checkpoint_is_scored_at_its_own_thresholds(tmp_path, tiny_backbone, multi_label_files):
    """Fit scores each validation at the thresholds tuned there (scikit-learn); `validate` scores the
    saved checkpoint with its stored thresholds (torchmetrics): the same number."""
    config = multi_label_config(tmp_path, tiny_backbone, multi_label_files)
    run("fit", "--config", config, "--data_check.enabled", "false", "--trainer.max_epochs", "3", cwd=tmp_path)
    best = tmp_path / "logs" / "ml" / "version_0" / "checkpoints" / "best.ckpt"
    ckpt = torch.load(best, weights_only=True)
    score = next(
        v["best_model_score"] for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint")
    )
    assert score > 0  # at a fixed 0.5 this tiny model scores 0 (its probabilities stay below 0.5)
    validate = run("validate", "--config", config, "--ckpt_path", str(best), cwd=tmp_path)
    logged = float(validate.stdout.split("val/f1_macro")[1].split()[1])
    assert logged == pytest.approx(float(score), abs=1e-4)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"label_column": "tags"}, "train data has no label column 'tags'"),
        (
            {"label_columns": ["food", "sports"]},
            "train data has no column 'food', 'sports' of data.label_columns",
        ),
    ],
)
def test_bad_multi_label_input_stops_fit_in_one_line(
    tmp_path, tiny_backbone, multi_label_files, change, message
):
    config = multi_label_config(tmp_path, tiny_backbone, multi_label_files)
    args = [
        f"--data.{k}={v if isinstance(v, str) else yaml.safe_dump(v, default_flow_style=True).strip()}"
        for k, v in change.items()
    ]
    proc = run("fit", "--config", config, *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_tuning_does_not_give_an_unlearnt_label_to_every_text():
    rng = np.random.default_rng(0)
    targets = np.zeros((400, 2), dtype=int)
    targets[:40, 0] = targets[::5, 1] = 1
    probs = np.column_stack(
        [targets[:, 0] * 0.5 + rng.random(400) * 0.5, rng.random(400)]
    )  # label 1 unlearnt
    tuned = tune_thresholds(probs, targets, default=0.5)
    assert tuned.tuned == [True, False] and tuned.values[1] == 0.5
    assert tuned.undiscriminating_labels(["learnt", "unlearnt"]) == ["unlearnt"]


def test_tuned_thresholds_sit_between_validation_probabilities():
    rng = np.random.default_rng(1)
    targets = (rng.random((200, 3)) < 0.3).astype(int)
    probs = np.clip(targets * 0.3 + rng.random((200, 3)) * 0.7, 0, 1).astype(np.float32)
    tuned = tune_thresholds(probs, targets, default=0.5)
    assert all(tuned.tuned)
    for j, threshold in enumerate(tuned.values):
        assert threshold not in set(probs[:, j].tolist())  # no text sits on the edge
        # a probability 1 ulp off decides as the exact one
        nudged = np.nextafter(probs[:, j], np.float32(0))
        np.testing.assert_array_equal(nudged >= threshold, probs[:, j] >= threshold)
