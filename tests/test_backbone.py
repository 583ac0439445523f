"""Loading backbones: GPT-2-style tokenizers without a padding token, and folders that cannot be loaded."""

import shutil

import pytest
import torch

from tests.conftest import FILLER, TOPICS, make_rows, write_jsonl
from textcls.backbone import BackboneLoadError, BackboneNotFoundError, load_classifier, load_tokenizer
from textcls.data import TextClassificationData


def save_tiny_gpt2(folder, eos: bool = True) -> str:
    """A 2-layer random GPT-2 and a word-level tokenizer with an end-of-text token but no padding token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    words = sorted({w for ws in TOPICS.values() for w in ws.split()} | set(FILLER))
    vocab = {w: i for i, w in enumerate(["<|endoftext|>", "<unk>", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    special = {"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>"} if eos else {}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", **special)
    assert tokenizer.pad_token is None
    tokenizer.save_pretrained(folder)
    config = GPT2Config(
        vocab_size=len(vocab), n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    GPT2Model(config).save_pretrained(folder)
    return str(folder)


def test_gpt2_style_backbone_pads_with_its_end_of_text_token(tmp_path):
    backbone = save_tiny_gpt2(tmp_path / "gpt2")
    tokenizer = load_tokenizer(backbone)
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.pad_token_id == 0
    model = load_classifier(backbone, ["food", "sports", "tech"])
    assert model.config.pad_token_id == tokenizer.pad_token_id
    train = write_jsonl(tmp_path / "train.jsonl", make_rows(8))
    data = TextClassificationData(
        train_file=str(train),
        model_name_or_path=backbone,
        max_length=32,
        batch_size=6,
        cache_dir=str(tmp_path / "c"),
    )
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))  # texts of several lengths, padded
    assert (batch["attention_mask"] == 0).any()
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    logits = model(**inputs).logits
    assert logits.shape == (6, 3) and torch.isfinite(logits).all()


def test_backbone_without_padding_or_end_of_text_token_is_refused(tmp_path):
    backbone = save_tiny_gpt2(tmp_path / "gpt2", eos=False)
    with pytest.raises(BackboneLoadError, match="neither a padding token nor an end-of-text token"):
        load_tokenizer(backbone)


def test_folder_with_corrupt_config_reports_the_real_cause(tmp_path, tiny_backbone):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_backbone, broken)
    (broken / "config.json").write_text('{"model_type": "bert", ')
    for load in (lambda: load_tokenizer(str(broken)), lambda: load_classifier(str(broken), ["a", "b"])):
        with pytest.raises(BackboneLoadError) as err:
            load()
        message = str(err.value)
        assert not isinstance(err.value, BackboneNotFoundError) and "not found" not in message
        assert "not a valid JSON file" in message and "\n" not in message
    with pytest.raises(BackboneNotFoundError):  # a name found nowhere is still "not found"
        load_tokenizer(str(tmp_path / "no-such-folder"))
