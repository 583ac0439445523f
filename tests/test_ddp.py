"""Data-parallel fit and predict through the real command line: 2 CPU processes talking over gloo."""

import pandas as pd
import pytest

from tests.test_cli import run, write_config

DDP = ("--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu")


@pytest.mark.slow
def test_ddp_fit_and_predict_one_file_in_input_order(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=2)
    fit = run("fit", "--config", str(config), *DDP, cwd=tmp_path)
    # throughput is summed over both ranks: every training row counted once per epoch
    assert "Training throughput:" in fit.stdout + fit.stderr
    out = tmp_path / "predictions.csv"
    run(
        "predict", "--config", str(config), *DDP, "--ckpt_path", "last",
        "--prediction.output_path", str(out), cwd=tmp_path,
    )  # fmt: skip
    predicted = pd.read_csv(out)
    inputs = pd.read_csv(data_files["predict"])
    assert predicted["text"].tolist() == inputs["text"].tolist()  # one row per input, in input order
    assert predicted["label"].isin(["sports", "tech", "food"]).all()
    assert not list(tmp_path.glob(".predictions.csv.rank*"))  # rank parts joined and removed
