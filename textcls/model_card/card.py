"""The model card (README.md) of an exported folder: what the model is, how to use it, how it reads
long texts, its data, test metrics and training settings.

A model trained on windows (`data.long_text: chunks`) or on the end of its texts (`tail`, `head_tail`)
reads texts in a way `transformers.pipeline` cannot (it keeps the first tokens): the card says so and
shows the textcls call that reads them as in training. What differs by kind of task (the opening
line and `pipeline` snippet, the section on its decision rule, the data settings listed) the task
supplies (`card_use`, `card_rule`, `card_data_keys`), from its own module in this package.
"""

from textcls.inference import Predictor
from textcls.long_text import TextLayout


def model_card(predictor: Predictor) -> str:
    """A short README: what the model is, how to use it, its data, test metrics and training settings."""
    model_hp = predictor.hparams.get("model", {})
    data_hp = predictor.hparams.get("data", {})
    backbone = model_hp.get("model_name_or_path", "?")
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "---",
        "",
        "# Text classifier",
        "",
        *predictor.task.card_use(backbone, _remote(predictor), predictor.reads_pairs),
        *_head_lines(predictor),
        *_layout_lines(predictor),
        *predictor.task.card_rule(),
        "## Data",
        "",
    ]
    for key in ("train_file", "val_file", "test_file", "dataset_name", "dataset_config_name"):
        if data_hp.get(key):
            lines.append(f"- {key}: `{data_hp[key]}`")
    keys = ["val_fraction", "test_fraction", "train_sample", "text_column", "label_column"]
    keys += [*predictor.task.card_data_keys(), "seed"]
    for key in keys:
        if key in data_hp and data_hp[key] is not None:
            lines.append(f"- {key}: {data_hp[key]}")
    lines += ["", "## Test metrics", ""]
    metrics = predictor.metrics
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in _flatten(metrics).items()]
    else:
        lines.append("No test report of this checkpoint was found (run `textcls test` before exporting).")
    lines += ["", "## Training settings", ""]
    for key, value in model_hp.items():
        if key != "label_names":
            lines.append(f"- {key}: {value}")
    for key in (
        "max_length",
        "truncation",
        "head_tokens",
        "long_text",
        "chunk_stride",
        "max_chunks_per_text",
    ):
        if data_hp.get(key) is not None:
            lines.append(f"- {key}: {data_hp[key]}")
    for key in ("batch_size",):
        if key in data_hp:
            lines.append(f"- {key}: {data_hp[key]}")
    for key in ("epoch", "global_step"):
        if predictor.hparams.get(key) is not None:
            lines.append(f"- checkpoint {key}: {predictor.hparams[key]}")
    lines += ["", "Exported with `textcls export` from `" + str(predictor.source) + "`.", ""]
    return "\n".join(lines)


def _head_lines(predictor: Predictor) -> list[str]:
    if not _remote(predictor):
        return []
    pooling = predictor.model.config.textcls_pooling
    return [
        f"The classification head reads the encoder's {'mean token vector' if pooling == 'mean' else 'first token'} "
        f"(textcls `model.pooling: {pooling}`), which is not an architecture transformers ships: its code "
        "is in this folder (`modeling_textcls.py`, named in config.json's `auto_map`), so transformers "
        "loads it with `trust_remote_code=True`, offline:",
        "",
        "```python",
        "from transformers import AutoModelForSequenceClassification",
        'model = AutoModelForSequenceClassification.from_pretrained("path/to/this/folder", trust_remote_code=True)',
        "```",
        "",
    ]


def _remote(predictor: Predictor) -> str:
    """`pipeline`'s argument that lets it run the folder's own head code, where the folder has some."""
    return ", trust_remote_code=True" if getattr(predictor.model.config, "auto_map", None) else ""


def describe_layout(layout: TextLayout, pooling: str = "mean") -> str:
    """How a model reads a text, in words: at most `max_length` tokens, and what happens to the rest."""
    reads = f"at most {layout.max_length} tokens at once (special tokens included)"
    if layout.chunked:
        return (
            f"{reads}; a longer text is read whole, in overlapping windows of {layout.max_length} tokens "
            f"that share {layout.stride} tokens, and the windows' logits are pooled ({pooling}) into one answer"
        )
    kept = {
        "head": "its first tokens",
        "tail": "its last tokens",
        "head_tail": f"its first {layout.head} tokens and its last ones",
    }[layout.truncation]
    return f"{reads}; a longer text is cut to {kept}"


def _layout_lines(predictor: Predictor) -> list[str]:
    layout = predictor.layout
    lines = ["## Long texts", "", f"The model reads {describe_layout(layout, predictor.chunk_pooling)}.", ""]
    command = "`textcls predict --ckpt_path path/to/this/folder --data.predict_file texts.csv`"
    if not layout.chunked and layout.truncation == "head":
        # the exported tokenizer stops at max_length: `pipeline` keeps what training kept
        return [*lines, f"`pipeline(..., truncation=True)` does the same, and so does {command}.", ""]
    how = "windows" if layout.chunked else f"{layout.truncation} truncation"
    return [
        *lines,
        f"A plain `transformers.pipeline` on this folder cannot read texts this way ({how}): with "
        f"`truncation=True` it keeps only the first {layout.max_length} tokens, so on longer texts its "
        "answers differ from the tested model's. textcls reads them as in training:",
        "",
        "```python",
        "from textcls.inference import load_predictor",
        'load_predictor("path/to/this/folder").predict_probs(["some text"])  # as in training',
        "```",
        "",
        f"Or: {command}.",
        "",
    ]


def _flatten(metrics: dict, prefix: str = "") -> dict:
    """Numbers and short strings of a (nested) report, one level of keys joined by '/'."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = value
    return out


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
