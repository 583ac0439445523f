"""The command line: `textcls <command> --config configs/quickstart.yaml ...`, one table of commands.

`fit`, `validate`, `test` and `predict` run through LightningCLI; `check-data` and `baseline` parse
the same config (LightningCLI without the Trainer); `export`, `explain` and `app` are functions whose
docstrings are their `--help`. Every run gets the same defaults (`TextclsCLI.add_arguments_to_parser`),
so a config holds only what is specific to it.
"""

import os
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from jsonargparse import auto_cli
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from textcls.backbone import BackboneError
from textcls.baseline import Baselines, run_baselines
from textcls.callbacks import (
    BestAndLastCheckpoint,
    FiniteLossCheck,
    NonFiniteLossError,
    PredictionError,
    PredictionWriter,
    ResumeCheckpoint,
    ThroughputLogger,
    TrainingTime,
)
from textcls.callbacks.defaults import gives_way
from textcls.checkpoint import (
    CheckpointError,
    checkpoint_overrides,
    default_logger,
    exported_overrides,
    is_exported_folder,
    load_checkpoint,
    logger_dir,
    resolve_ckpt_path,
    warn_replaced_settings,
)
from textcls.checks.callback import DataCheck
from textcls.data import DataError, TextClassificationData
from textcls.explain import ExplainError
from textcls.export import ExportError
from textcls.model import HyperParameterError, TextClassifier
from textcls.parser import CommandParser, ConfigError, TextclsParser
from textcls.precision import PrecisionError, run_precision
from textcls.quantize import QuantizeError
from textcls.quiet import quiet_libraries
from textcls.report import BASELINES_FOLDER, TestReport
from textcls.tasks import KINDS, problem_type_of

# Errors a user causes and can fix: shown as one line, not a traceback (TEXTCLS_DEBUG=1 shows it).
USER_ERRORS = (
    ConfigError,
    DataError,
    HyperParameterError,
    BackboneError,
    CheckpointError,
    PredictionError,
    ExportError,
    ExplainError,
    NonFiniteLossError,
    QuantizeError,
    PrecisionError,
    MisconfigurationException,  # Lightning's word for settings that contradict each other
)
OUT_OF_MEMORY = (
    "out of GPU memory: lower data.batch_size (and raise trainer.accumulate_grad_batches to keep the "
    "effective batch size), or lower data.max_length"
)
BUG_HINT = (
    "textcls: this is not a problem with your input but a bug in textcls or a library it uses: "
    "please report it with the traceback above"
)
# `--ckpt_path none`: evaluate or predict with the backbone and an untrained classification head, on purpose
NO_CHECKPOINT = "none"
EVALUATING = ("validate", "test", "predict")
MONITOR = {"monitor": "val/f1_macro", "mode": "max"}  # what "best" means, for checkpoints and early stopping


