import numpy as np
import pandas as pd
import pytest
import torch

from textcls.data import DataError, TextClassificationData, label_sort_key, read_table
from textcls.data.batching import Collator, LengthGroupedBatchSampler, SeededRandomSampler, SortedSampler
from textcls.data.split import stratified_split
from textcls.data.tokens import tokenize_cached
from textcls.long_text import TextLayout


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
    first = tokenize_cached(["a goal", "the pizza"], tok, TextLayout(8), str(cache))
    files = set(cache.iterdir())
    again = tokenize_cached(["a goal", "the pizza"], tok, TextLayout(8), str(cache))
    assert set(cache.iterdir()) == files  # nothing new written: the cache was used
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    tokenize_cached(["a goal", "the pizza"], tok, TextLayout(4), str(cache))  # other max_length
    tokenize_cached(["a goal", "the soup"], tok, TextLayout(8), str(cache))  # other texts
    assert len(set(cache.iterdir()) - files) == 2


def grouped_batches(lengths, seed: int, epoch: int) -> list[list[int]]:
    """One epoch of training batches as the data module draws them: seeded sampler, epoch set by Lightning."""
    sampler = SeededRandomSampler(range(len(lengths)), seed)
    sampler.set_epoch(epoch)
    return list(LengthGroupedBatchSampler(sampler, 16, False, lengths, 10, seed=seed))


def test_length_grouped_sampler_covers_every_index_once_in_a_new_order_each_epoch():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 500, size=1003).tolist()
    for epoch in range(2):
        batches = grouped_batches(lengths, seed=7, epoch=epoch)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(1003))
        spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
        assert spread < 60  # random batches of 16 from 1..500 would spread by ~440
    assert grouped_batches(lengths, 7, 0) != grouped_batches(lengths, 7, 1)  # a new order every epoch
    assert grouped_batches(lengths, 7, 1) == grouped_batches(lengths, 7, 1)  # same (seed, epoch): same order
    assert grouped_batches(lengths, 7, 1) != grouped_batches(lengths, 8, 1)


