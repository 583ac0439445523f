"""Data-parallel fit and predict through the real command line: 2 CPU processes talking over gloo."""

import math
import re

import pandas as pd
import pytest
import torch
import yaml

from tests.test_cli import run_process as run
from tests.test_cli import write_config
from textcls.data import TextClassificationData

DDP = ("--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu")


@pytest.mark.slow
def test_ddp_fit_and_predict_one_file_in_input_order(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=2)
    fit = run("fit", "--config", str(config), *DDP, cwd=tmp_path)
    # throughput is summed over both ranks: every training row counted once per epoch
    counted = re.search(r"\((\d+) samples in [\d.]+ s of training steps\)", fit.stdout + fit.stderr)
    assert counted, (fit.stdout + fit.stderr)[-3000:]
    data = TextClassificationData(train_file=str(data_files["train"]), test_file=str(data_files["test"]))
    train_rows = len(data.frames["train"])
    assert train_rows % 2 == 0  # so the distributed sampler repeats no row to even out the ranks
    assert int(counted.group(1)) == 2 * train_rows  # 2 epochs
    out = tmp_path / "predictions.csv"
    run(
        "predict", "--config", str(config), *DDP, "--ckpt_path", "last",
        "--prediction.output_path", str(out), cwd=tmp_path,
    )  # fmt: skip
    predicted = pd.read_csv(out)
    inputs = pd.read_csv(data_files["predict"])
    assert predicted["text"].tolist() == inputs["text"].tolist()  # one row per input, in input order
    assert predicted["label"].isin(["sports", "tech", "food"]).all()
    assert not list(tmp_path.glob(".predictions.csv.rank*"))  # no rank part files: gathered in memory

    # the test report gathers both ranks' rows too (30 test rows: each rank has 15, none repeated)
    run("test", "--config", str(config), *DDP, "--ckpt_path", "last", cwd=tmp_path)
    report = sorted((tmp_path / "logs" / "tiny").glob("version_*/metrics.json"))[-1].parent
    tested = pd.read_csv(report / "predictions.csv")
    assert len(tested) == len(data.frames["test"]) == 30
    assert tested["text"].tolist() == data.frames["test"]["text"].tolist()  # in input order


@pytest.mark.slow
def test_ddp_multi_label_thresholds_are_tuned_on_every_validation_row(
    tmp_path, tiny_backbone, multi_label_files
):
    config = write_config(tmp_path, tiny_backbone, multi_label_files, max_epochs=2)
    settings = yaml.safe_load(config.read_text())
    settings["data"].update(multi_label=True, label_column="labels", val_fraction=0.2)
    config.write_text(yaml.safe_dump(settings))
    run("fit", "--config", str(config), *DDP, cwd=tmp_path)
    ckpt = torch.load(
        tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True
    )
    data = TextClassificationData(
        train_file=str(multi_label_files["train"]), multi_label=True, label_column="labels", val_fraction=0.2
    )
    # 31 validation rows: the distributed sampler gives one rank a repeated row to even them out
    assert len(data.frames["validation"]) % 2 == 1
    # the thresholds were tuned on both ranks' rows, each row once
    assert ckpt["thresholds"]["positives"] == data.class_counts("validation")


@pytest.mark.slow
def test_ddp_chunked_texts_stay_whole_on_one_rank(tmp_path, tiny_backbone, data_files):
    """With data.long_text chunks, validation, test and predict batches hold whole texts, so a text's
    windows are pooled on the rank that reads them: 2 ranks predict what 1 process does, per text,
    in input order."""
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=1)
    settings = yaml.safe_load(config.read_text())
    settings["data"].update(max_length=8, long_text="chunks", chunk_stride=2)
    config.write_text(yaml.safe_dump(settings))
    run("fit", "--config", str(config), *DDP, cwd=tmp_path)
    single, double = tmp_path / "single.csv", tmp_path / "double.csv"
    common = ("predict", "--config", str(config), "--ckpt_path", "last")
    run(*common, "--prediction.output_path", str(single), "--trainer.devices", "1", cwd=tmp_path)
    run(*common, "--prediction.output_path", str(double), *DDP, cwd=tmp_path)
    one, two = pd.read_csv(single), pd.read_csv(double)
    assert two["text"].tolist() == pd.read_csv(data_files["predict"])["text"].tolist()
    columns = [c for c in one.columns if c.startswith("prob_")]
    assert (abs(one[columns].to_numpy() - two[columns].to_numpy()) < 1e-5).all()
    run("test", "--config", str(config), *DDP, "--ckpt_path", "last", cwd=tmp_path)
    report = sorted((tmp_path / "logs" / "tiny").glob("version_*/metrics.json"))[-1].parent
    assert len(pd.read_csv(report / "predictions.csv")) == 30  # texts, each once


@pytest.mark.slow
def test_ddp_max_chunks_per_text_bounds_every_epoch_and_the_schedule(tmp_path, tiny_backbone, data_files):
    """2 ranks train on the windows 1 device would (at most max_chunks_per_text of a text per epoch,
    split between the ranks), and the learning-rate schedule ends on the last step they take."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    layout = {"max_length": 8, "long_text": "chunks", "chunk_stride": 2, "max_chunks_per_text": 1}
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=2, log_every_n_steps=1)
    settings = yaml.safe_load(config.read_text())
    settings["data"].update(layout)
    settings["model"]["warmup_ratio"] = 0.0
    config.write_text(yaml.safe_dump(settings))
    fit = run("fit", "--config", str(config), *DDP, cwd=tmp_path)

    data = TextClassificationData(
        train_file=str(data_files["train"]), test_file=str(data_files["test"]), model_name_or_path=tiny_backbone,
        cache_dir=str(tmp_path / "cache"),
        **layout,
    )  # fmt: skip
    data.setup("fit")
    drawn = len(data.frames["train"])  # what 1 device trains on per epoch: one window of each text
    assert len(data.encoded["train"]) > drawn and drawn % 2 == 0  # more windows; ranks even without repeats
    counted = re.search(r"\((\d+) samples in [\d.]+ s of training steps\)", fit.stdout + fit.stderr)
    assert int(counted.group(1)) == 2 * drawn  # 2 epochs, summed over both ranks
    steps = 2 * math.ceil(drawn / 2 / settings["data"]["batch_size"])
    run_dir = tmp_path / "logs" / "tiny" / "version_0"
    # one learning rate logged per optimizer step, decaying linearly from 3e-3 to 0 over exactly those
    # steps: lr(t) = 3e-3 * (steps - t) / steps
    events = EventAccumulator(str(run_dir)).Reload()
    tag = next(t for t in events.Tags()["scalars"] if t.startswith("lr-AdamW"))
    logged = {e.step: e.value for e in events.Scalars(tag)}
    assert sorted(logged) == list(range(steps))
    assert all(abs(lr - 3e-3 * (steps - t) / steps) < 1e-7 for t, lr in logged.items())
