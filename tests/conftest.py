"""Fixtures: a tiny random BERT with its own tokenizer, and tiny labelled data, all built offline."""

import contextlib
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TOPICS = {
    "sports": "match goal team coach score league player season win referee stadium",
    "tech": "laptop software update battery screen app chip code server cloud phone",
    "food": "pizza recipe bake sauce dinner spicy chef taste soup bread kitchen",
}
FILLER = "the a is was very really today and but so it this that my our".split()


def make_rows(n_per_class: int, seed: int = 0) -> list[dict]:
    """Short texts whose topic words give the class away, mixed with filler words."""
    rng = random.Random(seed)
    rows = []
    for label, words in TOPICS.items():
        for _ in range(n_per_class):
            text = rng.sample(words.split(), 3) + rng.sample(FILLER, rng.randint(1, 8))
            rng.shuffle(text)
            rows.append({"text": " ".join(text), "label": label})
    rng.shuffle(rows)
    return rows


def make_multi_label_rows(n: int, seed: int = 0) -> list[dict]:
    """Texts about one or two topics, labelled with those topics joined by ";" (`labels`).

    Every fifth text mixes two topics; the others carry one.
    """
    rng = random.Random(seed)
    names = sorted(TOPICS)
    rows = []
    for i in range(n):
        topics = rng.sample(names, 2 if i % 5 == 0 else 1)
        text = [w for t in topics for w in rng.sample(TOPICS[t].split(), 3)] + rng.sample(
            FILLER, rng.randint(1, 6)
        )
        rng.shuffle(text)
        rows.append({"text": " ".join(text), "labels": ";".join(topics)})
    return rows


def make_pair_rows(n: int, seed: int = 0) -> list[dict]:
    """Pairs of short texts (`text`, `text_pair`), each about one topic: `label` says whether the two
    topics are the same, `score` how alike they are (5 the same topic, 0 another, with noise), so
    only a model that reads both texts can tell."""
    rng = random.Random(seed)
    names = sorted(TOPICS)
    rows = []
    for i in range(n):
        first = rng.choice(names)
        second = first if i % 2 else rng.choice([t for t in names if t != first])
        a, b = (
            [*rng.sample(TOPICS[t].split(), 3), *rng.sample(FILLER, rng.randint(1, 4))]
            for t in (first, second)
        )
        rng.shuffle(a), rng.shuffle(b)
        score = round((5.0 if first == second else 0.0) + rng.uniform(-0.5, 0.5), 3)
        same = "same" if first == second else "different"
        rows.append({"text": " ".join(a), "text_pair": " ".join(b), "label": same, "score": score})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@contextlib.contextmanager
def cpu_with_bf16() -> Iterator[None]:
    """This CPU as one with native bf16 (AVX-512 BF16 or AMX), whatever it has: where automatic precision
    differs by command (fit: bf16-mixed, emulated and slower on a CPU without it; evaluation: fp32)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("textcls.precision.cpu_runs_bf16", lambda: True)
        yield


@pytest.fixture(autouse=True, scope="session")
def cpu_kind() -> Iterator[None]:
    """`TEXTCLS_TEST_CPU_BF16=0` (or 1) runs the suite as on a CPU without (with) native bf16, whatever
    this one has, so both kinds can be checked on one machine (in this process: CLI runs started as
    subprocesses see the real CPU). Unset: the real CPU."""
    kind = os.environ.get("TEXTCLS_TEST_CPU_BF16")
    if kind not in ("0", "1"):
        yield
        return
    import torch

    with pytest.MonkeyPatch.context() as patch:  # torch's own checks: tests that patch them still can
        patch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: kind == "1")
        patch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        yield


@pytest.fixture
def bf16_cpu() -> Iterator[None]:
    """`cpu_with_bf16` for one test."""
    with cpu_with_bf16():
        yield


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> str:
    """A 2-layer, 32-wide random BERT and its WordPiece tokenizer, saved as a model folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = sorted({w for ws in TOPICS.values() for w in ws.split()} | set(FILLER))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *"abcdefghijklmnopqrstuvwxyz"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=0.1,
    )
    torch.manual_seed(0)  # the same random weights in every session: tests that check quality are not flaky
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(folder).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def data_files(tmp_path) -> dict[str, Path]:
    """Train (with its own validation split) and test JSONL files, plus an unlabelled predict CSV."""
    train = write_jsonl(tmp_path / "train.jsonl", make_rows(40, seed=1))
    test = write_jsonl(tmp_path / "test.jsonl", make_rows(10, seed=2))
    predict = tmp_path / "predict.csv"
    predict.write_text("text\n" + "".join(r["text"] + "\n" for r in make_rows(5, seed=3)))
    return {"train": train, "test": test, "predict": predict}


def write_multi_label_files(folder: Path) -> dict[str, Path]:
    """Multi-label train and test CSV files (`text,labels`, names joined by ";"), and a predict CSV."""
    import pandas as pd

    files = {}
    for split, n, seed in (("train", 150, 1), ("test", 40, 2)):
        files[split] = folder / f"ml_{split}.csv"
        pd.DataFrame(make_multi_label_rows(n, seed)).to_csv(files[split], index=False)
    files["predict"] = folder / "ml_predict.csv"
    pd.DataFrame(make_multi_label_rows(12, 3))[["text"]].to_csv(files["predict"], index=False)
    return files


@pytest.fixture
def multi_label_files(tmp_path) -> dict[str, Path]:
    return write_multi_label_files(tmp_path)


def write_pair_files(folder: Path, train: int = 160, test: int = 40, predict: int = 10) -> dict[str, Path]:
    """Sentence-pair train and test JSONL files (`text`, `text_pair`, `label`, `score`), and a predict CSV."""
    import pandas as pd

    files = {
        "train": write_jsonl(folder / "pairs_train.jsonl", make_pair_rows(train, seed=1)),
        "test": write_jsonl(folder / "pairs_test.jsonl", make_pair_rows(test, seed=2)),
        "predict": folder / "pairs_predict.csv",
    }
    pd.DataFrame(make_pair_rows(predict, seed=3))[["text", "text_pair"]].to_csv(files["predict"], index=False)
    return files


def write_pair_config(folder: Path, backbone: str, files: dict, max_epochs: int, **data) -> Path:
    """The CLI tests' config (tests/test_cli.py) for pairs of texts, in fp32, with `data` settings on top."""
    import yaml

    from tests.test_cli import write_config

    config = write_config(folder, backbone, files, max_epochs=max_epochs)
    settings = yaml.safe_load(config.read_text())
    settings["data"] |= {"text_pair_column": "text_pair", "max_length": 24, **data}
    settings["trainer"]["precision"] = "32-true"
    config.write_text(yaml.safe_dump(settings))
    return config


def fit_test_predict(folder: Path, config: Path, test: bool = True) -> dict[str, Path]:
    """`textcls fit`, `test` (unless not asked) and `predict` of `config` in `folder`: the best checkpoint
    and the predictions file."""
    from tests.test_cli import run

    run("fit", "--config", str(config), cwd=folder)
    if test:
        run("test", "--config", str(config), "--ckpt_path", "best", cwd=folder)
    pred = folder / "pred.csv"
    run(
        "predict",
        "--config",
        str(config),
        "--ckpt_path",
        "best",
        "--prediction.output_path",
        str(pred),
        cwd=folder,
    )
    return {"ckpt": folder / "logs/tiny/version_0/checkpoints/best.ckpt", "pred": pred}


@pytest.fixture
def pair_files(tmp_path) -> dict[str, Path]:
    return write_pair_files(tmp_path)
