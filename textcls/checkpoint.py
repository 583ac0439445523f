"""Checkpoints and exported folders: find them (`best|last|FILE|EXPORTED_FOLDER`), load them safely,
and read the settings they carry (backbone, label names, max_length) and the test report of their run.

Every other module may import this one; it imports none of them.
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from jsonargparse import Namespace

METRICS_FILE = "metrics.json"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
CALIBRATION_FILE = "calibration.json"  # an exported folder's temperature and validation confidences
THRESHOLDS_FILE = "thresholds.json"  # an exported multi-label folder's per-label thresholds
DEFAULT_MAX_LENGTH = 128  # data.max_length's default, for checkpoints and folders that do not record it
SETTINGS_FILE = "training_settings.json"  # an exported folder's training settings (model and data)
# data settings that shape what the model reads of a text (textcls.long_text.TextLayout): a checkpoint
# or exported folder carries them, and test, predict and the app read texts the same way
LAYOUT_KEYS = ("truncation", "head_tokens", "long_text", "chunk_stride")
# data settings that say what one input is (a text, or a pair of texts): carried like the layout
INPUT_KEYS = ("text_pair_column",)


# what a checkpoint or exported folder decides about how texts are read and labelled, whatever a config says
CARRIED_SETTINGS = (
    "model.model_name_or_path",
    "data.labels",
    "data.multi_label",
    "data.problem_type",
    "data.max_length",
    *(f"data.{key}" for key in (*LAYOUT_KEYS, *INPUT_KEYS)),
)
NOT_A_MODEL = (
    "is neither a checkpoint file nor an exported model folder (a folder written by `textcls export`, "
    "with config.json and the weights)"
)


class CheckpointError(ValueError):
    """A --ckpt_path that cannot be used."""


def is_exported_folder(path: str | Path) -> bool:
    """True for a Hugging Face model folder (what `textcls export` writes)."""
    return Path(path).is_dir() and (Path(path) / "config.json").is_file()


def exported_settings(folder: str | Path) -> dict:
    """The data settings an exported folder carries: label names (in class-index order),
    `max_length`, whether it is multi-label, and how long texts are read (truncation, windows)."""
    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    id2label = config.get("id2label") or {}
    labels = [id2label[k] for k in sorted(id2label, key=int)]
    tokenizer_config = Path(folder) / "tokenizer_config.json"
    max_length = DEFAULT_MAX_LENGTH
    if tokenizer_config.is_file():
        value = json.loads(tokenizer_config.read_text(encoding="utf-8")).get("model_max_length")
        if isinstance(value, int) and value < 1_000_000:  # "no limit" is stored as a huge number
            max_length = value
    problem_type = config.get("problem_type")
    multi_label = problem_type == "multi_label_classification"
    settings = {
        "labels": labels,
        "max_length": max_length,
        "multi_label": multi_label,
        "problem_type": problem_type,
    }
    data_hp = _training_settings(folder).get("data", {})
    return settings | {k: data_hp[k] for k in (*LAYOUT_KEYS, *INPUT_KEYS) if k in data_hp}


def exported_overrides(folder: str | Path) -> dict:
    """The config an exported folder supplies to `test`/`predict --ckpt_path FOLDER`: the folder is
    the backbone (its weights are the trained ones), with its data settings and chunk pooling."""
    model = {"model_name_or_path": str(folder)}
    trained = _training_settings(folder).get("model", {})
    for key in ("chunk_pooling", "pooling"):  # how windows are pooled, and the head
        if trained.get(key):
            model[key] = trained[key]
    return {"model": model, "data": exported_settings(folder), "ckpt_path": None}


def _training_settings(folder: str | Path) -> dict:
    path = Path(folder) / SETTINGS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def exported_json(folder: str | Path, name: str) -> dict | None:
    """A JSON file an exported folder carries (its calibration.json or thresholds.json), if it has one."""
    path = Path(folder) / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def default_logger(name: str) -> dict:
    """The logger every run gets unless its config sets one: TensorBoard in `lightning_logs/<name>`."""
    return {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "lightning_logs", "name": name},
    }


def logger_dir(cfg: Namespace) -> Path:
    """The folder that holds a config's run folders (`version_N`)."""
    logger = cfg.trainer.logger
    if isinstance(logger, list):
        logger = logger[0] if logger else None
    root = Path(cfg.trainer.default_root_dir or ".")
    if isinstance(logger, (Namespace, dict)) and "init_args" in logger:
        args = logger["init_args"]
        return Path(args.get("save_dir") or root) / (args.get("name") or "lightning_logs")
    return root / "lightning_logs"


def checkpoint_folders(cfg: Namespace) -> tuple[Path, str]:
    """Where the runs of a config keep their checkpoints: a folder and the pattern of checkpoint folders in it."""
    if cfg.trainer.logger is False or cfg.trainer.logger == []:
        # no logger, no run folders: Lightning saves in <default_root_dir>/checkpoints
        return Path(cfg.trainer.default_root_dir or "."), "checkpoints"
    return logger_dir(cfg), "version_*/checkpoints"


