"""The command line: `textcls fit|validate|test|predict --config configs/quickstart.yaml`."""

import os
import sys
from pathlib import Path

import torch
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from textcls.backbone import BackboneNotFoundError
from textcls.callbacks import PredictionWriter
from textcls.data import DataError, TextClassificationData
from textcls.faults import FiniteLossCheck, NonFiniteLossError, ResumeCheckpoint
from textcls.model import HyperParameterError, TextClassifier


class CheckpointError(ValueError):
    """A --ckpt_path that cannot be used."""


# Errors a user causes and can fix: shown as one line, not a traceback (TEXTCLS_DEBUG=1 shows it).
USER_ERRORS = (
    DataError,
    HyperParameterError,
    BackboneNotFoundError,
    CheckpointError,
    FileNotFoundError,
    NonFiniteLossError,
)
OUT_OF_MEMORY = (
    "out of GPU memory: lower data.batch_size (and raise trainer.accumulate_grad_batches to keep the "
    "effective batch size), or lower data.max_length"
)


class TextclsCLI(LightningCLI):
    """LightningCLI with the links between data and model, checkpoint-carried settings and auto precision."""

    def add_arguments_to_parser(self, parser) -> None:
        # The tokenizer must always match the model: the data takes the model's backbone.
        parser.link_arguments("model.model_name_or_path", "data.model_name_or_path")
        parser.link_arguments("model.trust_remote_code", "data.trust_remote_code")
        # The label names come from the data (or from a checkpoint, through data.labels).
        parser.link_arguments("data.label_names", "model.label_names", apply_on="instantiate")
        parser.add_lightning_class_args(PredictionWriter, "prediction")

    def _parse_ckpt_path(self) -> None:
        """Make `--ckpt_path best|last|FILE` usable on its own: the checkpoint supplies the backbone,
        the label names and the tokenizer settings it was trained with."""
        subcommand = self.config.get("subcommand")
        if not subcommand or not self.config[subcommand].get("ckpt_path"):
            return
        cfg = self.config[subcommand]
        cfg.ckpt_path = str(resolve_ckpt_path(cfg.ckpt_path, cfg))
        if cfg.get("weights_only") is None:
            cfg.weights_only = True  # Lightning's own loading of the checkpoint: no code execution either
        ckpt = load_checkpoint(cfg.ckpt_path)
        model_hp = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if not k.startswith("_")}
        data_hp = ckpt.get("datamodule_hyper_parameters", {})
        overrides = {"model": {k: v for k, v in model_hp.items() if k != "label_names"}}
        overrides["data"] = {"labels": model_hp.get("label_names")}
        if "max_length" in data_hp:
            overrides["data"]["max_length"] = data_hp["max_length"]
        self.config[subcommand] = self.parser._subcommands_action._name_parser_map[subcommand].parse_object(
            overrides, cfg
        )

    def before_instantiate_classes(self) -> None:
        trainer = self.config[self.subcommand].trainer
        if trainer.precision is None:
            trainer.precision = auto_precision(trainer.accelerator)


def auto_precision(accelerator) -> str:
    """bf16 where the GPU supports it, fp16 on older GPUs, full precision on CPU."""
    wants_gpu = accelerator in (None, "auto", "gpu", "cuda")
    if wants_gpu and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


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


def resolve_ckpt_path(ckpt_path: str, cfg: Namespace) -> Path:
    """`best` or `last` mean that checkpoint of the newest run of this config; anything else is a file."""
    if ckpt_path in ("best", "last"):
        runs = sorted(logger_dir(cfg).glob(f"version_*/checkpoints/{ckpt_path}.ckpt"), key=os.path.getmtime)
        if not runs:
            raise CheckpointError(
                f"no '{ckpt_path}' checkpoint under {logger_dir(cfg)}: run `fit` with this config first, "
                "or pass the checkpoint file"
            )
        print(f"Using checkpoint {runs[-1]}", file=sys.stderr)
        return runs[-1]
    path = Path(ckpt_path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{ckpt_path}' does not exist")
    return path


def load_checkpoint(path: str) -> dict:
    """Load a checkpoint's contents without running code from it."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"'{path}' is not a textcls checkpoint ({type(err).__name__})") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"'{path}' is not a textcls checkpoint (no weights and hyper-parameters)")
    return ckpt


def user_error(err: BaseException) -> BaseException | None:
    """The user error behind `err`, which Lightning or jsonargparse may have wrapped, if there is one."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, USER_ERRORS):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def main(args: list[str] | None = None) -> None:
    """Run the command line; user errors end in one line on stderr and exit code 2.

    An interrupted `fit` saves a checkpoint, says how to resume and exits with 130 (Ctrl+C) or 143 (SIGTERM).
    """
    debug = os.environ.get("TEXTCLS_DEBUG", "0") not in ("", "0")
    resume = ResumeCheckpoint()
    try:
        TextclsCLI(
            TextClassifier,
            TextClassificationData,
            seed_everything_default=42,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"callbacks": [resume, FiniteLossCheck()]},
            args=args,
        )
    except (SIGTERMException, KeyboardInterrupt) as err:
        where = f"; resume with `--ckpt_path last` (or --ckpt_path {resume.saved})" if resume.saved else ""
        print(f"textcls: interrupted{where}", file=sys.stderr)
        sys.exit(143 if isinstance(err, SIGTERMException) else 130)
    except torch.cuda.OutOfMemoryError:
        if debug:
            raise
        print(f"textcls: error: {OUT_OF_MEMORY}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:
        cause = user_error(err)
        if cause is None or debug:
            raise
        print(f"textcls: error: {cause}", file=sys.stderr)
        sys.exit(2)
