"""Out-of-fold probabilities from fine-tuning: one real `fit` per fold, with the config's settings and
overrides, trained on the other folds (a share of them split off for validation: early stopping and
`best.ckpt`), then the held-out fold classified by that fold's best checkpoint as `predict` would.

Each fold is an ordinary run, logged under `<logger folder>/label_issues/fold_k` (TensorBoard shows
them side by side); its data is written there as JSONL (text, label, and the second text of a pair).
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from textcls.inference import load_predictor
from textcls.label_issues.errors import LabelIssuesError
from textcls.launch import make_cli

# validation share of a fold's training rows when the config splits none off train
DEFAULT_VAL_FRACTION = 0.1


def finetune_probabilities(
    rows: pd.DataFrame, folds: np.ndarray, data, fit_args: list[str], folder: Path
) -> np.ndarray:
    """Each row's probabilities (rows x labels) from the model fine-tuned without its fold.

    Args:
        rows: The rows (`text`, optional `text_pair`, `label`).
        folds: The fold of each row.
        data: The TextClassificationData of the config (its task, label names, seed, val_fraction).
        fit_args: `--config` files and overrides, as `fit` takes them.
        folder: Where the fold runs go (`fold_k` each).
    """
    out = np.zeros((len(rows), len(data.label_names)), dtype=np.float64)
    for k in np.unique(folds):
        held_out = folds == k
        best = fit_fold(rows[~held_out], data, fit_args, folder, f"fold_{k}")
        predictor = load_predictor(best)
        texts = rows.loc[held_out, "text"].tolist()
        if "text_pair" in rows:
            texts = list(zip(texts, rows.loc[held_out, "text_pair"].tolist(), strict=True))
        order = [predictor.label_names.index(name) for name in data.label_names]  # the same, as passed
        out[held_out] = predictor.predict_probs(texts)[:, order]
    return out


def fit_fold(rows: pd.DataFrame, data, fit_args: list[str], folder: Path, name: str) -> str:
    """Fit on `rows` (validation split off them as the task splits) and return the best checkpoint."""
    hp = data.hparams
    fraction = hp.val_fraction or DEFAULT_VAL_FRACTION
    parts, _ = data.task.split(rows["label"].reset_index(drop=True), {"validation": fraction}, hp.seed)
    run_dir = folder / name
    shutil.rmtree(run_dir, ignore_errors=True)  # a rerun replaces the fold's run (its best.ckpt above all)
    files = {}
    for split in ("train", "validation"):
        files[split] = run_dir / "data" / f"{split}.jsonl"
        write_rows(rows.iloc[parts[split]], files[split], hp.label_separator)
    logger = {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": str(folder.parent), "name": folder.name, "version": name},
    }
    cli = make_cli(
        [
            "fit",
            *fit_args,
            *fold_overrides(files, data, "text_pair" in rows),
            "--trainer.logger",
            json.dumps(logger),
        ]
    )
    best = cli.trainer.checkpoint_callback.best_model_path if cli.trainer.checkpoint_callback else ""
    if not best:
        raise LabelIssuesError(
            f"{name} wrote no best checkpoint to classify its held-out rows with: keep checkpointing on "
            "(trainer.enable_checkpointing true)"
        )
    return best


def fold_overrides(files: dict[str, Path], data, pairs: bool) -> list[str]:
    """The data settings of a fold's fit: its own files, in the columns `write_rows` writes, the
    config's labels in their order, nothing else read or split off."""
    settings = {
        "train_file": str(files["train"]),
        "val_file": str(files["validation"]),
        "test_file": None,
        "test_fraction": 0.0,
        "predict_file": None,
        "dataset_name": None,
        "train_sample": None,
        "text_column": "text",
        "text_pair_column": "text_pair" if pairs else None,
        "label_column": "label",
        "label_columns": None,
        "id_column": None,
        "corrections_file": None,  # the rows written carry the corrections already
        "labels": data.label_names,
    }
    args = []
    for key, value in settings.items():
        args += [
            f"--data.{key}",
            "null" if value is None else json.dumps(value) if isinstance(value, list) else str(value),
        ]
    # the config's data were checked when they were read; a fold holds the same rows
    return [*args, "--data_check.enabled", "false"]


def write_rows(rows: pd.DataFrame, path: Path, separator: str) -> None:
    """A fold's rows as JSONL: text (text_pair) and label (a label set joined by `separator`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [c for c in ("text", "text_pair") if c in rows]
    out = rows[columns].copy()
    out["label"] = rows["label"].map(lambda v: separator.join(v) if isinstance(v, (tuple, list)) else v)
    out.to_json(path, orient="records", lines=True, force_ascii=False)