def resolve_ckpt_path(ckpt_path: str, cfg: Namespace) -> Path:
    """`best` or `last` mean that checkpoint of the newest run of this config; anything else is a file."""
    if ckpt_path in ("best", "last"):
        folder, pattern = checkpoint_folders(cfg)
        runs = sorted(folder.glob(f"{pattern}/{ckpt_path}.ckpt"), key=os.path.getmtime)
        if not runs:
            raise CheckpointError(
                f"no '{ckpt_path}' checkpoint under {folder}: run `fit` with this config first, or pass the "
                "checkpoint file (a ModelCheckpoint of your own in trainer.callbacks names its files itself)"
            )
        print(f"Using checkpoint {runs[-1]}", file=sys.stderr)
        return runs[-1]
    path = Path(ckpt_path)
    if path.is_dir():
        raise CheckpointError(f"'{ckpt_path}' {NOT_A_MODEL}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{ckpt_path}' does not exist")
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint's contents without running code from it."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"'{path}' is not a textcls checkpoint ({type(err).__name__})") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"'{path}' is not a textcls checkpoint (no weights and hyper-parameters)")
    hparams = ckpt["hyper_parameters"]
    if not isinstance(hparams, dict) or not {"model_name_or_path", "label_names"} <= hparams.keys():
        names = (
            ", ".join(k for k in hparams if not str(k).startswith("_")) if isinstance(hparams, dict) else ""
        )
        raise CheckpointError(
            f"'{path}' is not a textcls checkpoint: another LightningModule wrote it (its hyper-parameters "
            f"are {names or 'none'}, not a TextClassifier's)"
        )
    return ckpt


def check_weights_fit(stored: dict, built: dict, label_names: list[str]) -> None:
    """Refuse a checkpoint whose weights (`stored`) do not fit the network its own settings build
    (`built`): a hand-edited or mixed-up checkpoint, which would otherwise fail deep in loading."""
    for key, weight in built.items():
        if key not in stored or stored[key].shape == weight.shape:
            continue
        if weight.shape[:1] == (len(label_names),) and stored[key].shape[1:] == weight.shape[1:]:
            raise CheckpointError(
                f"the checkpoint is inconsistent: its classification head has {stored[key].shape[0]} "
                f"outputs, but it lists {len(label_names)} labels ({', '.join(map(str, label_names))})"
            )
        raise CheckpointError(
            f"the checkpoint is inconsistent: its weight '{key}' has shape {tuple(stored[key].shape)}, but "
            f"its backbone builds {tuple(weight.shape)}"
        )


def checkpoint_overrides(ckpt: dict) -> dict:
    """The config values a checkpoint carries: the model's settings, its label names, max_length and
    how it read long texts.

    The backbone is built from its config alone (`pretrained: false`): the checkpoint has the weights.
    """
    model_hp = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if not k.startswith("_")}
    data_hp = ckpt.get("datamodule_hyper_parameters", {})
    # label names and multi_label reach the model through links from the data: set them there
    linked = ("label_names", "multi_label", "problem_type")
    overrides = {"model": {k: v for k, v in model_hp.items() if k not in linked}}
    overrides["model"]["pretrained"] = False
    # a checkpoint written before model.pooling existed has the architecture's own head
    overrides["model"].setdefault("pooling", "pooler")
    overrides["data"] = {
        "labels": model_hp.get("label_names"),
        "multi_label": model_hp.get("multi_label", False),
        "problem_type": model_hp.get("problem_type"),
    }
    for key in ("max_length", *LAYOUT_KEYS, *INPUT_KEYS):
        if key in data_hp:
            overrides["data"][key] = data_hp[key]
    return overrides


def warn_replaced_settings(overrides: dict, cfg: Namespace, defaults: Namespace) -> None:
    """One warning line naming each of `CARRIED_SETTINGS` that a config sets (to other than its default)
    and a checkpoint's or exported folder's `overrides` replace with another value."""
    carried = {f"{part}.{k}": v for part in ("model", "data") for k, v in overrides.get(part, {}).items()}
    if overrides.get("ckpt_path") is None:  # an exported folder is the backbone: compare its original
        exported = _training_settings(carried["model.model_name_or_path"])
        carried["model.model_name_or_path"] = exported.get("model", {}).get("model_name_or_path")
    replaced = [
        f"{name} {cfg.get(name)!r} -> {carried[name]!r}"
        for name in CARRIED_SETTINGS
        if carried.get(name) is not None and cfg.get(name) not in (carried[name], defaults.get(name))
    ]
    if replaced:
        print(
            "textcls: warning: the model of --ckpt_path was trained with other settings than the config's, "
            f"and keeps its own: {', '.join(replaced)}",
            file=sys.stderr,
        )


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks (checkpoints can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def measured_checkpoint(metrics_path: Path) -> str | None:
    """The SHA-256 of the checkpoint a test report's `metrics.json` measured (None when it does not say)."""
    try:
        recorded = json.loads(metrics_path.read_text(encoding="utf-8")).get("checkpoint")
    except (OSError, ValueError, AttributeError):
        return None
    return recorded.get("sha256") if isinstance(recorded, dict) else None


def find_test_report(ckpt_path: Path) -> Path | None:
    """The `metrics.json` of a test of exactly this checkpoint (matched on its content hash), if any.

    `textcls test` writes its report into its own run folder, next to the training run's folder:
    the checkpoint's run folder and its siblings are searched, newest first.
    """
    run_dir = ckpt_path.resolve().parent.parent  # <run>/checkpoints/<name>.ckpt
    candidates = sorted(run_dir.parent.glob(f"*/{METRICS_FILE}"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        return None
    sha256 = file_sha256(ckpt_path)
    return next((p for p in reversed(candidates) if measured_checkpoint(p) == sha256), None)
