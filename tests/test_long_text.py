"""Long documents: which tokens each truncation keeps, windows over long texts, pooling per text, and
the layout travelling with checkpoints and exported folders."""

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from lightning.fabric.utilities.data import _replace_dunder_methods
from lightning.pytorch.trainer.states import RunningStage
from torch.utils.data import BatchSampler, DataLoader
from transformers import AutoTokenizer

from tests.test_cli import run, write_config
from textcls.data import TextClassificationData
from textcls.data.batching import LengthGroupedBatchSampler, WindowSampler
from textcls.data.tokens import tokenize_cached
from textcls.inference import load_predictor
from textcls.long_text import TextLayout, encode_texts, pool_windows, window_starts

WORDS = "match goal team coach score league player season win referee stadium laptop".split()


@pytest.fixture
def tokenizer(tiny_backbone):
    return AutoTokenizer.from_pretrained(tiny_backbone)


def ids_of(tokenizer, words: list[str]) -> list[int]:
    return tokenizer.convert_tokens_to_ids(words)


def test_truncations_keep_the_right_tokens(tokenizer):
    text = " ".join(WORDS)  # 12 words, one token each
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    # max_length 8: 6 tokens of text between [CLS] and [SEP]
    expected = {
        "head": WORDS[:6],
        "tail": WORDS[-6:],
        "head_tail": WORDS[:2] + WORDS[-4:],  # head_tokens 2, then the last 8 - 2 - 2 = 4
    }
    for truncation, words in expected.items():
        layout = TextLayout(8, truncation, head_tokens=2)
        (row,) = encode_texts([text], tokenizer, layout)["input_ids"]
        assert row == [cls, *ids_of(tokenizer, words), sep], truncation
    # the default head_tail keeps a quarter of max_length from the start
    (row,) = encode_texts([text], tokenizer, TextLayout(8, "head_tail"))["input_ids"]
    assert row[1:-1] == ids_of(tokenizer, WORDS[:2] + WORDS[-4:])
    # head is what the tokenizer's own truncation keeps; short texts are kept whole by every layout
    assert encode_texts([text], tokenizer, TextLayout(8))["input_ids"] == [
        tokenizer(text, truncation=True, max_length=8)["input_ids"]
    ]
    for truncation in expected:
        short = encode_texts(["goal team"], tokenizer, TextLayout(8, truncation))["input_ids"]
        assert short == [[cls, *ids_of(tokenizer, ["goal", "team"]), sep]]


@pytest.mark.parametrize("budget,stride", [(6, 0), (6, 2), (6, 5), (1, 0), (10, 3)])
def test_windows_cover_every_token_with_the_overlap(budget, stride):
    for n in range(1, 60):
        starts = window_starts(n, budget, stride)
        covered = set()
        for s in starts:
            covered |= set(range(s, min(s + budget, n)))
        assert covered == set(range(n)), (n, starts)
        assert starts[0] == 0 and starts == sorted(set(starts))
        if n > budget:
            assert starts[-1] + budget == n  # the last window ends with the text, full length
            # neighbours share `stride` tokens; the last may share more, never less
            shared = [a + budget - b for a, b in zip(starts, starts[1:], strict=False)]
            assert all(s == stride for s in shared[:-1]) and shared[-1] >= stride


def test_chunks_wrap_each_window_and_name_its_text(tokenizer):
    texts = [" ".join(WORDS), "goal team"]
    enc = encode_texts(texts, tokenizer, TextLayout(8, long_text="chunks", chunk_stride=2))
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    body = ids_of(tokenizer, WORDS)
    # 12 tokens, windows of 6 sharing 2: starts 0, 4, then 6 to end with the text
    assert enc["input_ids"][:3] == [[cls, *body[s : s + 6], sep] for s in (0, 4, 6)]
    assert enc["owner"] == [0, 0, 0, 1] and enc["text_length"] == [14, 14, 14, 4]


