import numpy as np
import pandas as pd
import pytest
import torch

from textcls.data import (
    Collator,
    DataError,
    LengthGroupedBatchSampler,
    SortedSampler,
    TextClassificationData,
    label_sort_key,
    read_table,
    stratified_split,
    tokenize_cached,
)


def make_data(tiny_backbone, tmp_path, **kwargs) -> TextClassificationData:
    return TextClassificationData(
        model_name_or_path=tiny_backbone, cache_dir=str(tmp_path / "cache"), **kwargs
    )


def test_label_order_is_sorted_and_numeric_aware():
    assert sorted(["b", "a", "C"], key=label_sort_key) == ["C", "a", "b"]
    assert sorted(["10", "2", "1"], key=label_sort_key) == ["1", "2", "10"]


def test_reads_every_format_the_same(tmp_path):
    frame = pd.DataFrame({"text": ['hello, "world"', "línea\ncon salto"], "label": ["x", "y"]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True, force_ascii=False)
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.tsv", "d.jsonl", "d.parquet"):
        got = read_table(str(tmp_path / name))
        assert got["text"].tolist() == frame["text"].tolist(), name
        assert got["label"].tolist() == ["x", "y"]


def test_reads_a_saved_hf_dataset(tmp_path, tiny_backbone):
    import datasets

    rows = {"sentence": ["good match", "bad pizza", "great app", "good bread"] * 5, "y": [1, 0, 1, 0] * 5}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "saved"))
    data = make_data(
        tiny_backbone,
        tmp_path,
        train_file=str(tmp_path / "saved"),
        text_column="sentence",
        label_column="y",
        val_fraction=0.2,
        test_fraction=0.0,
    )
    assert data.label_names == ["0", "1"]
    assert len(data.frames["train"]) == 16 and len(data.frames["validation"]) == 4


def test_stratified_split_keeps_proportions_and_rare_classes_in_train():
    labels = ["a"] * 80 + ["b"] * 20 + ["rare"]
    parts, too_small = stratified_split(labels, {"validation": 0.1, "test": 0.2}, seed=0)
    assert too_small == ["rare"]
    got = {name: np.asarray(labels, dtype=object)[rows].tolist() for name, rows in parts.items()}
    assert got["validation"].count("a") == 8 and got["validation"].count("b") == 2
    assert got["test"].count("a") == 16 and got["test"].count("b") == 4
    assert got["train"].count("rare") == 1
    every = np.concatenate(list(parts.values()))
    assert sorted(every.tolist()) == list(range(len(labels)))  # each row in exactly one split


def test_splits_are_deterministic_and_sample_applies_to_train_only(tiny_backbone, tmp_path, data_files):
    a = make_data(tiny_backbone, tmp_path, train_file=str(data_files["train"]), train_sample=30)
    b = make_data(tiny_backbone, tmp_path, train_file=str(data_files["train"]), train_sample=30)
    assert len(a.frames["train"]) == 30
    assert len(a.frames["validation"]) == len(a.frames["test"]) == 12
    for split in ("train", "validation", "test"):
        assert a.frames[split]["text"].tolist() == b.frames[split]["text"].tolist()
    assert not set(a.frames["train"]["row"]) & set(a.frames["test"]["row"])


def test_given_files_are_used_and_labels_checked(tiny_backbone, tmp_path, data_files):
    data = make_data(
        tiny_backbone, tmp_path, train_file=str(data_files["train"]), test_file=str(data_files["test"])
    )
    assert len(data.frames["test"]) == 30  # the whole test file, nothing split off for test
    assert data.label_names == ["food", "sports", "tech"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a goal", "label": "music"}\n')
    data = make_data(tiny_backbone, tmp_path, train_file=str(data_files["train"]), test_file=str(bad))
    with pytest.raises(DataError, match="music"):
        _ = data.frames


def test_truncation_and_dynamic_padding(tiny_backbone, tmp_path):
    texts = ["goal " * 200, "pizza", "app screen code"]
    rows = pd.DataFrame({"text": texts * 4, "label": ["sports", "food", "tech"] * 4})
    rows.to_csv(tmp_path / "t.csv", index=False)
    data = make_data(
        tiny_backbone,
        tmp_path,
        train_file=str(tmp_path / "t.csv"),
        max_length=16,
        val_fraction=0.25,
        test_fraction=0.0,
        batch_size=4,
    )
    data.setup("fit")
    assert data.encoded["train"].lengths.max() == 16  # truncated
    batches = list(data.train_dataloader())
    assert sum(len(b["idx"]) for b in batches) == len(data.frames["train"])
    for b in batches:  # padded to the longest text in the batch, not to max_length
        assert b["input_ids"].shape[1] == int(b["attention_mask"].sum(1).max())


def test_unlabelled_predict_input(tiny_backbone, tmp_path, data_files):
    data = make_data(
        tiny_backbone, tmp_path, labels=["food", "sports", "tech"], predict_file=str(data_files["predict"])
    )
    data.setup("predict")
    assert len(data.predict_frame) == 15
    batch = next(iter(data.predict_dataloader()))
    assert "labels" not in batch and batch["input_ids"].shape[0] == 15


def test_tokenize_cache_reused_and_rebuilt(tiny_backbone, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_backbone)
    cache = tmp_path / "c"
    first = tokenize_cached(["a goal", "the pizza"], tok, 8, str(cache))
    files = set(cache.iterdir())
    again = tokenize_cached(["a goal", "the pizza"], tok, 8, str(cache))
    assert set(cache.iterdir()) == files  # nothing new written: the cache was used
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    tokenize_cached(["a goal", "the pizza"], tok, 4, str(cache))  # other max_length
    tokenize_cached(["a goal", "the soup"], tok, 8, str(cache))  # other texts
    assert len(set(cache.iterdir()) - files) == 2


def test_length_grouped_sampler_covers_every_index_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 500, size=1003).tolist()
    sampler = LengthGroupedBatchSampler(torch.utils.data.RandomSampler(range(1003)), 16, False, lengths, 10)
    for _ in range(2):
        batches = list(sampler)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(1003))
        spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
        assert spread < 60  # random batches of 16 from 1..500 would spread by ~440
    assert list(sampler) != list(sampler)  # a new order every epoch


def test_sorted_sampler_and_collator():
    lengths = [3, 9, 1, 9, 5]
    assert list(SortedSampler(lengths)) == [1, 3, 4, 0, 2]
    items = [
        {"idx": 0, "input_ids": np.array([5, 6, 7], dtype=np.int32), "label": 1},
        {"idx": 1, "input_ids": np.array([8], dtype=np.int32), "label": 0},
    ]
    batch = Collator(pad_token_id=0, pad_to_multiple_of=8)(items)
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].tolist()[1] == [1, 0, 0, 0, 0, 0, 0, 0]
    assert batch["labels"].tolist() == [1, 0]
