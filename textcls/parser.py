"""The parsers of every command: a command line or config file they refuse ends in one line.

jsonargparse answers a parse error with the whole usage (a hundred lines for `fit`) before the one
line that matters, and a config file that is not valid YAML with a position but not the file. These
parsers raise `ConfigError` instead, which `textcls.cli.main` prints as one line; `--help` is unchanged.
Settings that parse but would make `fit` train nothing are refused here too.
"""

import re

from jsonargparse import ArgumentParser, Namespace
from lightning.pytorch.cli import LightningArgumentParser
from yaml import MarkedYAMLError


class ConfigError(Exception):
    """A command line or config file that cannot be parsed: an unknown option, a value of the wrong
    type, a config file that does not exist or is not valid YAML.

    Not a ValueError: jsonargparse catches those while it tries a value against several types.
    """

    def __init__(self, problem: str, hint: str = ""):
        super().__init__(problem + hint)
        self.problem = problem  # without the pointer to --help


class OneLineErrors:
    """Parse errors as a `ConfigError` of one line (with a pointer to `--help`), not usage and exit."""

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:  # a parser jsonargparse builds to try a value: it catches this
            return super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        # `Parser key "data.batch_size": ...` is about the option --data.batch_size
        message = re.sub(r'^Parser key "([^"]+)":\s*', r"--\1: ", message)
        # the same unknown key, in a command's words or a group's: one name, in full
        message = re.sub(
            r"^Subcommand '[^']+' does not accept option '([^']+)'", r"unknown option '\1'", message
        )
        message = re.sub(
            r"^Group '([^']+)' does not accept option '([^']+)'", r"unknown option '\1.\2'", message
        )
        command = parser.prog.replace(" [options]", "")
        raise ConfigError(" ".join(message.split()), f" (see `{command} --help`)") from ex

    def parse_args(self, *args, **kwargs) -> Namespace:
        cfg = super().parse_args(*args, **kwargs)
        if cfg.get("subcommand") == "fit":
            refuse_empty_training(cfg.fit.trainer)
        return cfg

    def parse_path(self, path, *args, **kwargs):
        try:
            return super().parse_path(path, *args, **kwargs)
        except ConfigError as err:
            raise ConfigError(f"config file '{path}' {_config_problem(err)}") from err


def _config_problem(err: ConfigError) -> str:
    """What is wrong with a config file: the YAML error and where, or what the parser said."""
    cause = err.__cause__
    while cause is not None and not isinstance(cause, MarkedYAMLError):
        cause = cause.__cause__
    if cause is None:
        return f"is not a valid config: {err}"
    mark = cause.problem_mark or cause.context_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"is not valid YAML: {cause.problem or cause.context}{where}"


def refuse_empty_training(trainer: Namespace) -> None:
    """ConfigError for `fit` settings with which Lightning trains nothing and exits 0 as if it had."""
    for key in ("max_epochs", "max_steps"):
        if trainer.get(key) == 0:
            raise ConfigError(f"--trainer.{key} 0 trains nothing: use 1 or more, or -1 for no limit")
    if trainer.get("limit_train_batches") == 0:
        raise ConfigError(
            "--trainer.limit_train_batches 0 trains nothing: use a share of the batches in (0, 1] or a "
            "number of batches of 1 or more"
        )


class TextclsParser(OneLineErrors, LightningArgumentParser):
    """The parser of the Lightning commands (`fit`, `test`, ..., `check-data`, `baseline`)."""

    def __init__(self, *args, prog: str = "textcls", **kwargs):
        super().__init__(*args, prog=prog, **kwargs)


class CommandParser(OneLineErrors, ArgumentParser):
    """The parser of the function commands (`export`, `explain`, `app`)."""
