"""The command line: `textcls fit|validate|test|predict|check-data|baseline --config configs/quickstart.yaml`."""

import os
import sys
import traceback
import warnings
from pathlib import Path

import torch
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from textcls.backbone import BackboneNotFoundError
from textcls.baseline import run_baselines
from textcls.callbacks import PredictionError, PredictionWriter, ThroughputLogger
from textcls.checks import DataCheck
from textcls.data import DataError, TextClassificationData
from textcls.export import ExportError
from textcls.faults import FiniteLossCheck, NonFiniteLossError, ResumeCheckpoint
from textcls.inference import exported_settings, is_exported_folder
from textcls.model import HyperParameterError, TextClassifier
from textcls.report import BASELINES_FOLDER, TestReport


class CheckpointError(ValueError):
    """A --ckpt_path that cannot be used."""


# Errors a user causes and can fix: shown as one line, not a traceback (TEXTCLS_DEBUG=1 shows it).
USER_ERRORS = (
    DataError,
    HyperParameterError,
    BackboneNotFoundError,
    CheckpointError,
    PredictionError,
    ExportError,
    NonFiniteLossError,
)
BUG_HINT = (
    "textcls: this is not a problem with your input but a bug in textcls or a library it uses: "
    "please report it with the traceback above"
)
# `--ckpt_path none`: evaluate or predict with the backbone and an untrained classification head, on purpose
NO_CHECKPOINT = "none"
EVALUATING = ("validate", "test", "predict")
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
        parser.add_lightning_class_args(DataCheck, "data_check")
        parser.add_lightning_class_args(TestReport, "report")
        # on every fit without being listed in the config; `--throughput.enabled false` turns it off
        parser.add_lightning_class_args(ThroughputLogger, "throughput")
        # compiled models get few distinct batch shapes, so recompiles stay bounded
        parser.link_arguments("model.compile", "data.bucket_lengths")

    def _parse_ckpt_path(self) -> None:
        """Make `--ckpt_path best|last|FILE|EXPORTED_FOLDER` usable on its own: the checkpoint supplies
        the backbone, the label names and the tokenizer settings it was trained with."""
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        cfg = self.config[subcommand]
        if subcommand in EVALUATING and not cfg.get("ckpt_path"):
            raise CheckpointError(
                f"`{subcommand}` needs --ckpt_path best|last|FILE|EXPORTED_FOLDER (or --ckpt_path "
                f"{NO_CHECKPOINT} to use the untrained classification head on purpose)"
            )
        if subcommand in EVALUATING and cfg.ckpt_path == NO_CHECKPOINT:
            cfg.ckpt_path = None
            self.untrained_head = True
            return
        if not cfg.get("ckpt_path"):
            return
        if is_exported_folder(cfg.ckpt_path):
            # an exported folder holds the weights: it becomes the backbone, and no checkpoint is loaded
            overrides = {
                "model": {"model_name_or_path": cfg.ckpt_path},
                "data": exported_settings(cfg.ckpt_path),
            }
            cfg.ckpt_path = None
        else:
            cfg.ckpt_path = str(resolve_ckpt_path(cfg.ckpt_path, cfg))
            if cfg.get("weights_only") is None:
                cfg.weights_only = True  # Lightning's own loading of the checkpoint: no code execution either
            overrides = checkpoint_overrides(load_checkpoint(cfg.ckpt_path))
        subparser = self.parser._subcommands_action._name_parser_map[subcommand]
        self.config[subcommand] = subparser.parse_object(overrides, cfg)

    untrained_head = False

    def before_instantiate_classes(self) -> None:
        trainer = self.config[self.subcommand].trainer
        if trainer.precision is None:
            trainer.precision = auto_precision(trainer.accelerator)

    def before_test(self) -> None:
        if self.untrained_head:
            for callback in self.trainer.callbacks:
                if isinstance(callback, TestReport):
                    callback.untrained = True  # the report must not call this model fine-tuned