class TextclsCLI(LightningCLI):
    """LightningCLI with the defaults every run needs, the links between data and model,
    checkpoint-carried settings and automatic precision."""

    untrained_head = False  # `--ckpt_path none`: the report must say so

    def add_arguments_to_parser(self, parser) -> None:
        # The tokenizer must always match the model: the data takes the model's backbone.
        parser.link_arguments("model.model_name_or_path", "data.model_name_or_path")
        parser.link_arguments("model.trust_remote_code", "data.trust_remote_code")
        # The label names come from the data (or from a checkpoint, through data.labels).
        parser.link_arguments("data.label_names", "model.label_names", apply_on="instantiate")
        parser.link_arguments("data.multi_label", "model.multi_label")
        parser.link_arguments("data.problem_type", "model.problem_type")
        # One seed: the run's seed also draws the splits, the sample and the batch order.
        parser.link_arguments("seed_everything", "data.seed", compute_fn=_data_seed)
        # compiled models get few distinct batch shapes, so recompiles stay bounded
        parser.link_arguments("model.compile", "data.bucket_lengths")
        # On every run without being listed in a config; each is configurable (`--early_stopping.patience 5`).
        parser.add_lightning_class_args(BestAndLastCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.filename": "best", "checkpoint.save_last": True})
        parser.set_defaults({f"checkpoint.{k}": v for k, v in MONITOR.items()})
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults({f"early_stopping.{k}": v for k, v in {**MONITOR, "patience": 3}.items()})
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults({"lr_monitor.logging_interval": "step"})
        parser.add_lightning_class_args(PredictionWriter, "prediction")
        parser.add_lightning_class_args(DataCheck, "data_check")
        parser.add_lightning_class_args(TestReport, "report")
        # one target: the test report measures the cut-off that `predict` would use (0.95 when unset)
        parser.link_arguments("prediction.target_precision", "report.target_precision")
        # `--throughput.enabled false` turns it off
        parser.add_lightning_class_args(ThroughputLogger, "throughput")

    def _parse_ckpt_path(self) -> None:
        """Make `--ckpt_path best|last|FILE|EXPORTED_FOLDER` usable on its own: the checkpoint supplies
        the backbone, the label names and the tokenizer settings it was trained with.

        Replaces LightningCLI's own version, which reads files only and would re-apply the training
        hyper-parameters over these settings.
        """
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
            overrides = exported_overrides(cfg.ckpt_path)
        else:
            ckpt_path = str(resolve_ckpt_path(cfg.ckpt_path, cfg))
            overrides = {**checkpoint_overrides(load_checkpoint(ckpt_path)), "ckpt_path": ckpt_path}
            if cfg.get("weights_only") is None:
                # Lightning's own loading of the checkpoint: no code execution either
                overrides["weights_only"] = True
        warn_replaced_settings(overrides, cfg, self._subcommand_parsers[subcommand].get_defaults())
        try:
            self.config = self.parser.parse_object({subcommand: overrides}, self.config)
        except ConfigError as err:  # the config was parsed before: the checkpoint's settings do not fit
            problem = f"--ckpt_path {cfg.ckpt_path} carries settings this textcls cannot use"
            raise CheckpointError(f"{problem}: {err.problem}") from err

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand]
        args = (cfg.trainer.accelerator, cfg.trainer.precision, cfg.prediction.quantize)
        cfg.trainer.precision = run_precision(self.subcommand, *args)
        # "best" is the task's: validation macro F1 for classifiers, Pearson for a regression
        monitor = KINDS[problem_type_of(cfg.data)].monitor
        for key in ("checkpoint", "early_stopping"):
            if {"monitor": cfg[key].monitor, "mode": cfg[key].mode} == MONITOR:  # not set by the user
                cfg[key].monitor, cfg[key].mode = monitor["monitor"], monitor["mode"]

    def instantiate_trainer(self, **kwargs) -> Trainer:
        """The Trainer with textcls's own callbacks, less those that give way to the user's settings."""
        config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        keys = self._parser(self.subcommand).callback_keys
        own = [self._get(self.config_init, key) for key in keys if not gives_way(key, config)]
        return self._instantiate_trainer(config, own)

    def before_test(self) -> None:
        if self.untrained_head:
            for callback in self.trainer.callbacks:
                if isinstance(callback, TestReport):
                    callback.untrained = True  # the report must not call this model fine-tuned


def _data_seed(seed: bool | int | None) -> int:
    # seed_everything may be true (a random seed, drawn later): the data then keeps its fixed default
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else 42


