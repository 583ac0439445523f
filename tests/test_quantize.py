"""int8 prediction: the quantized model agrees with the full-precision one, in `predict`, `test`, the
predictor and an int8 ONNX export; impossible requests stop with one line."""

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import make_rows
from tests.test_cli import run
from tests.test_export import trained  # noqa: F401  (the module's trained checkpoint fixture)
from textcls.inference import load_predictor
from textcls.quantize import QuantizeError, quantize_int8

TEXTS = [r["text"] for r in make_rows(40, seed=11)]


def test_quantized_predictor_agrees_with_full_precision(trained):  # noqa: F811
    full = load_predictor(trained["ckpt"])
    int8 = load_predictor(trained["ckpt"], quantize="int8")
    assert int8.quantized == "int8" and full.quantized is None
    linear = type(int8.model.bert.encoder.layer[0].attention.self.query)
    assert linear.__module__.startswith("torch.ao.nn.quantized.dynamic")  # really int8 layers
    p_full, p_int8 = full.predict_probs(TEXTS), int8.predict_probs(TEXTS)
    assert p_int8.shape == p_full.shape and not np.array_equal(p_int8, p_full)
    assert np.abs(p_int8 - p_full).max() < 0.05
    assert (p_int8.argmax(-1) == p_full.argmax(-1)).mean() >= 0.95


def test_predict_and_test_with_int8(trained, tmp_path, bf16_cpu):  # noqa: F811
    """With the default settings, on any CPU: int8 picks the full precision it needs by itself."""
    tmp, config = trained["tmp"], trained["config"]
    outputs = {}
    for quantize in ("none", "int8"):
        out = tmp_path / f"{quantize}.csv"
        run(
            "predict", "--config", str(config), "--ckpt_path", str(trained["ckpt"]),
            "--prediction.output_path", str(out), "--prediction.quantize", quantize, cwd=tmp,
        )  # fmt: skip
        outputs[quantize] = pd.read_csv(out)
    full, int8 = outputs["none"], outputs["int8"]
    assert int8["text"].tolist() == full["text"].tolist() == trained["texts"]  # input order
    columns = [c for c in full.columns if c.startswith("prob_")]
    expected = load_predictor(trained["ckpt"], quantize="int8").predict_probs(trained["texts"])
    np.testing.assert_allclose(int8[columns].to_numpy(), expected, atol=1e-5)
    assert np.abs(int8[columns].to_numpy() - full[columns].to_numpy()).max() < 0.05

    proc = run(
        "test",
        "--config",
        str(config),
        "--ckpt_path",
        str(trained["ckpt"]),
        "--prediction.quantize",
        "int8",
        cwd=tmp,
    )
    assert "int8" in proc.stdout + proc.stderr
    report = max((tmp / "logs" / "tiny").glob("version_*/metrics.json"), key=lambda p: p.stat().st_mtime)
    import json

    assert json.loads(report.read_text())["model"].endswith("(int8)")
    assert "- quantize: int8" in report.with_name("report.md").read_text()


@pytest.mark.parametrize(
    "args,message",
    [
        (("--prediction.quantize", "int4"), "prediction.quantize must be one of none, int8"),
        (
            ("--prediction.quantize", "int8", "--trainer.precision", "bf16-mixed"),
            "prediction.quantize int8 runs in full precision",
        ),
    ],
)
def test_impossible_quantization_is_one_line(trained, args, message):  # noqa: F811
    proc = run(
        "predict",
        "--config",
        str(trained["config"]),
        "--ckpt_path",
        str(trained["ckpt"]),
        *args,
        cwd=trained["tmp"],
        check=False,
    )
    assert proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1], proc.stderr[-2000:]


def test_int8_is_for_cpu():
    model = torch.nn.Sequential(torch.nn.Linear(4, 2)).to("meta")
    with pytest.raises(QuantizeError, match="int8 quantization is for prediction on CPU"):
        quantize_int8(model)


def test_int8_onnx_export_is_checked(trained, tmp_path):  # noqa: F811
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from textcls.export import ONNX_FILE, ONNX_INT8_FILE, onnx_probs, onnx_session

    check = tmp_path / "check.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(check, index=False)
    folder = tmp_path / "exported"
    proc = run(
        "export", "--ckpt_path", str(trained["ckpt"]), "--output_dir", str(folder),
        "--quantize", "int8", "--check_file", str(check), cwd=tmp_path,
    )  # fmt: skip
    assert (folder / ONNX_FILE).is_file() and (folder / ONNX_INT8_FILE).is_file()
    assert f"ONNX Runtime ({ONNX_INT8_FILE}) agrees with PyTorch" in proc.stdout
    import onnx

    # int8 matrix products on dynamically quantized activations (the tiny model's size is mostly embeddings)
    ops = {node.op_type for node in onnx.load(folder / ONNX_INT8_FILE).graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops
    assert (folder / ONNX_INT8_FILE).stat().st_size < (folder / ONNX_FILE).stat().st_size
    predictor = load_predictor(folder)
    p_full = predictor.predict_probs(TEXTS)
    p_int8 = onnx_probs(onnx_session(folder / ONNX_INT8_FILE), predictor, TEXTS)
    assert (p_int8.argmax(-1) == p_full.argmax(-1)).mean() >= 0.995
    # without texts to check it on, no int8 model is written
    proc = run(
        "export", "--ckpt_path", str(trained["ckpt"]), "--output_dir", str(tmp_path / "unchecked"),
        "--quantize", "int8", cwd=tmp_path, check=False,
    )  # fmt: skip
    assert (
        proc.returncode == 2 and "pass --check_file" in proc.stderr and not (tmp_path / "unchecked").exists()
    )
