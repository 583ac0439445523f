"""`textcls export`: a checkpoint in, a standard Hugging Face model folder out (optionally ONNX too).

The folder loads with `transformers.pipeline("text-classification", model=folder)`, with
`textcls predict --ckpt_path folder`, and in the web app. The config names the model's `problem_type`
(its task, textcls/tasks/): for a multi-label model `pipeline` then applies a sigmoid per label, as
textcls does. The task's decision rule travels in its own file: a single-label model's temperature in
calibration.json, a multi-label model's per-label thresholds in thresholds.json. A model trained on
windows or on the end of its texts reads texts in a way `pipeline` cannot; its model card
(textcls/model_card/) says so and shows the textcls call. A model with textcls's pooled head
(`model.pooling` cls or mean) carries that head's code (`modeling_textcls.py`, named in config.json's
`auto_map`): transformers loads it with `trust_remote_code=True`, offline.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from textcls import pooled_model
from textcls.checkpoint import CONFUSION_MATRIX_FILE, file_sha256, is_exported_folder, measured_checkpoint
from textcls.inference import Predictor, load_predictor
from textcls.model_card import model_card
from textcls.pooled_model import PooledTextClassifier
from textcls.quantize import check_quantize

ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"  # onnxruntime's dynamic int8 quantization of model.onnx
MIN_ONNX_AGREEMENT = 0.995
REMOTE_MODULE = "modeling_textcls"  # a pooled head's code, copied into the folder (textcls/pooled_model.py)


class ExportError(ValueError):
    """An export that cannot be done as asked."""


def export(
    ckpt_path: str,
    output_dir: str,
    overwrite: bool = False,
    metrics: str | None = None,
    onnx: bool = False,
    check_texts: list[str] | None = None,
    target_precision: float | None = None,
    quantize: str | None = None,
) -> Path:
    """Write the checkpoint as a Hugging Face folder, all at once: a folder that exists is complete.

    Args:
        ckpt_path: The textcls checkpoint.
        output_dir: The folder to create.
        overwrite: Replace `output_dir` when it exists and is not empty.
        metrics: A test report's `metrics.json` (default: the report of a `textcls test` of this very
            checkpoint, found next to its run by the checkpoint's content hash, if there is one).
        onnx: Also write `model.onnx` and check it against PyTorch on `check_texts`.
        check_texts: Texts for the ONNX agreement check.
        target_precision: Stored in the folder: the web app then marks predictions below its
            validation cut-off as uncertain by default.
        quantize: "int8": also write `model.int8.onnx` (implies `onnx`), written only when it agrees
            with the full-precision PyTorch model on `check_texts`, which it then needs.
    """
    quantize = check_quantize(quantize, "--quantize")
    if quantize and not check_texts:
        raise ExportError(
            "--quantize int8 writes an int8 model only after checking it against the full-precision one: "
            "pass --check_file (texts like those it will classify, e.g. the validation texts)"
        )
    onnx = onnx or bool(quantize)
    target = Path(output_dir).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise ExportError(f"'{target}' exists and is not empty: choose another folder or pass --overwrite")
    if is_exported_folder(ckpt_path):
        raise ExportError(f"'{ckpt_path}' is already an exported folder: pass a checkpoint file")
    predictor = load_predictor(ckpt_path)
    if target_precision is not None:
        refused = predictor.task.refuses(["--target_precision"])
        if refused:
            raise ExportError(refused)
        if predictor.calibration is None:
            raise ExportError(f"'{ckpt_path}' stores no validation confidences to choose a cut-off from")
        predictor.calibration.target_precision = target_precision
        print(predictor.cutoff(target_precision)[1], file=sys.stderr)
    if metrics:
        if not Path(metrics).is_file():
            raise ExportError(f"metrics file '{metrics}' does not exist")
        measured = measured_checkpoint(Path(metrics))
        if measured is not None and measured != file_sha256(ckpt_path):
            raise ExportError(f"'{metrics}' holds the test metrics of another checkpoint than '{ckpt_path}'")
        predictor.metrics_path = Path(metrics)
        matrix = Path(metrics).with_name(CONFUSION_MATRIX_FILE)
        predictor.confusion_matrix_path = matrix if matrix.is_file() else None
    if predictor.metrics_path is None:
        print(
            f"No test report of this checkpoint was found: the export has no test metrics (run `textcls test "
            f"--ckpt_path {ckpt_path}` first, or pass --metrics)",
            file=sys.stderr,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp", dir=target.parent))
    try:
        write_folder(predictor, tmp)
        if onnx:
            export_onnx(predictor, tmp / ONNX_FILE)
            files = [ONNX_FILE]
            if quantize:
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(tmp / ONNX_FILE, tmp / ONNX_INT8_FILE, weight_type=QuantType.QInt8)
                files.append(ONNX_INT8_FILE)
            if check_texts:
                reference = predictor.predict_probs(check_texts)  # PyTorch, full precision
                for name in files:
                    check_onnx(predictor, tmp / name, check_texts, reference)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def write_folder(predictor: Predictor, folder: Path) -> None:
    """Weights (safetensors), config with id2label/label2id (and the problem type), tokenizer, the
    task's decision rule (calibration.json or thresholds.json), report files and model card."""
    if isinstance(predictor.model, PooledTextClassifier):
        # not an architecture transformers knows: the folder carries the head's code and names it
        predictor.model.config.auto_map = {
            "AutoModelForSequenceClassification": f"{REMOTE_MODULE}.PooledTextClassifier"
        }
        shutil.copyfile(pooled_model.__file__, folder / f"{REMOTE_MODULE}.py")
    predictor.task.export_weights(predictor.model)  # a folder's network answers alone, as `pipeline` reads it
    predictor.model.save_pretrained(folder, safe_serialization=True)
    # the exported tokenizer truncates where training did (with `truncation=True`)
    predictor.tokenizer.model_max_length = predictor.max_length
    predictor.tokenizer.save_pretrained(folder)
    (folder / "training_settings.json").write_text(
        json.dumps(predictor.hparams, indent=2, default=str), encoding="utf-8"
    )
    rule = predictor.task.rule_json()
    if rule is not None:
        (folder / predictor.task.rule_file).write_text(rule, encoding="utf-8")
    for path in (predictor.metrics_path, predictor.confusion_matrix_path):
        if path is not None:
            shutil.copyfile(path, folder / path.name)
    (folder / "README.md").write_text(model_card(predictor), encoding="utf-8")


