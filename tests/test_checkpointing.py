"""Checkpoints during `fit`: `last.ckpt` is the last state, `best.ckpt` the best (real CLI, tiny model)."""

import torch
import yaml

from tests.test_cli import run, write_config

STEPS_PER_EPOCH = 14  # 108 training rows in batches of 8


def test_last_is_the_final_state_when_the_score_stops_improving(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=3)
    # a learning rate this small never moves val/f1_macro: only the first epoch is "best"
    run("fit", "--config", str(config), "--model.learning_rate", "1e-12", cwd=tmp_path)
    folder = tmp_path / "logs" / "tiny" / "version_0" / "checkpoints"
    best, last = (torch.load(folder / f"{n}.ckpt", weights_only=True) for n in ("best", "last"))
    assert (best["epoch"], best["global_step"]) == (0, STEPS_PER_EPOCH)
    assert (last["epoch"], last["global_step"]) == (2, 3 * STEPS_PER_EPOCH)
    assert sorted(p.name for p in folder.iterdir()) == ["best.ckpt", "last.ckpt"]


# ----------------------------------------------------------------------------- a Lightning user's config


def with_callbacks(config, *callbacks: dict):
    settings = yaml.safe_load(config.read_text())
    settings["trainer"]["callbacks"] = list(callbacks)
    config.write_text(yaml.safe_dump(settings))
    return config


def test_own_model_checkpoint_replaces_textcls_one(tmp_path, tiny_backbone, data_files):
    mine = tmp_path / "mine"
    checkpoint = {
        "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
        "init_args": {"dirpath": str(mine), "filename": "{epoch}", "monitor": "val/f1_macro", "mode": "max"},
    }
    config = with_callbacks(write_config(tmp_path, tiny_backbone, data_files, max_epochs=1), checkpoint)
    fit = run("fit", "--config", str(config), cwd=tmp_path)
    assert "Using the ModelCheckpoint in trainer.callbacks instead of textcls's" in fit.stderr
    assert [p.name for p in mine.iterdir()] == ["epoch=0.ckpt"]
    assert not list((tmp_path / "logs").rglob("*.ckpt"))  # textcls's best.ckpt and last.ckpt: not written

    # `best` means textcls's own best.ckpt, which this run did not write: one line says what to pass
    test = run("test", "--config", str(config), "--ckpt_path", "best", cwd=tmp_path, check=False)
    assert test.returncode == 2 and "Traceback" not in test.stderr, test.stderr[-3000:]
    assert "no 'best' checkpoint under" in test.stderr.strip().splitlines()[-1]
    run("test", "--config", str(config), "--ckpt_path", str(mine / "epoch=0.ckpt"), cwd=tmp_path)


def test_own_early_stopping_replaces_textcls_one(tmp_path, tiny_backbone, data_files):
    # the same monitor as textcls's own; val/f1_macro never moves at this learning rate, and textcls's
    # early stopping (patience 0 here) would stop after the second epoch: the user's lets all three run
    stopping = {
        "class_path": "lightning.pytorch.callbacks.EarlyStopping",
        "init_args": {"monitor": "val/f1_macro", "mode": "max", "patience": 100},
    }
    config = with_callbacks(write_config(tmp_path, tiny_backbone, data_files, max_epochs=3), stopping)
    args = ("--model.learning_rate", "1e-12", "--early_stopping.patience", "0")
    run("fit", "--config", str(config), *args, cwd=tmp_path)
    last = tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 3 * STEPS_PER_EPOCH


def test_enable_checkpointing_false_writes_no_checkpoint(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=1)
    run("fit", "--config", str(config), "--trainer.enable_checkpointing", "false", cwd=tmp_path)
    assert (tmp_path / "logs" / "tiny" / "version_0" / "config.yaml").is_file()
    assert not list(tmp_path.rglob("*.ckpt"))


def test_logger_false_logs_nothing_and_last_is_still_found(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=1)
    no_logger = ("--trainer.logger", "false")
    run("fit", "--config", str(config), *no_logger, cwd=tmp_path)
    assert not (tmp_path / "logs").exists() and not list(tmp_path.rglob("events.out.tfevents.*"))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()  # Lightning's place without a logger
    test = run("test", "--config", str(config), *no_logger, "--ckpt_path", "last", cwd=tmp_path)
    assert "test/f1_macro" in test.stdout
