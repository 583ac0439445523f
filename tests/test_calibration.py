"""Calibration: temperature scaling, ECE, Brier score, the target-precision cut-off, and that the stored
values reach every output (predict, the test report, export, the app)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import make_rows, write_jsonl
from tests.test_cli import run, write_config
from textcls.calibration import (
    MIN_MISTAKES,
    Calibration,
    brier_score,
    calibrate,
    calibrated_probs,
    cutoff_for_precision,
    expected_calibration_error,
    fit_temperature,
    precision_coverage,
)


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(true_t):
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(20_000, 4, generator=gen) * 3  # the calibrated logits
    labels = torch.multinomial(base.softmax(-1), 1, generator=gen).squeeze(1)
    # a model whose logits are base * true_t is calibrated after dividing by true_t
    assert fit_temperature(base * true_t, labels) == pytest.approx(true_t, rel=0.05)


def test_scaling_never_changes_the_most_probable_class():
    logits = torch.randn(500, 7, generator=torch.Generator().manual_seed(1)) * 10
    for t in (0.01, 0.3, 1.0, 4.0, 100.0):
        assert torch.equal(calibrated_probs(logits, t).argmax(-1), logits.argmax(-1))


def test_a_validation_split_without_enough_mistakes_keeps_the_raw_softmax():
    gen = torch.Generator().manual_seed(4)
    labels = torch.arange(50) % 3
    logits = torch.randn(50, 3, generator=gen)
    logits[torch.arange(50), labels] = logits.max(-1).values + 0.5  # every row right, some barely
    logits[0] = torch.tensor([0.0, -0.2877, -0.2877])  # right with a top probability of 0.40
    assert calibrated_probs(logits)[0, 0] == pytest.approx(0.40, abs=0.01)
    # the likelihood keeps rising as T falls: unchecked, T runs to the bound and 0.40 becomes certainty
    assert fit_temperature(logits, labels) < 0.05
    calibration = calibrate(logits, labels)
    assert calibration.temperature == 1.0
    assert calibration.note.startswith("0 of 50 validation predictions are wrong")
    assert calibration.confidence[0] == pytest.approx(0.40, abs=0.01) and calibration.correct.all()
    # the same with MIN_MISTAKES - 1 wrong rows; with MIN_MISTAKES a temperature is fitted
    for wrong, fitted in ((MIN_MISTAKES - 1, False), (MIN_MISTAKES, True)):
        flipped = labels.clone()
        flipped[1 : 1 + wrong] = (labels[1 : 1 + wrong] + 1) % 3
        calibration = calibrate(logits, flipped)
        assert (calibration.temperature != 1.0) == fitted and (calibration.note is None) == fitted
        assert (~calibration.correct).sum() == wrong
    # the note travels with the calibration (checkpoint, calibration.json); calibrate=false has none
    stored = Calibration.from_dict(json.loads(json.dumps(calibrate(logits, labels).to_dict(tensors=False))))
    assert stored.temperature == 1.0 and stored.note == calibrate(logits, labels).note
    assert calibrate(logits, labels, fit=False).note is None


def test_the_report_says_why_the_temperature_is_1(tmp_path):
    from textcls.report import compose_report
    from textcls.tasks import SingleLabel

    test = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["x", "y", "x", "y"], "row": range(4)})
    probs = np.array([[0.6, 0.4], [0.3, 0.7], [0.45, 0.55], [0.2, 0.8]])
    note = "0 of 50 validation predictions are wrong, fewer than the 5 a temperature needs"
    calibration = {
        "raw_probs": probs,
        "calibration": Calibration(1.0, np.full(50, 0.9), np.ones(50, bool), note=note),
        "target": 0.95,
    }
    task = SingleLabel(["x", "y"], calibration=calibration["calibration"])
    options = {"raw_probs": calibration["raw_probs"], "target_precision": calibration["target"]}
    metrics, _ = compose_report(tmp_path, task, test, probs, {"model": "m"}, **options)
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["temperature"] == metrics["temperature"] == 1.0 and stored["temperature_note"] == note
    assert f"Temperature 1.0, the raw softmax: {note}." in (tmp_path / "report.md").read_text()
    # a fitted temperature carries no note
    calibration["calibration"] = Calibration(0.7, np.full(50, 0.9), np.ones(50, bool))
    task = SingleLabel(["x", "y"], calibration=calibration["calibration"])
    metrics, _ = compose_report(tmp_path / "fitted", task, test, probs, {"model": "m"}, **options)
    assert (
        "temperature_note" not in metrics
        and "Temperature 0.7" not in (tmp_path / "fitted" / "report.md").read_text()
    )


def test_ece_of_a_hand_checked_example():
    # confidences 0.9, 0.9 (bin 13, one right: accuracy 0.5) and 0.6, 0.6 (bin 9, both right: accuracy 1)
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    y_true = np.array([0, 0, 0, 1])
    # 2/4 * |0.5 - 0.9| + 2/4 * |1.0 - 0.6| = 0.2 + 0.2
    assert expected_calibration_error(probs, y_true) == pytest.approx(0.4)
    # with one bin: |3/4 - 0.75| = 0
    assert expected_calibration_error(probs, y_true, n_bins=1) == pytest.approx(0.0)
    # Brier: (0.01+0.01), (0.81+0.81), (0.16+0.16), (0.16+0.16), averaged
    assert brier_score(probs, y_true) == pytest.approx((0.02 + 1.62 + 0.32 + 0.32) / 4)


def test_temperature_scaling_lowers_the_ece_of_an_overconfident_model():
    gen = torch.Generator().manual_seed(2)
    base = torch.randn(5000, 3, generator=gen) * 2
    labels = torch.multinomial(base.softmax(-1), 1, generator=gen).squeeze(1)
    overconfident = base * 3
    t = fit_temperature(overconfident, labels)
    raw = expected_calibration_error(overconfident.softmax(-1).numpy(), labels.numpy())
    scaled = expected_calibration_error(calibrated_probs(overconfident, t).numpy(), labels.numpy())
    assert scaled < 0.02 < raw


def test_the_cutoff_meets_the_target_on_the_data_it_was_chosen_on():
    rng = np.random.default_rng(3)
    for _ in range(50):
        confidence = rng.uniform(0.3, 1.0, 300).round(2)  # with ties
        correct = rng.random(300) < confidence
        target = rng.uniform(0.7, 1.0)
        chosen = cutoff_for_precision(confidence, correct, target)
        curve = precision_coverage(confidence, correct)
        if chosen is None:
            assert curve["precision"].max() < target
            continue
        cutoff, precision, coverage = chosen
        keep = confidence >= cutoff
        assert correct[keep].mean() >= target and correct[keep].mean() == pytest.approx(precision)
        assert keep.mean() == pytest.approx(coverage)
        # the smallest such cut-off: no lower one reaches the target
        lower = curve["cutoff"] < cutoff
        assert (curve["precision"][lower] < target).all()


def test_no_cutoff_reaches_an_impossible_target():
    calibration = Calibration(1.0, np.array([0.9, 0.8, 0.7]), np.array([False, True, True]))
    assert calibration.cutoff(0.99) is None
    assert calibration.cutoff(0.6) == (0.7, pytest.approx(2 / 3), 1.0)
    assert calibration.cutoff(1.0) is None  # the most confident is wrong
    stored = Calibration.from_dict(json.loads(json.dumps(calibration.to_dict(tensors=False))))
    assert stored.temperature == 1.0 and stored.cutoff(0.6)[0] == pytest.approx(0.7)


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_backbone):
    """The tiny model fitted for two epochs, tested, and exported."""
    tmp = tmp_path_factory.mktemp("calib")
    files = {
        "train": write_jsonl(tmp / "train.jsonl", make_rows(40, seed=1)),
        "test": write_jsonl(tmp / "test.jsonl", make_rows(10, seed=2)),
        "predict": tmp / "predict.csv",
    }
    pd.DataFrame({"text": [r["text"] for r in make_rows(6, seed=3)]}).to_csv(files["predict"], index=False)
    config = write_config(tmp, tiny_backbone, files, max_epochs=2)
    run("fit", "--config", str(config), cwd=tmp)
    checkpoints = tmp / "logs" / "tiny" / "version_0" / "checkpoints"
    run("test", "--config", str(config), "--ckpt_path", "best", cwd=tmp)
    return {"tmp": tmp, "config": config, "best": checkpoints / "best.ckpt", "files": files}


def _stored(path) -> Calibration:
    return Calibration.from_dict(torch.load(path, weights_only=True)["calibration"])


def test_checkpoints_carry_their_own_temperature(trained):
    best, last = _stored(trained["best"]), _stored(trained["best"].with_name("last.ckpt"))
    split_rows = json.loads((trained["best"].parents[1] / "split_rows.json").read_text())
    for calibration in (best, last):
        assert calibration.temperature > 0 and calibration.temperature != 1.0
        # every validation row once
        assert len(calibration.confidence) == len(calibration.correct) == len(split_rows["validation"])
    metrics = json.loads((trained["tmp"] / "logs" / "tiny" / "version_1" / "metrics.json").read_text())
    assert metrics["temperature"] == pytest.approx(best.temperature)
    for key in ("ece", "ece_uncalibrated", "brier", "brier_uncalibrated", "coverage_at_cutoff"):
        assert key in metrics
    assert metrics["target_precision"] == 0.95
    report = trained["tmp"] / "logs" / "tiny" / "version_1"
    for name in ("reliability_diagram.png", "precision_coverage.png"):
        assert (report / name).read_bytes()[:4] == b"\x89PNG"
    preds = pd.read_csv(report / "predictions.csv")
    # the report's confidences are the calibrated ones
    assert metrics["ece"] == pytest.approx(
        expected_calibration_error(
            np.stack([preds["confidence"], 1 - preds["confidence"]], 1),
            np.where(preds["true_label"] == preds["predicted_label"], 0, 1),
        ),
        abs=1e-6,
    )


def _predict(trained, source, out, *extra):
    run(
        "predict",
        "--ckpt_path",
        str(source),
        "--data.predict_file",
        str(trained["files"]["predict"]),
        "--prediction.output_path",
        str(out),
        *extra,
        cwd=trained["tmp"],
    )
    return pd.read_csv(out)


def test_predict_export_and_app_apply_the_stored_temperature(trained, tiny_backbone, bf16_cpu):
    from textcls.app import stored_target, uncertain_threshold
    from textcls.export import export
    from textcls.inference import load_predictor

    tmp = trained["tmp"]
    preds = _predict(trained, trained["best"], tmp / "p.csv")
    texts = preds["text"].tolist()
    columns = [c for c in preds.columns if c.startswith("prob_")]
    stored = _stored(trained["best"])

    # the same network's raw softmax, scaled by the stored temperature, is what predict wrote
    raw = load_predictor(trained["best"])
    raw.calibration = None
    logits = np.log(raw.predict_probs(texts))
    expected = calibrated_probs(torch.as_tensor(logits), stored.temperature).numpy()
    np.testing.assert_allclose(preds[columns].to_numpy(), expected, atol=1e-5)
    assert (preds[columns].to_numpy().argmax(1) == logits.argmax(1)).all()

    folder = export(str(trained["best"]), str(tmp / "exported"), target_precision=0.5)
    assert json.loads((folder / "calibration.json").read_text())["temperature"] == pytest.approx(
        stored.temperature
    )
    from_folder = load_predictor(folder)
    np.testing.assert_allclose(from_folder.predict_probs(texts), preds[columns].to_numpy(), atol=1e-5)
    via_cli = _predict(trained, folder, tmp / "f.csv")
    np.testing.assert_allclose(via_cli[columns].to_numpy(), preds[columns].to_numpy(), atol=1e-5)

    # the app: the stored target's cut-off by default, the slider as an explicit override
    assert stored_target(from_folder) == 0.5
    threshold, why = uncertain_threshold(from_folder, 0.5, 0.0)
    expected_cutoff = stored.cutoff(0.5)
    assert threshold == pytest.approx(expected_cutoff[0] if expected_cutoff else 0.0)
    assert uncertain_threshold(from_folder, 0.5, 0.8)[0] == 0.8
    assert stored_target(load_predictor(trained["best"])) == 0.0


def test_predict_target_precision(trained):
    tmp = trained["tmp"]
    stored = _stored(trained["best"])
    target = float(np.round(stored.correct.mean(), 2))  # reachable: keeping everything has this precision
    chosen = stored.cutoff(target)
    assert chosen is not None
    preds = _predict(trained, trained["best"], tmp / "t.csv", "--prediction.target_precision", str(target))
    uncertain = preds["label"] == "UNCERTAIN"
    assert (uncertain == (preds["confidence"] < chosen[0])).all()
    # an explicit uncertain_below overrides the target
    preds = _predict(
        trained,
        trained["best"],
        tmp / "u.csv",
        "--prediction.target_precision",
        str(target),
        "--prediction.uncertain_below",
        "1.0",
    )
    assert set(preds["label"]) == {"UNCERTAIN"}


def test_unreachable_target_keeps_every_prediction_and_says_so(trained, tmp_path):
    content = torch.load(trained["best"], weights_only=True)
    n = len(content["calibration"]["correct"])
    content["calibration"]["correct"] = torch.zeros(n, dtype=torch.bool)  # every validation answer wrong
    ckpt = tmp_path / "wrong.ckpt"
    torch.save(content, ckpt)
    out = tmp_path / "w.csv"
    proc = run(
        "predict",
        "--ckpt_path",
        str(ckpt),
        "--data.predict_file",
        str(trained["files"]["predict"]),
        "--prediction.output_path",
        str(out),
        "--prediction.target_precision",
        "0.9",
        cwd=trained["tmp"],
    )
    assert "UNCERTAIN" not in set(pd.read_csv(out)["label"])
    lines = [line for line in proc.stderr.splitlines() if "no confidence cut-off reaches it" in line]
    assert len(lines) == 1 and "keeping every prediction" in lines[0]


def test_calibrate_false_keeps_the_raw_softmax(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=1)
    run("fit", "--config", str(config), "--model.calibrate", "false", cwd=tmp_path)
    stored = _stored(tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt")
    assert stored.temperature == 1.0 and stored.confidence is not None


@pytest.mark.slow
def test_validation_without_mistakes_keeps_temperature_1_and_the_report_says_why(
    tmp_path, tiny_backbone, data_files
):
    # validation labels are what the untrained model answers, and fit barely moves it (learning rate
    # 1e-12): no validation mistakes in either epoch
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=2, precision="32-true")
    texts = pd.DataFrame({"text": [r["text"] for r in make_rows(4, seed=5)]})
    texts.to_csv(tmp_path / "val_texts.csv", index=False)
    run(
        "predict", "--config", str(config), "--ckpt_path", "none", "--data.predict_file",
        str(tmp_path / "val_texts.csv"), "--prediction.output_path", str(tmp_path / "untrained.csv"), cwd=tmp_path,
    )  # fmt: skip
    answers = pd.read_csv(tmp_path / "untrained.csv")
    write_jsonl(tmp_path / "val.jsonl", answers[["text", "label"]].to_dict("records"))
    fit = run(
        "fit", "--config", str(config), "--data.val_file", str(tmp_path / "val.jsonl"),
        "--model.learning_rate", "1e-12", cwd=tmp_path,
    )  # fmt: skip
    note = "0 of 12 validation predictions are wrong"
    said = [line for line in (fit.stdout + fit.stderr).splitlines() if note in line]
    assert len(said) == 1 and "temperature 1, the raw softmax" in said[0]  # once, not per epoch
    (best,) = (tmp_path / "logs" / "tiny").glob("version_*/checkpoints/best.ckpt")
    stored = _stored(best)
    assert stored.temperature == 1.0 and stored.note.startswith(note) and stored.correct.all()

    run("test", "--config", str(config), "--ckpt_path", "best", cwd=tmp_path)
    report = sorted((tmp_path / "logs" / "tiny").glob("version_*/metrics.json"))[-1].parent
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["temperature"] == 1.0 and metrics["temperature_note"] == stored.note
    assert f"Temperature 1.0, the raw softmax: {stored.note}." in (report / "report.md").read_text()
    tested = pd.read_csv(report / "predictions.csv")
    assert tested["confidence"].min() < 0.9  # the raw softmax of a model that learnt nothing


def test_target_without_validation_record_or_out_of_range():
    from textcls.calibration import cutoff_message
    from textcls.callbacks import PredictionError, PredictionWriter

    cutoff, message = cutoff_message(None, 0.9)
    assert cutoff == 0.0 and "no validation predictions" in message and "keeping every prediction" in message
    for bad in (0.0, 1.5):
        with pytest.raises(PredictionError, match="target_precision must be in"):
            PredictionWriter(target_precision=bad)
