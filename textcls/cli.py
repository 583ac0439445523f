"""The command line: `textcls <command> --config configs/quickstart.yaml ...`, one table of commands.

`fit`, `validate`, `test` and `predict` run through LightningCLI (built in `launch.py`); `check-data` and
`baseline` parse the same config (LightningCLI without the Trainer); `export`, `explain` and `app` are
functions whose docstrings are their `--help`.
"""

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from jsonargparse import auto_cli
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.exceptions import SIGTERMException

from textcls.backbone import BackboneError
from textcls.baseline import Baselines, run_baselines
from textcls.callbacks import (
    FiniteLossCheck,
    NonFiniteLossError,
    PredictionError,
    ResumeCheckpoint,
    TrainingTime,
)
from textcls.checkpoint import CheckpointError, logger_dir
from textcls.data import DataError
from textcls.experiments.learning_curve import LearningCurveCLI, run_learning_curve
from textcls.experiments.runs import ExperimentError
from textcls.experiments.tune import TuneCLI, run_tune
from textcls.explain import ExplainError
from textcls.export import ExportError
from textcls.label_issues import LabelIssuesCLI, LabelIssuesError, label_issues
from textcls.launch import ToolCLI, make_cli, run_name, tool_cli
from textcls.model import HyperParameterError
from textcls.parser import CommandParser, ConfigError
from textcls.precision import PrecisionError
from textcls.quantize import QuantizeError
from textcls.quiet import quiet_libraries
from textcls.report import BASELINES_FOLDER
from textcls.serve import ServeError

__all__ = ["main", "run_name", "user_error", "USER_ERRORS"]

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
    LabelIssuesError,
    ExperimentError,
    ServeError,
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


def label_issues_command(args: list[str]) -> None:
    """Find likely label errors: out-of-fold probabilities for every training and validation row from
    --folds stratified folds (--method frozen: frozen-encoder embeddings and a logistic regression per
    fold; finetune: a fit per fold with the config's settings), ranked by cleanlab (the labels extra).
    Writes label_issues.csv and label_issues.md into --output_dir (default: <logger folder>/label_issues)."""
    label_issues(_tool_cli("label-issues", args, LabelIssuesCLI), args)


def learning_curve_command(args: list[str]) -> None:
    """Fine-tune and run the TF-IDF baseline on nested, stratified subsets of the training split, scored on
    the same test rows. Would more labelled data help? --fractions and --seeds set the subsets; writes
    learning_curve.csv, .png and .md into --output_dir (default: <logger folder>/learning_curve, one run
    folder per fit)."""
    run_learning_curve(_tool_cli("learning-curve", args, LearningCurveCLI), args)


def tune_command(args: list[str]) -> None:
    """Search a config's settings with Optuna (TPE sampler, median pruner; the tune extra), each trial a fit.
    Trials go to --output_dir (default: <logger folder>/tune/trial_N), the study to --storage (resumable);
    writes best.yaml (for `fit --config C --config best.yaml`), trials.csv, history.png and importance.png."""
    run_tune(_tool_cli("tune", args, TuneCLI), args)


def _tool_cli(name: str, args: list[str], cli_class: type[ToolCLI] = ToolCLI) -> ToolCLI:
    return tool_cli(name, args, COMMANDS[name].__doc__, cli_class)


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


def serve_command(args: list[str]) -> None:
    """Serve a classifier over HTTP with dynamic batching (the serve extra); see `textcls serve --help`."""
    from textcls.serve import serve

    auto_cli(serve, args=args, as_positional=False, prog="textcls serve", parser_class=CommandParser)


COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "fit": lightning_command,
    "validate": lightning_command,
    "test": lightning_command,
    "predict": lightning_command,
    "check-data": check_data_command,
    "baseline": baseline_command,
    "label-issues": label_issues_command,
    "learning-curve": learning_curve_command,
    "tune": tune_command,
    "export": export_command,
    "explain": explain_command,
    "app": app_command,
    "serve": serve_command,
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
        lines.append(f"  {name:<14} {' '.join(summary.split())}")
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
