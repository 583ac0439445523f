"""`textcls label-issues`: out-of-fold probabilities for every training and validation row, ranked by
cleanlab, written as `label_issues.csv` and `label_issues.md`."""

import time
from pathlib import Path

from textcls.checkpoint import logger_dir
from textcls.label_issues.errors import LabelIssuesError
from textcls.label_issues.finetune import finetune_probabilities
from textcls.label_issues.folds import assign_folds, pooled_rows
from textcls.label_issues.frozen import frozen_probabilities
from textcls.label_issues.rank import rank_issues
from textcls.label_issues.write import write_issues
from textcls.launch import ToolCLI
from textcls.tasks import problem_type_of

METHODS = ("frozen", "finetune")
FOLDER = "label_issues"  # under the config's logger folder: the outputs, and the fold runs of `finetune`
OWN_OPTIONS = ("--folds", "--method", "--output_dir")


def check_options(folds: int, method: str) -> None:
    """Refuse options label-issues cannot work with, in one line."""
    if method not in METHODS:
        raise LabelIssuesError(f"--method must be one of {', '.join(METHODS)}, got '{method}'")
    if folds < 2:
        raise LabelIssuesError(
            f"--folds must be at least 2 (each row is scored by a model trained without it), got {folds}"
        )


class LabelIssuesCLI(ToolCLI):
    """ToolCLI with label-issues' own options, `--folds` and `--method`."""

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument(
            "--folds",
            type=int,
            default=5,
            help="Folds: each row is scored by the model trained on the others.",
        )
        parser.add_argument(
            "--method",
            type=str,
            default="frozen",
            help="frozen: frozen-encoder embeddings and a logistic regression per fold (minutes on CPU); "
            "finetune: a fit per fold with the config's settings.",
        )


def label_issues(cli: LabelIssuesCLI, args: list[str], say=print) -> Path:
    """Find likely label errors in the training and validation rows of the parsed config `cli`; `args`
    are the command's arguments, whose config and overrides each fold's `fit` takes. Returns the CSV."""
    cfg, data = cli.config, cli.datamodule
    check_options(cfg.folds, cfg.method)
    if problem_type_of(data.hparams) == "regression":
        raise LabelIssuesError(
            "label-issues is for labels: a regression's numeric targets have none to check"
        )
    root = logger_dir(cfg) / FOLDER
    folder = Path(cfg.output_dir) if cfg.output_dir else root
    rows = pooled_rows(data)
    multi = isinstance(rows["label"].iloc[0], tuple)
    folds = assign_folds(rows["label"], cfg.folds, data.hparams.seed, multi)
    start = time.perf_counter()
    if cfg.method == "frozen":
        probs = frozen_probabilities(rows, folds, data)
        models = "the frozen encoder's embeddings and a logistic regression per fold"
    else:
        probs = finetune_probabilities(rows, folds, data, fit_arguments(args), root)
        models = f"a model fine-tuned per fold (runs in {root})"
    seconds = time.perf_counter() - start
    issues = rank_issues(rows, probs, data.label_names, data.hparams.label_separator)
    how = (
        f"Out-of-fold probabilities from {cfg.folds} folds, {models}, in {seconds:.0f} s; ranked by cleanlab "
        "(self-confidence)."
    )
    csv, md = write_issues(issues, rows, data.label_names, folder, how, data.hparams.label_separator)
    say(f"{len(issues)} of {len(rows)} rows flagged; wrote {csv} and {md}")
    return csv


def fit_arguments(args: list[str]) -> list[str]:
    """`args` less label-issues' own options: the config files and overrides that `fit` takes."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in OWN_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{o}=" for o in OWN_OPTIONS)):
            out.append(arg)
    return out
