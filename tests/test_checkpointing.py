"""Checkpoints during `fit`: `last.ckpt` is the last state, `best.ckpt` the best (real CLI, tiny model)."""

import torch

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