def test_seeded_sampler_order_depends_on_seed_and_epoch_only():
    def order(seed, epoch):
        sampler = SeededRandomSampler(range(200), seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    torch.manual_seed(0)
    first = order(3, 0)
    torch.manual_seed(1)  # the global generator (dropout's) plays no part
    assert order(3, 0) == first and sorted(first) == list(range(200))
    assert order(3, 1) != first and order(4, 0) != first


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


# ----------------------------------------------------------------------------- issue 16


def save_glue_style(folder, n_train: int = 30, n_test: int = 12) -> str:
    """A DatasetDict saved to disk whose ClassLabel test split is unlabelled (-1 everywhere), as in GLUE."""
    import datasets

    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    texts = ["good match", "bad pizza", "great app", "awful soup", "nice bread", "poor screen"]

    def split(n, labelled):
        rows = {"sentence": [f"{texts[i % 6]} {i}" for i in range(n)]}
        rows["label"] = [i % 2 if labelled else -1 for i in range(n)]
        return datasets.Dataset.from_dict(rows, features=features)

    dataset = datasets.DatasetDict(
        {"train": split(n_train, True), "validation": split(10, True), "test": split(n_test, False)}
    )
    dataset.save_to_disk(str(folder))
    return str(folder)


def test_hub_dataset_with_unlabelled_test_split(tiny_backbone, tmp_path, caplog):
    folder = save_glue_style(tmp_path / "glue")
    data = make_data(tiny_backbone, tmp_path, dataset_name=folder, text_column="sentence", test_fraction=0)
    with caplog.at_level("INFO"):
        data.setup("fit")  # the unlabelled test split does not stop fit
    notes = [r.getMessage() for r in caplog.records if "has no labels" in r.getMessage()]
    assert len(notes) == 1 and "\n" not in notes[0] and "predict" in notes[0]
    assert data.label_names == ["neg", "pos"] and len(data.frames["train"]) == 30
    assert "test" not in data.frames
    with pytest.raises(DataError, match="no labelled test data"):
        data.setup("test")
    data.setup("predict")  # the unlabelled split is what predict classifies
    assert len(data.predict_frame) == 12
    assert next(iter(data.predict_dataloader()))["input_ids"].shape[0] == 12
    # with a test fraction, labelled test data is split off train instead
    split_off = make_data(
        tiny_backbone, tmp_path, dataset_name=folder, text_column="sentence", test_fraction=0.2
    )
    assert len(split_off.frames["test"]) == 6 and len(split_off.frames["train"]) == 24


def test_hub_dataset_that_does_not_exist_is_a_data_error(tiny_backbone, tmp_path):
    (tmp_path / "folder").mkdir()
    for name in (str(tmp_path / "folder"), "textcls-tests/no-such-dataset"):
        with pytest.raises(DataError, match="was not found"):
            _ = make_data(tiny_backbone, tmp_path, dataset_name=name).frames


def test_max_length_beyond_the_backbone_limit_is_refused(tiny_backbone, tmp_path, data_files):
    data = make_data(tiny_backbone, tmp_path, train_file=str(data_files["train"]), max_length=129)
    with pytest.raises(DataError) as err:
        data.setup("fit")
    assert "128" in str(err.value) and "\n" not in str(err.value)
    data = make_data(tiny_backbone, tmp_path, train_file=str(data_files["train"]), max_length=128)
    data.setup("fit")  # the limit itself is fine
    assert data.token_limit == 128


def test_stratified_split_small_classes_follow_the_fraction():
    labels = [f"c{i}" for i in range(50) for _ in range(3)]
    parts, too_small = stratified_split(labels, {"validation": 0.1, "test": 0.1}, seed=0)
    # 3 * 0.1 rounds to 0: every row stays in train, rather than a third of them
    assert len(parts["train"]) == 150 and len(parts["validation"]) == len(parts["test"]) == 0
    assert len(too_small) == 50
    labels += ["big"] * 100
    parts, too_small = stratified_split(labels, {"validation": 0.1, "test": 0.1}, seed=0)
    assert len(parts["validation"]) == len(parts["test"]) == 10 and len(parts["train"]) == 230
    assert "big" not in too_small


def test_tokenize_cache_key_covers_the_truncation(tiny_backbone, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_backbone)
    texts = ["goal pizza laptop soup chef team"]
    head = np.concatenate(tokenize_cached(texts, tok, TextLayout(4), str(tmp_path / "c"))[0]).tolist()
    assert head == tok(texts, truncation=True, max_length=4)["input_ids"][0]  # what the tokenizer keeps
    tail = np.concatenate(tokenize_cached(texts, tok, TextLayout(4, "tail"), str(tmp_path / "c"))[0]).tolist()
    assert tail != head  # re-tokenized: the cache did not serve the head-truncated ids
    tok.truncation_side = "left"
    assert tail == tok(texts, truncation=True, max_length=4)["input_ids"][0]


def test_reads_a_json_array(tmp_path):
    import json

    rows = [{"text": "a goal", "label": "sports"}, {"text": "the soup", "label": "food"}]
    (tmp_path / "d.json").write_text(json.dumps(rows, indent=2))
    got = read_table(str(tmp_path / "d.json"))
    assert got["text"].tolist() == ["a goal", "the soup"] and got["label"].tolist() == ["sports", "food"]
    (tmp_path / "bad.json").write_text('[{"text": "a"}, 3]')
    with pytest.raises(DataError, match="item 1 is not a JSON object"):
        read_table(str(tmp_path / "bad.json"))


def test_fit_reads_the_data_once(tiny_backbone, tmp_path, data_files, monkeypatch):
    import textcls.data.sources
    from textcls.checks import DataCheck

    calls = []
    read = textcls.data.sources.read_dataset
    monkeypatch.setattr(
        textcls.data.sources, "read_dataset", lambda path, *a: calls.append(path) or read(path, *a)
    )
    data = make_data(
        tiny_backbone, tmp_path, train_file=str(data_files["train"]), test_file=str(data_files["test"])
    )
    # what `fit` does: the CLI links the label names, the data module is set up, the data check runs
    assert data.label_names == ["food", "sports", "tech"]
    data.setup("fit")
    DataCheck().run(data, tmp_path / "check")
    assert sorted(calls) == sorted([str(data_files["train"]), str(data_files["test"])])


def test_data_seed_sets_the_batch_order_under_ddp(tiny_backbone, tmp_path, data_files, monkeypatch):
    import lightning as L
    from lightning.fabric.utilities.data import _replace_dunder_methods
    from lightning.pytorch.trainer.states import RunningStage
    from torch.utils.data import BatchSampler, DataLoader

    monkeypatch.setenv("PL_GLOBAL_SEED", "42")

    def rank_order(seed: int, group_by_length: bool) -> list[int]:
        data = make_data(
            tiny_backbone, tmp_path, train_file=str(data_files["train"]), seed=seed,
            group_by_length=group_by_length, batch_size=4,
        )  # fmt: skip
        data.trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
        data.setup("fit")
        # the loader as Lightning requests it and rewraps it for rank 0 of 2
        with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
            loader = data.train_dataloader()
        loader = data.trainer._data_connector._prepare_dataloader(loader, True, RunningStage.TRAINING)
        return [int(i) for batch in loader for i in batch["idx"]]

    for grouped in (False, True):
        first = rank_order(1, grouped)
        assert len(first) == 48  # rank 0's half of the 96 training rows
        assert rank_order(1, grouped) == first
        assert rank_order(2, grouped) != first, f"data.seed ignored (group_by_length={grouped})"