def test_pooling_is_per_text_mean_or_max():
    logits = torch.tensor([[1.0, 2.0], [3.0, 0.0], [5.0, -5.0], [0.0, 1.0]])
    owner = torch.tensor([0, 0, 1, 2])
    assert pool_windows(logits, owner, 3, "mean").tolist() == [[2.0, 1.0], [5.0, -5.0], [0.0, 1.0]]
    assert pool_windows(logits, owner, 3, "max").tolist() == [[3.0, 2.0], [5.0, -5.0], [0.0, 1.0]]


def test_cache_is_rebuilt_when_the_layout_changes(tokenizer, tmp_path):
    texts = [" ".join(WORDS), "goal team"]
    cache = tmp_path / "cache"
    layouts = [
        TextLayout(8),
        TextLayout(8, "tail"),
        TextLayout(8, "head_tail", head_tokens=3),
        TextLayout(8, long_text="chunks"),
        TextLayout(8, long_text="chunks", chunk_stride=1),
    ]
    results = []
    for layout in layouts:
        results.append(tokenize_cached(texts, tokenizer, layout, str(cache)))
        assert len(list(cache.glob("tokens-*.arrow"))) == len(results)  # a new file for each layout
    tokens, offsets, owners, lengths, _ = tokenize_cached(texts, tokenizer, layouts[3], str(cache))
    assert len(list(cache.glob("tokens-*.arrow"))) == len(layouts)  # the same layout: served from cache
    expected = encode_texts(texts, tokenizer, layouts[3])
    (tokens,), (offsets,) = tokens, offsets  # one chunk of the cached file
    assert [tokens[a:b].tolist() for a, b in zip(offsets, offsets[1:], strict=False)] == expected["input_ids"]
    assert owners.tolist() == expected["owner"] and lengths.tolist() == [14, 4]


def predict(config: str, ckpt: str, out, cwd) -> None:
    """`textcls predict` of a config's predict_file with a checkpoint or exported folder, into `out`."""
    run(
        "predict", "--config", config, "--ckpt_path", str(ckpt), "--prediction.output_path", str(out), cwd=cwd
    )


def chunked_data(tiny_backbone, data_files, tmp_path, **kwargs) -> TextClassificationData:
    return TextClassificationData(
        train_file=str(data_files["train"]),
        test_file=str(data_files["test"]),
        model_name_or_path=tiny_backbone,
        max_length=8,
        long_text="chunks",
        chunk_stride=2,
        batch_size=4,
        cache_dir=str(tmp_path / "cache"),
        **kwargs,
    )


def test_training_reads_windows_evaluation_reads_texts(tiny_backbone, data_files, tmp_path):
    data = chunked_data(tiny_backbone, data_files, tmp_path)
    data.setup("fit")
    train = data.encoded["train"]
    assert len(train) > len(data.frames["train"])  # the long texts give several windows
    # every window carries its text's label
    labels = [data.train_dataloader().dataset[i]["label"] for i in range(len(train))]
    assert labels == train.labels[train.owners].tolist()
    # validation batches hold whole texts: `owner` maps each window row to its text's row
    seen = []
    for batch in data.val_dataloader():
        assert batch["owner"].max() == len(batch["idx"]) - 1 == len(batch["labels"]) - 1
        seen += batch["idx"].tolist()
    assert sorted(seen) == list(range(len(data.frames["validation"])))


def test_max_chunks_per_text_draws_anew_each_epoch(tiny_backbone, data_files, tmp_path):
    owners = np.repeat(np.arange(5), [1, 3, 6, 2, 4])
    sampler = WindowSampler(owners, per_text=2, seed=0)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        drawn = list(sampler)
        assert len(drawn) == len(sampler) == 1 + 2 + 2 + 2 + 2
        assert np.bincount(owners[drawn]).tolist() == [1, 2, 2, 2, 2]
        epochs.append(sorted(drawn))
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]  # other windows in other epochs
    data = chunked_data(tiny_backbone, data_files, tmp_path, max_chunks_per_text=1)
    data.setup("fit")
    assert sum(len(b["labels"]) for b in data.train_dataloader()) == len(data.frames["train"])


