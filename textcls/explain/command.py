"""`textcls explain`: explain a checkpoint's or exported folder's predictions of texts given on the
command line or read from a file, as an HTML page (and JSON) or as lines in the terminal."""

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from textcls.checkpoint import default_logger, resolve_ckpt_path
from textcls.explain.attributions import (
    DEFAULT_INTERNAL_BATCH,
    DEFAULT_STEPS,
    ExplainError,
    explain_predictor,
)
from textcls.explain.view import format_text, write_explanations
from textcls.inference import Predictor, load_predictor


@dataclass
class TextFile:
    """Texts to explain from a file.

    Args:
        predict_file: A CSV, TSV, JSONL/JSON or Parquet file of texts (default: the config's data.predict_file).
        text_column: Its text column (default: the config's, else the checkpoint's, else `text`).
    """

    predict_file: str | None = None
    text_column: str | None = None


def config_settings(config: str) -> tuple[object, dict]:
    """A fit config's trainer settings (where its runs are, as `fit` names them) and its data section."""
    import yaml
    from jsonargparse import Namespace

    if not Path(config).is_file():
        raise ExplainError(f"config '{config}' does not exist")
    settings = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    trainer = settings.get("trainer") or {}
    logger = trainer.get("logger") or default_logger(Path(config).stem)
    root = trainer.get("default_root_dir")
    return Namespace(trainer=Namespace(logger=logger, default_root_dir=root)), settings.get("data") or {}


def explain_cli(
    ckpt_path: str,
    text: list[str] | None = None,
    text_pair: list[str] | None = None,
    data: TextFile = TextFile(),  # noqa: B008 (never changed: read only)
    config: str | None = None,
    output_path: str = "explanations.html",
    format: Literal["html", "text"] = "html",
    n_steps: int = DEFAULT_STEPS,
    internal_batch_size: int = DEFAULT_INTERNAL_BATCH,
    top_k: int = 8,
) -> None:
    """Explain predictions word by word: which words pushed the model towards its label (Integrated
    Gradients on the word embeddings, Captum). Writes a self-contained HTML page (words shaded green
    towards the label, red away from it; hover for the score) and a JSON file of the raw scores next to it.

    Args:
        ckpt_path: `best` or `last` (of the newest run of --config), a checkpoint file or an exported folder.
        text: A text to explain; repeat --text for several.
        text_pair: For a model that reads pairs of texts: the second text of each --text, in order.
        data: Texts from a file instead (--data.predict_file, --data.text_column).
        config: The fit config whose runs `best`/`last` refer to (also supplies data.predict_file).
        output_path: The HTML file to write; the JSON file gets the same name with `.json`.
        format: `html` writes the files; `text` prints the top words in the terminal instead.
        n_steps: Integration steps: more give a smaller convergence delta and take proportionally longer.
        internal_batch_size: Interpolated inputs per forward pass (lower it to save memory).
        top_k: Words shown for and against the label with --format text.
    """
    if text is not None and not all(t.strip() for t in text):
        # predict drops empty texts; an explanation of one would give a label to nothing
        raise ExplainError('--text is empty: pass the text to explain (--text "...")')
    cfg, config_data = config_settings(config) if config else (None, {})
    if ckpt_path in ("best", "last"):
        if cfg is None:
            raise ExplainError(f"--ckpt_path {ckpt_path} needs --config (the fit config of the run)")
        ckpt_path = str(resolve_ckpt_path(ckpt_path, cfg))
    elif not Path(ckpt_path).exists():
        raise ExplainError(
            f"--ckpt_path '{ckpt_path}' does not exist: pass best|last, a checkpoint or a folder"
        )
    predictor = load_predictor(ckpt_path)
    texts = given_texts(text, text_pair, predictor) or read_texts(data, config_data, predictor)
    explanations = explain_predictor(
        predictor, texts, n_steps=n_steps, internal_batch_size=internal_batch_size
    )
    if format == "text":
        print(format_text(explanations, top_k))
        return
    path = Path(output_path)
    json_path = write_explanations(explanations, path, n_steps, f"Why this label: {Path(ckpt_path).name}")
    print(f"Wrote {path} and {json_path}", file=sys.stderr)


def given_texts(text: list[str] | None, text_pair: list[str] | None, predictor: Predictor) -> list:
    """The --text values, each with its --text_pair for a model that reads pairs."""
    if not predictor.reads_pairs:
        if text_pair:
            raise ExplainError("--text_pair is for a model trained on pairs of texts (data.text_pair_column)")
        return list(text or [])
    if text and len(text_pair or []) != len(text):
        raise ExplainError(
            f"this model reads pairs of texts: pass one --text_pair for each --text ({len(text)} given, "
            f"{len(text_pair or [])} --text_pair)"
        )
    return list(zip(text or [], text_pair or [], strict=True))


def read_texts(data: TextFile, config_data: dict, predictor: Predictor) -> list:
    """The texts of --data.predict_file (or the config's), empty ones left out; pairs of texts for a
    model that reads pairs."""
    from textcls.data import read_table
    from textcls.data.clean import clean_split

    path = data.predict_file or config_data.get("predict_file")
    if not path:
        raise ExplainError('nothing to explain: pass --text "..." (repeatable) or --data.predict_file FILE')
    column = (
        data.text_column
        or config_data.get("text_column")
        or predictor.hparams.get("data", {}).get("text_column")
        or "text"
    )
    pair = predictor.hparams.get("data", {}).get("text_pair_column")
    columns = {"text": column} | ({"text_pair": pair} if pair else {})
    frame = clean_split(read_table(path), "explain", columns)[0].frame()
    return list(zip(frame["text"], frame["text_pair"], strict=True)) if pair else frame["text"].tolist()
