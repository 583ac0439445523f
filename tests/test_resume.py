"""Interrupted training resumes to the same result, and the same seed gives the same run (real CLI, CPU)."""

import pandas as pd
import pytest
import torch
import yaml

from tests.test_cli import run_process as run
from tests.test_cli import write_config

pytestmark = pytest.mark.slow


def fit_config(tmp_path, name, backbone, files, kill_at=None):
    folder = tmp_path / name
    folder.mkdir()
    path = write_config(folder, backbone, files, max_epochs=3)
    config = yaml.safe_load(path.read_text())
    if kill_at is not None:
        config["trainer"].setdefault("callbacks", []).append(
            {"class_path": "tests.signals.SigtermAtStep", "init_args": {"step": kill_at}}
        )
    path.write_text(yaml.safe_dump(config))
    return path, folder / "logs" / "tiny"


STEPS = 3 * 14  # 3 epochs of 108 training rows in batches of 8


def final_weights(ckpt_path):
    """The weights of a `last.ckpt`, checked to be those of the end of training (not of the best epoch)."""
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert (ckpt["epoch"], ckpt["global_step"]) == (2, STEPS), ckpt_path
    return ckpt["state_dict"]


def predictions(config, tmp_path, name):
    out = tmp_path / f"{name}.csv"
    run(
        "predict",
        "--config",
        str(config),
        "--ckpt_path",
        "last",
        "--prediction.output_path",
        str(out),
        cwd=tmp_path,
    )
    return pd.read_csv(out)


def test_same_seed_same_run_and_sigterm_resume_matches(tmp_path, tiny_backbone, data_files):
    ref_cfg, ref_logs = fit_config(tmp_path, "reference", tiny_backbone, data_files)
    run("fit", "--config", str(ref_cfg), cwd=tmp_path)
    again_cfg, again_logs = fit_config(tmp_path, "again", tiny_backbone, data_files)
    run("fit", "--config", str(again_cfg), cwd=tmp_path)

    reference = final_weights(ref_logs / "version_0" / "checkpoints" / "last.ckpt")
    again = final_weights(again_logs / "version_0" / "checkpoints" / "last.ckpt")
    assert all(torch.equal(reference[k], again[k]) for k in reference)  # determinism: identical weights
    ref_preds = predictions(ref_cfg, tmp_path, "ref")
    pd.testing.assert_frame_equal(ref_preds, predictions(again_cfg, tmp_path, "again"))

    # 108 training rows in batches of 8: 14 steps an epoch; step 20 is in the middle of the second epoch.
    cut_cfg, cut_logs = fit_config(tmp_path, "cut", tiny_backbone, data_files, kill_at=20)
    killed = run("fit", "--config", str(cut_cfg), cwd=tmp_path, check=False)
    assert killed.returncode == 143, killed.stderr[-2000:]
    assert "resume with `--ckpt_path last`" in killed.stderr.strip().splitlines()[-1]
    saved = torch.load(cut_logs / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 20

    resume_cfg = write_config(
        tmp_path / "cut", tiny_backbone, data_files, max_epochs=3
    )  # same run, no killer
    run("fit", "--config", str(resume_cfg), "--ckpt_path", "last", cwd=tmp_path)
    resumed = final_weights(cut_logs / "version_1" / "checkpoints" / "last.ckpt")
    for key in reference:
        torch.testing.assert_close(resumed[key], reference[key], rtol=0, atol=1e-6, msg=key)
    pd.testing.assert_frame_equal(predictions(resume_cfg, tmp_path, "resumed"), ref_preds, atol=1e-6)
