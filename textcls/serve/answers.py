"""What the server says: one JSON object per text, made from the table `textcls predict` writes, and the
model's facts for `GET /info`.

Per text, by the columns of the prediction table (textcls/tasks/ decides them):
- one label per text: `{"label", "confidence", "probs": {name: p}}` (`label` is UNCERTAIN below the
  cut-off of `--target_precision`);
- several labels per text: `{"labels": [names that passed their thresholds], "probs": {name: p}}`;
- a regression: `{"score": x}`.
"""

from dataclasses import asdict
from pathlib import Path

import pandas as pd

import textcls
from textcls.checkpoint import METRICS_FILE, file_sha256, measured_checkpoint
from textcls.inference import Predictor

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # an exported folder's weights


def answers(table: pd.DataFrame, label_names: list[str]) -> list[dict]:
    """One answer per row of a prediction table (`Predictor.results`), in its order, as plain JSON values."""
    out = []
    for row in table.to_dict("records"):
        answer = {}
        if "label" in row:
            answer["label"], answer["confidence"] = row["label"], float(row["confidence"])
        if "labels" in row:
            answer["labels"] = [name for name in label_names if row[f"pred_{name}"]]
        if "score" in row:
            answer["score"] = float(row["score"])
        if f"prob_{label_names[0]}" in row:
            answer["probs"] = {name: float(row[f"prob_{name}"]) for name in label_names}
        out.append(answer)
    return out


def model_info(predictor: Predictor, target_precision: float | None, uncertain_below: float) -> dict:
    """The facts `GET /info` gives under "model": labels, task, how texts are read, the decision rule,
    the served file's SHA-256 and the textcls version."""
    source = Path(predictor.source)
    weights = next((source / name for name in WEIGHT_FILES if (source / name).is_file()), source)
    info = {
        "source": str(source),
        "task": predictor.task.problem_type,
        "label_names": predictor.label_names,
        "reads_pairs": predictor.reads_pairs,
        "max_length": predictor.max_length,
        "layout": asdict(predictor.layout),
        "chunk_pooling": predictor.chunk_pooling,
        "temperature": predictor.temperature,
        "decision_rule": predictor.task.rule_facts(),
        "target_precision": target_precision,
        "uncertain_below": uncertain_below,
        "quantized": predictor.quantized,
        "weights_file": str(weights),
        "sha256": file_sha256(weights),
        "textcls_version": textcls.__version__,
    }
    if source.is_dir():  # the checkpoint the folder was exported from, where its test report names it
        info["trained_checkpoint_sha256"] = measured_checkpoint(source / METRICS_FILE)
    return info