def test_max_chunks_per_text_holds_on_every_rank():
    owners = np.repeat(np.arange(6), [1, 3, 6, 2, 4, 5])  # 1 + 2 + 2 + 2 + 2 + 2 = 11 windows drawn
    one = WindowSampler(owners, per_text=2, seed=3)
    for epoch in range(3):
        one.set_epoch(epoch)
        ranks = [WindowSampler(owners, per_text=2, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
        for sampler in ranks:
            sampler.set_epoch(epoch)
        shares = [list(sampler) for sampler in ranks]
        # as many windows on each rank; together the one-device draw, one window repeated to even them
        assert [len(s) for s in shares] == [len(s) for s in ranks] == [6, 6]
        assert sorted(shares[0] + shares[1][:-1]) == sorted(one)
        assert shares[1][-1] == list(one)[0]
        # length-grouped batches on a rank read exactly that rank's share
        grouped = LengthGroupedBatchSampler(ranks[1], 4, False, lengths=np.arange(len(owners)))
        assert sorted(i for batch in grouped for i in batch) == sorted(shares[1])


def test_lightning_keeps_the_window_sampler_under_ddp(tiny_backbone, data_files, tmp_path):
    trainer = L.Trainer(strategy="ddp", devices=2, accelerator="cpu", logger=False)
    for grouped in (True, False):
        data = chunked_data(
            tiny_backbone, data_files, tmp_path, max_chunks_per_text=1, group_by_length=grouped
        )
        data.setup("fit")
        # the loader as Lightning requests it (recording its arguments, to re-create it with its own sampler)
        with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
            loader = data.train_dataloader()
        assert trainer._data_connector._prepare_dataloader(loader, True, RunningStage.TRAINING) is loader
        assert isinstance(loader.sampler, WindowSampler)


@pytest.mark.parametrize(
    "setting,message",
    [
        ({"head_tokens": 8}, "data.head_tokens must be at least 0 and less than data.max_length (8)"),
        ({"head_tokens": -1}, "data.head_tokens must be at least 0"),
        ({"chunk_stride": 8}, "data.chunk_stride must be at least 0 and less than data.max_length (8)"),
        ({"chunk_stride": -2}, "data.chunk_stride must be at least 0"),
        ({"truncation": "middle"}, "data.truncation must be one of head, tail, head_tail"),
        ({"long_text": "slide"}, "data.long_text must be one of truncate, chunks"),
        ({"max_chunks_per_text": 0}, "data.max_chunks_per_text must be at least 1"),
    ],
)
def test_impossible_settings_are_one_line(tmp_path, tiny_backbone, data_files, setting, message):
    config = write_config(tmp_path, tiny_backbone, data_files)
    ((key, value),) = setting.items()
    proc = run(
        "fit",
        "--config",
        str(config),
        "--data.max_length",
        "8",
        f"--data.{key}",
        str(value),
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f"textcls: error: {message}"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_bad_chunk_pooling_is_one_line(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files)
    proc = run("fit", "--config", str(config), "--model.chunk_pooling", "median", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "model.chunk_pooling must be one of mean, max" in proc.stderr


def test_chunked_model_predicts_one_row_per_text_everywhere_alike(tmp_path, tiny_backbone, data_files):
    """fit with chunks; predict from the checkpoint and from the exported folder, with no chunk
    settings given: both read texts in windows and pool as trained, one row per text in input order."""
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=2)
    settings = yaml.safe_load(config.read_text())
    settings["data"].update(max_length=8, long_text="chunks", chunk_stride=2)
    settings["model"]["chunk_pooling"] = "max"
    config.write_text(yaml.safe_dump(settings))
    run("fit", "--config", str(config), cwd=tmp_path)
    ckpt = next((tmp_path / "logs" / "tiny").glob("version_0/checkpoints/last.ckpt"))

    # a config that says nothing of long texts: the checkpoint and the folder bring their layout
    (tmp_path / "plain").mkdir()
    plain = write_config(tmp_path / "plain", tiny_backbone, data_files)
    out = tmp_path / "from_ckpt.csv"
    predict(str(plain), str(ckpt), out, tmp_path)
    from_ckpt = pd.read_csv(out)
    texts = pd.read_csv(data_files["predict"])["text"].tolist()
    assert from_ckpt["text"].tolist() == texts

    predictor = load_predictor(ckpt)
    assert predictor.layout == TextLayout(8, long_text="chunks", chunk_stride=2)
    assert predictor.chunk_pooling == "max"
    probs = predictor.predict_probs(texts, batch_size=4)
    columns = [c for c in from_ckpt.columns if c.startswith("prob_")]
    np.testing.assert_allclose(from_ckpt[columns].to_numpy(), probs, atol=1e-5)

    # by hand: every window through the network, then each label's max logit over the text's windows
    enc = encode_texts(texts, predictor.tokenizer, predictor.layout)
    assert len(enc["input_ids"]) > len(texts)
    with torch.inference_mode():
        rows = [predictor.model(input_ids=torch.tensor([ids])).logits[0] for ids in enc["input_ids"]]
    by_text = [
        torch.stack([r for r, o in zip(rows, enc["owner"], strict=True) if o == t]).amax(0)
        for t in range(len(texts))
    ]
    expected = predictor.probabilities(torch.stack(by_text)).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)

    folder = tmp_path / "exported"
    run("export", "--ckpt_path", str(ckpt), "--output_dir", str(folder), cwd=tmp_path)
    exported = load_predictor(folder)
    assert exported.layout == predictor.layout and exported.chunk_pooling == "max"
    np.testing.assert_allclose(exported.predict_probs(texts), probs, atol=1e-5)
    out = tmp_path / "from_folder.csv"
    predict(str(plain), str(folder), out, tmp_path)
    np.testing.assert_allclose(pd.read_csv(out)[columns].to_numpy(), probs, atol=1e-5)


def test_multi_label_texts_in_windows(tmp_path, tiny_backbone, multi_label_files, bf16_cpu):
    """Multi-label data read in windows: each window trains on its text's label set; test and
    predict pool per text (max: a label one window shows is the text's), one row per text."""
    config = write_config(tmp_path, tiny_backbone, multi_label_files, max_epochs=2)
    settings = yaml.safe_load(config.read_text())
    settings["data"].update(multi_label=True, label_column="labels", max_length=8, long_text="chunks")
    settings["model"]["chunk_pooling"] = "max"
    config.write_text(yaml.safe_dump(settings))
    run("fit", "--config", str(config), cwd=tmp_path)
    run("test", "--config", str(config), "--ckpt_path", "best", cwd=tmp_path)
    report = max((tmp_path / "logs" / "tiny").glob("version_*/metrics.json")).parent
    tested = pd.read_csv(report / "predictions.csv")
    assert len(tested) == len(pd.read_csv(multi_label_files["test"]))  # texts, not windows
    out = tmp_path / "predictions.csv"
    predict(str(config), "best", out, tmp_path)
    predicted = pd.read_csv(out)
    texts = pd.read_csv(multi_label_files["predict"])["text"].tolist()
    assert predicted["text"].tolist() == texts
    ckpt = max((tmp_path / "logs" / "tiny").glob("version_*/checkpoints/best.ckpt"))
    predictor = load_predictor(ckpt)
    assert predictor.multi_label and predictor.layout.chunked
    columns = [c for c in predicted.columns if c.startswith("prob_")]
    np.testing.assert_allclose(predicted[columns].to_numpy(), predictor.predict_probs(texts), atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_pooling_in_half_precision_logits(dtype):
    """Under bf16/fp16 autocast (GPU, or CPU bf16) the logits arrive in half precision: pooled the same."""
    logits = torch.tensor([[1.0, 2.0], [3.0, 0.0], [5.0, -5.0]])
    owner = torch.tensor([0, 0, 1])
    for pooling in ("mean", "max"):
        half = pool_windows(logits.to(dtype), owner, 2, pooling)
        assert half.dtype == dtype
        assert torch.allclose(half.float(), pool_windows(logits, owner, 2, pooling))
