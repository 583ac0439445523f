"""End-to-end: the real `python -m textcls` entry point on a tiny model and tiny data."""

import contextlib
import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from textcls import cli

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """`textcls ARGS` in this process (no interpreter start-up and imports per call), with what it
    prints captured as a subprocess's would be; the exit code is main()'s `sys.exit` code."""
    out, err = io.StringIO(), io.StringIO()
    # Lightning logs to stderr through its own handler (pytest's log capture would take it instead)
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    saved = [(logger.handlers, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers, logger.propagate = [logging.StreamHandler(err)], False
    before = os.getcwd()
    code = 0
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            try:
                cli.main(list(args))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            except Exception:  # what an uncaught exception does to a process
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(before)
        for logger, (handlers, propagate) in zip(loggers, saved, strict=True):
            logger.handlers, logger.propagate = handlers, propagate
    proc = subprocess.CompletedProcess(["textcls", *args], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(
            f"textcls {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


def run_process(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m textcls ARGS` as a new process: for signals, several ranks and the real entry point."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "textcls", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        # as from a terminal: a shell starts background jobs (a CI script's `&`) with Ctrl+C ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"textcls {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


def write_config(tmp_path: Path, backbone: str, files: dict, **trainer) -> Path:
    config = {
        "model": {"model_name_or_path": backbone, "learning_rate": 3e-3},
        "data": {
            "train_file": str(files["train"]),
            "test_file": str(files["test"]),
            "predict_file": str(files["predict"]),
            "batch_size": 8,
            "cache_dir": str(tmp_path / "cache"),
        },
        "trainer": {
            "max_epochs": 4,
            "logger": {
                "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                "init_args": {"save_dir": str(tmp_path / "logs"), "name": "tiny"},
            },
            **trainer,
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_parses(config):
    proc = run("fit", "--config", str(config), "--print_config", cwd=ROOT)
    printed = yaml.safe_load(proc.stdout)
    assert printed["model"]["model_name_or_path"]
    # linked values are stated once: the backbone in the model section, the labels by the data
    assert "model_name_or_path" not in printed["data"] and "label_names" not in printed["model"]


def test_help_comes_from_docstrings():
    proc = run("fit", "--help", cwd=ROOT)
    assert "Fine-tunes a transformer encoder to classify text" in proc.stdout
    assert "Share of each class split off for validation" in proc.stdout


def test_fit_validate_test_predict(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files)
    fit = run("fit", "--config", str(config), cwd=tmp_path)
    assert "Label distribution" in fit.stderr + fit.stdout
    run_dir = tmp_path / "logs" / "tiny" / "version_0"
    assert (run_dir / "config.yaml").is_file() and list(run_dir.glob("events.out.tfevents.*"))
    best = run_dir / "checkpoints" / "best.ckpt"
    assert best.is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()

    ckpt = torch.load(best, weights_only=True)  # loads with no code execution
    assert ckpt["hyper_parameters"]["label_names"] == ["food", "sports", "tech"]
    assert ckpt["hyper_parameters"]["model_name_or_path"] == tiny_backbone
    assert ckpt["datamodule_hyper_parameters"]["max_length"] == 128

    validate = run("validate", "--config", str(config), "--ckpt_path", "best", cwd=tmp_path)
    assert "val/acc" in validate.stdout
    test = run("test", "--config", str(config), "--ckpt_path", "best", cwd=tmp_path)
    assert "test/f1_macro" in test.stdout

    # The checkpoint alone (no config) is enough to predict: it carries backbone, labels and max_length.
    out = tmp_path / "preds.jsonl"
    run(
        "predict",
        "--ckpt_path",
        str(best),
        "--data.predict_file",
        str(data_files["predict"]),
        "--prediction.output_path",
        str(out),
        cwd=tmp_path,
    )
    preds = pd.read_json(out, lines=True)
    inputs = pd.read_csv(data_files["predict"])
    assert preds["text"].tolist() == inputs["text"].tolist()  # one row per input, in input order
    assert set(preds["label"]) <= {"food", "sports", "tech"}
    probs = preds[["prob_food", "prob_sports", "prob_tech"]].to_numpy()
    assert abs(probs.sum(1) - 1).max() < 1e-5
    assert (preds["confidence"] == probs.max(1)).all()

    csv_out = tmp_path / "preds.csv"
    run(
        "predict",
        "--config",
        str(config),
        "--ckpt_path",
        "best",
        "--prediction.output_path",
        str(csv_out),
        "--prediction.uncertain_below",
        "1.0",
        cwd=tmp_path,
    )
    assert set(pd.read_csv(csv_out)["label"]) == {"UNCERTAIN"}


def test_missing_backbone_is_one_clear_line(tmp_path, data_files):
    config = write_config(tmp_path, "no-such-org/no-such-model", data_files)
    proc = run("fit", "--config", str(config), cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "backbone 'no-such-org/no-such-model' was not found" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("command", ["validate", "test", "predict"])
def test_evaluating_without_a_checkpoint_is_refused(tmp_path, tiny_backbone, data_files, command):
    config = write_config(tmp_path, tiny_backbone, data_files)
    proc = run(command, "--config", str(config), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert f"`{command}` needs --ckpt_path" in last and "--ckpt_path none" in last
    assert not (tmp_path / "logs").exists()  # refused before anything ran


def test_untrained_head_only_when_asked_and_named_so(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files)
    run("test", "--config", str(config), "--ckpt_path", "none", cwd=tmp_path)
    report = tmp_path / "logs" / "tiny" / "version_0"
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["model"] == f"untrained head on {Path(tiny_backbone).name}"
    assert "checkpoint" not in metrics  # measured no checkpoint: export and the app never match it
    assert "fine-tuned" not in (report / "report.md").read_text()


def test_test_report_records_the_checkpoint_it_measured(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=1)
    run("fit", "--config", str(config), cwd=tmp_path)
    run("test", "--config", str(config), "--ckpt_path", "last", cwd=tmp_path)
    logs = tmp_path / "logs" / "tiny"
    last = logs / "version_0" / "checkpoints" / "last.ckpt"
    metrics = json.loads((logs / "version_1" / "metrics.json").read_text())
    sha256 = hashlib.sha256(last.read_bytes()).hexdigest()
    assert metrics["checkpoint"] == {"path": str(last.resolve()), "sha256": sha256}
    assert metrics["model"].startswith("fine-tuned ")


def test_first_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=2)
    settings = yaml.safe_load(config.read_text())
    killer = {"class_path": "tests.signals.SigintAtStep", "init_args": {"step": 3}}
    settings["trainer"].setdefault("callbacks", []).append(killer)
    config.write_text(yaml.safe_dump(settings))
    proc = run_process("fit", "--config", str(config), cwd=tmp_path, check=False)  # a real SIGINT at step 3
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "resume with `--ckpt_path last`" in proc.stderr.strip().splitlines()[-1]
    saved = tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(saved, weights_only=True)["global_step"] == 3


def test_a_checkpoint_needs_no_pretrained_weights(tmp_path, tiny_backbone, data_files):
    """validate/test/predict from a checkpoint build the network from the backbone's config alone."""
    import shutil

    backbone = tmp_path / "backbone"
    shutil.copytree(tiny_backbone, backbone)
    config = write_config(tmp_path, str(backbone), data_files, max_epochs=1)
    run("fit", "--config", str(config), cwd=tmp_path)
    args = ("predict", "--config", str(config), "--ckpt_path", "best", "--prediction.output_path")
    run(*args, str(tmp_path / "before.csv"), cwd=tmp_path)
    for weights in backbone.glob("*.safetensors"):
        weights.unlink()  # a pretrained load would now fail
    run(*args, str(tmp_path / "after.csv"), cwd=tmp_path)
    before, after = pd.read_csv(tmp_path / "before.csv"), pd.read_csv(tmp_path / "after.csv")
    pd.testing.assert_frame_equal(before, after)


def test_predict_reads_no_training_data(tmp_path, tiny_backbone, data_files):
    """`predict` reads only the texts to classify: an id column that the config's training file lacks is no
    error, and a training file that is gone is none either (the checkpoint carries the labels)."""
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=1)
    run_process("fit", "--config", str(config), cwd=tmp_path)
    texts = pd.read_csv(data_files["predict"])["text"]
    ids = [f"r{i}" for i in range(len(texts))]
    pd.DataFrame({"id": ids, "text": texts}).to_csv(tmp_path / "ids.csv", index=False)
    data_files["train"].unlink()
    out = tmp_path / "out.csv"
    run_process(
        "predict", "--config", str(config), "--ckpt_path", "best", "--data.predict_file",
        str(tmp_path / "ids.csv"), "--data.id_column", "id", "--prediction.output_path", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert pd.read_csv(out)["id"].tolist() == ids