def run_name(args: list[str]) -> str:
    """The name of a run's log folder: the last `--config` file's name (`lightning_logs/quickstart`)."""
    configs = [b for a, b in zip(args, args[1:], strict=False) if a == "--config"]
    configs += [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    return Path(configs[-1]).stem if configs else "default"


def make_cli(args: list[str], cli_class: type[LightningCLI] | None = None, **kwargs) -> LightningCLI:
    """Parse `args` (and run them unless `run=False` is passed) with the shared defaults."""
    logger = default_logger(run_name(args))
    with warnings.catch_warnings():  # args are sys.argv minus what main() consumed, as intended
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return (cli_class or TextclsCLI)(
            TextClassifier,
            TextClassificationData,
            seed_everything_default=42,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={
                "logger": logger,
                "gradient_clip_val": 1.0,
                **kwargs.pop("trainer_defaults", {}),
            },
            args=args,
            parser_class=TextclsParser,
            **kwargs,
        )


# ----------------------------------------------------------------------------- the commands


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


def lightning_command(args: list[str]) -> None:
    """Run a Trainer command; an interrupted `fit` saves a checkpoint and says how to resume."""
    resume = ResumeCheckpoint()
    try:
        make_cli(args, trainer_defaults={"callbacks": [resume, FiniteLossCheck(), TrainingTime()]})
    except (SIGTERMException, KeyboardInterrupt) as err:
        where = f"; resume with `--ckpt_path last` (or --ckpt_path {resume.saved})" if resume.saved else ""
        print(f"textcls: interrupted{where}", file=sys.stderr)
        # the first Ctrl+C reaches us as Lightning's SIGTERMException (see ResumeCheckpoint)
        sigterm = isinstance(err, SIGTERMException) and not resume.interrupted_by_ctrl_c
        sys.exit(143 if sigterm else 130)


def check_data_command(args: list[str]) -> None:
    """Check the data of a config: class counts, label problems, empty, duplicate and leaked texts, token
    lengths, after the same reading and splitting as fit. Writes data_check.json, split_rows.json and
    class_counts.png into --output_dir (default: <logger folder>/data_check). Exit code 2 on errors."""
    cli = _tool_cli("check-data", args)
    folder = Path(cli.config.output_dir) if cli.config.output_dir else logger_dir(cli.config) / "data_check"
    cli.data_check.run(cli.datamodule, folder, say=print)
    print(f"Wrote {folder / 'data_check.json'}")


class BaselineCLI(ToolCLI):
    """ToolCLI with the baselines' own options (`--baseline.methods`, `--baseline.label_descriptions`, ...)."""

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_class_arguments(Baselines, "baseline")


def baseline_command(args: list[str]) -> None:
    """Run baselines on exactly the splits of a config: TF-IDF models, a frozen encoder and zero-shot.
    The trained ones pick their hyper-parameter on the validation rows; each writes a test report like
    `test` into --output_dir (default: <logger folder>/baselines, where `test` looks for them)."""
    cli = _tool_cli("baseline", args, BaselineCLI)
    folder = (
        Path(cli.config.output_dir) if cli.config.output_dir else logger_dir(cli.config) / BASELINES_FOLDER
    )
    run_baselines(cli.datamodule, folder, Baselines(**cli.config.baseline))


def _tool_cli(name: str, args: list[str], cli_class: type[ToolCLI] = ToolCLI) -> ToolCLI:
    description = COMMANDS[name].__doc__
    # LightningCLI without subcommands: the parser is the command's own
    return make_cli(
        args, cli_class, run=False, parser_kwargs={"description": description, "prog": f"textcls {name}"}
    )


def export_command(args: list[str]) -> None:
    """Write a checkpoint as a Hugging Face model folder (and optionally ONNX); see `textcls export --help`."""
    from textcls.export import export_cli

    auto_cli(export_cli, args=args, as_positional=False, prog="textcls export", parser_class=CommandParser)


def explain_command(args: list[str]) -> None:
    """Explain predictions word by word (Integrated Gradients, the explain extra); see `textcls explain --help`."""
    from textcls.explain import explain_cli

    # `--text A --text B` adds up (jsonargparse's own spelling is `--text+`)
    args = [
        "--text+" if a == "--text" else "--text+=" + a[7:] if a.startswith("--text=") else a for a in args
    ]
    # a parser of our own: auto_cli would take --config as a file of this command's options
    parser = CommandParser(prog="textcls explain", description=explain_cli.__doc__.split("\n\n")[0])
    parser.add_function_arguments(explain_cli, as_group=False)
    explain_cli(**parser.instantiate_classes(parser.parse_args(args)))


def app_command(args: list[str]) -> None:
    """Serve a classifier as a web app on localhost (the app extra); see `textcls app --help`."""
    from textcls.app import launch

    auto_cli(launch, args=args, as_positional=False, prog="textcls app", parser_class=CommandParser)


COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "fit": lightning_command,
    "validate": lightning_command,
    "test": lightning_command,
    "predict": lightning_command,
    "check-data": check_data_command,
    "baseline": baseline_command,
    "export": export_command,
    "explain": explain_command,
    "app": app_command,
}
SUMMARIES = {
    "fit": "Fine-tune the model on a config's data (checkpoints, early stopping, TensorBoard).",
    "validate": "Evaluate a checkpoint on the validation split.",
    "test": "Evaluate a checkpoint on the test split and write the test report.",
    "predict": "Classify data.predict_file with a checkpoint or exported folder.",
}


def usage() -> str:
    lines = [
        "usage: textcls <command> [--config CONFIG] [options]  (textcls <command> --help for its options)",
        "",
    ]
    for name, command in COMMANDS.items():
        summary = SUMMARIES.get(name) or command.__doc__.split(".")[0] + "."
        lines.append(f"  {name:<11} {' '.join(summary.split())}")
    lines.append(
        "\nGlobal: --verbose (or TEXTCLS_VERBOSE=1) shows library warnings and load reports; "
        "TEXTCLS_DEBUG=1 shows tracebacks of user errors."
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- errors


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
    """Run the command line; user errors end in one line on stderr and exit code 2."""
    argv = sys.argv[1:] if args is None else list(args)
    debug = os.environ.get("TEXTCLS_DEBUG", "0") not in ("", "0")
    verbose = "--verbose" in argv or os.environ.get("TEXTCLS_VERBOSE", "0") not in ("", "0")
    argv = [a for a in argv if a != "--verbose"]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(usage(), file=sys.stdout if argv else sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"textcls: error: unknown command '{argv[0]}'", file=sys.stderr)
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    if not verbose:
        quiet_libraries()
    try:
        COMMANDS[argv[0]](argv if argv[0] in SUMMARIES else argv[1:])
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
