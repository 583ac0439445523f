"""LightningCLI as textcls runs it: the shared defaults, the links between data and model, the settings a
checkpoint carries, automatic precision, and `ToolCLI` for commands that need the data but not the Trainer.

Commands in `textcls/cli.py` (and those defined beside their feature, such as `serve`) build their
parsers here, so this module imports no command.
"""

import warnings
from pathlib import Path

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
from lightning.pytorch.cli import LightningCLI

from textcls.callbacks import (
    BestAndLastCheckpoint,
    PredictionWriter,
    ThroughputLogger,
)
from textcls.callbacks.defaults import gives_way
from textcls.checkpoint import (
    CheckpointError,
    checkpoint_overrides,
    default_logger,
    exported_overrides,
    is_exported_folder,
    load_checkpoint,
    resolve_ckpt_path,
    warn_replaced_settings,
)
from textcls.checks.callback import DataCheck
from textcls.data import TextClassificationData
from textcls.model import TextClassifier
from textcls.parser import ConfigError, TextclsParser
from textcls.precision import run_precision
from textcls.report import TestReport
from textcls.tasks import KINDS, problem_type_of

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
        if self.subcommand == "predict" and cfg.get("return_predictions") is None:
            cfg.return_predictions = False  # the writer streams them to a file; kept, they would fill memory
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


def tool_cli(name: str, args: list[str], description: str, cli_class: type[ToolCLI] = ToolCLI) -> ToolCLI:
    """Parse `args` for the command `textcls <name>` (a ToolCLI: config, overrides, `--output_dir`) without
    running anything; `description` is its `--help` text."""
    # LightningCLI without subcommands: the parser is the command's own
    return make_cli(
        args, cli_class, run=False, parser_kwargs={"description": description, "prog": f"textcls {name}"}
    )