# Commands that need only the data section of a config; LightningCLI knows only Trainer subcommands.
TOOLS = {
    "check-data": "Check the data of a config (the same reading and splitting as fit): class counts, label "
    "problems, empty, duplicate and leaked texts, token lengths. Writes data_check.json, split_rows.json and "
    "class_counts.png into --output_dir (default: <logger folder>/data_check). Exit code 2 on errors.",
    "baseline": "Train TF-IDF + logistic regression and TF-IDF + naive Bayes on exactly the train rows of a "
    "config, pick their hyper-parameter on its validation rows, and write test reports like `test` into "
    "--output_dir (default: <logger folder>/baselines, where `test` looks for them).",
}


class ToolCLI(TextclsCLI):
    """Parses a full config (model, data, trainer) for `check-data` and `baseline`, and builds only the data:
    the backbone's tokenizer is loaded when needed, its weights never."""

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--output_dir", type=str | None, default=None, help="Where to write the results.")

    def before_instantiate_classes(self) -> None:
        pass

    def instantiate_classes(self) -> None:
        self.datamodule = TextClassificationData(**self.config.data)
        self.data_check = DataCheck(**self.config.data_check)


def run_tool(name: str, args: list[str]) -> None:
    """Run `textcls check-data ...` or `textcls baseline ...`."""
    with warnings.catch_warnings():  # args come from sys.argv minus the tool's name, as intended
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        cli = ToolCLI(
            TextClassifier,
            TextClassificationData,
            seed_everything_default=42,
            run=False,
            args=args,
            parser_kwargs={"description": TOOLS[name], "prog": f"textcls {name}"},
        )
    default = "data_check" if name == "check-data" else BASELINES_FOLDER
    folder = Path(cli.config.output_dir) if cli.config.output_dir else logger_dir(cli.config) / default
    if name == "check-data":
        cli.data_check.run(cli.datamodule, folder, say=print)
        print(f"Wrote {folder / 'data_check.json'}")
    else:
        run_baselines(cli.datamodule, folder)


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


def checkpoint_overrides(ckpt: dict) -> dict:
    """The config values a checkpoint carries: the model's settings, its label names and max_length."""
    model_hp = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if not k.startswith("_")}
    data_hp = ckpt.get("datamodule_hyper_parameters", {})
    overrides = {"model": {k: v for k, v in model_hp.items() if k != "label_names"}}
    overrides["data"] = {"labels": model_hp.get("label_names")}
    if "max_length" in data_hp:
        overrides["data"]["max_length"] = data_hp["max_length"]
    return overrides


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
    argv = sys.argv[1:] if args is None else list(args)
    try:
        if argv and argv[0] in TOOLS:
            run_tool(argv[0], argv[1:])
            return
        if argv and argv[0] == "export":
            from textcls.export import main as export_main

            return export_main(argv[1:])
        if argv and argv[0] == "app":
            from textcls.app import launch

            return launch(argv[1:])
        TextclsCLI(
            TextClassifier,
            TextClassificationData,
            seed_everything_default=42,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={
                "description": "More commands (see their --help): " + ", ".join([*TOOLS, "export", "app"])
            },
            trainer_defaults={"callbacks": [resume, FiniteLossCheck()]},
            args=args,
        )
    except (SIGTERMException, KeyboardInterrupt) as err:
        where = f"; resume with `--ckpt_path last` (or --ckpt_path {resume.saved})" if resume.saved else ""
        print(f"textcls: interrupted{where}", file=sys.stderr)
        # the first Ctrl+C reaches us as Lightning's SIGTERMException (see ResumeCheckpoint)
        sigterm = isinstance(err, SIGTERMException) and not resume.interrupted_by_ctrl_c
        sys.exit(143 if sigterm else 130)
    except torch.cuda.OutOfMemoryError:
        if debug:
            raise
        print(f"textcls: error: {OUT_OF_MEMORY}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:
        cause = user_error(err)
        if debug:
            raise
        if cause is None:
            traceback.print_exc()
            print(BUG_HINT, file=sys.stderr)
            sys.exit(1)
        print(f"textcls: error: {cause}", file=sys.stderr)
        sys.exit(2)