# ----------------------------------------------------------------------------- ONNX


def export_onnx(predictor: Predictor, path: Path) -> None:
    """Write the model as ONNX with dynamic batch and sequence axes (inputs: input_ids, attention_mask)."""
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as err:
        raise ExportError("ONNX export needs the onnx extra: pip install 'textcls[onnx]'") from err

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            segments = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **segments).logits

    texts = ["an example text to trace", "and a second, longer example text to trace"]
    example = predictor.encode([(t, t[::-1]) for t in texts] if predictor.reads_pairs else texts)
    # the segment ids of a pair, where the backbone takes them, are an input of their own
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in example]
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dims = {0: batch, 1: seq}
    program = torch.onnx.export(
        Logits(predictor.model).eval(),
        tuple(example[k] for k in names),
        input_names=names,
        output_names=["logits"],
        dynamic_shapes={k: dims for k in names},
        dynamo=True,
        verbose=False,
    )
    program.save(str(path))


def onnx_session(path: Path):
    """An ONNX Runtime CPU session for an exported `model.onnx`."""
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def onnx_probs(session, predictor: Predictor, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Class probabilities from ONNX Runtime, texts read exactly as the PyTorch predictor reads them
    (truncated, or in windows pooled per text)."""
    parts = []
    for start in range(0, len(texts), batch_size):
        part = texts[start : start + batch_size]
        enc = predictor.encode(part)
        inputs = {k: v.numpy() for k, v in enc.items() if k != "owner"}
        (logits,) = session.run(None, inputs)
        logits = predictor.text_logits(torch.from_numpy(logits), enc, len(part))
        # calibrated (or a sigmoid per label), exactly as the PyTorch predictor
        parts.append(predictor.probabilities(logits).numpy())
    return np.concatenate(parts)


def check_onnx(predictor: Predictor, path: Path, texts: list[str], reference: np.ndarray) -> None:
    """Print how often the ONNX model at `path` agrees with PyTorch; ExportError below 99.5%."""
    ort_probs = onnx_probs(onnx_session(path), predictor, texts)
    agreement, words = predictor.task.agreement(reference, ort_probs)
    print(f"ONNX Runtime ({path.name}) agrees with PyTorch {words}")
    if agreement < MIN_ONNX_AGREEMENT:
        raise ExportError(f"ONNX agreement of {path.name} {agreement:.2%} is below {MIN_ONNX_AGREEMENT:.1%}")


def onnx_agreement(
    predictor: Predictor, path: Path, texts: list[str], reference: np.ndarray | None = None
) -> float:
    """Share of texts on which ONNX Runtime and PyTorch (`reference` probabilities, computed when not
    given) agree, as the task compares them: the same label, the same label set, a score within a
    tolerance."""
    torch_probs = predictor.predict_probs(texts) if reference is None else reference
    ort_probs = onnx_probs(onnx_session(path), predictor, texts)
    return predictor.task.agreement(torch_probs, ort_probs)[0]


# ----------------------------------------------------------------------------- command line


def export_cli(
    ckpt_path: str,
    output_dir: str,
    overwrite: bool = False,
    metrics: str | None = None,
    onnx: bool = False,
    check_file: str | None = None,
    target_precision: float | None = None,
    quantize: str = "none",
) -> Path:
    """Write a textcls checkpoint as a Hugging Face model folder.

    The folder holds safetensors weights, the tokenizer, the label names and a model card; it loads
    with `transformers` alone and with `textcls predict|app --ckpt_path FOLDER`.

    Args:
        ckpt_path: The textcls checkpoint (.ckpt).
        output_dir: The folder to write.
        overwrite: Replace output_dir if it is not empty.
        metrics: A test report's metrics.json (default: the test of this checkpoint, if found).
        onnx: Also write model.onnx (the onnx extra).
        check_file: CSV/JSONL texts (column `text`, and `text_pair` for a model that reads pairs) on
            which ONNX Runtime must agree with PyTorch (>= 99.5% of texts with the same label; for a
            multi-label model the same label set; for a regression scores within 5% of their spread).
        target_precision: Store this target: the web app marks predictions below its validation
            cut-off as uncertain by default.
        quantize: "int8": also write model.int8.onnx (onnxruntime dynamic quantization; implies onnx),
            only if it agrees with the full-precision model on check_file (>= 99.5%, as model.onnx).
    """
    check_texts = None
    if check_file:
        from textcls.data import read_table

        frame = read_table(check_file)
        if "text" not in frame.columns:
            raise ExportError(f"'{check_file}' has no column 'text'")
        check_texts = frame["text"].astype(str).tolist()
        if "text_pair" in frame.columns:  # a model that reads pairs is checked on pairs
            check_texts = list(zip(check_texts, frame["text_pair"].astype(str), strict=True))
    target = export(ckpt_path, output_dir, overwrite, metrics, onnx, check_texts, target_precision, quantize)
    print(f"Exported {ckpt_path} to {target}", file=sys.stderr)
    return target
