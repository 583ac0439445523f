"""Data on Arrow: every format read as a memory-mapped `datasets.Dataset` with today's error messages,
token ids read in place from the cache file, the hash-based duplicate checks, and `data.num_proc`."""

import json
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_rows, write_jsonl
from textcls.checks.duplicates import duplicates, hash_examples, leakage
from textcls.data import DataError, TextClassificationData, read_table
from textcls.data.io import read_dataset
from textcls.data.tokens import tokenize_cached
from textcls.long_text import TextLayout

FRAME = pd.DataFrame({"text": ['hello, "world"', "línea\ncon salto", "  3  "], "label": ["x", "y", "1"]})
WRITERS = {
    "d.csv": lambda path: FRAME.to_csv(path, index=False),
    "d.tsv": lambda path: FRAME.to_csv(path, sep="\t", index=False),
    "d.jsonl": lambda path: FRAME.to_json(path, orient="records", lines=True, force_ascii=False),
    "d.json": lambda path: path.write_text(json.dumps(FRAME.to_dict("records"), indent=2)),
    "d.parquet": lambda path: FRAME.to_parquet(path),
    "saved": lambda path: datasets.Dataset.from_pandas(FRAME).save_to_disk(str(path)),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_each_format_reads_as_memory_mapped_arrow(tmp_path, name):
    WRITERS[name](tmp_path / name)
    got = read_dataset(str(tmp_path / name), cache_dir=str(tmp_path / "cache"))
    assert isinstance(got, datasets.Dataset)
    assert got.cache_files, "read into memory, not from an Arrow file on disk"
    assert got["text"][:] == FRAME["text"].tolist() and got["label"][:] == ["x", "y", "1"]
    assert got.to_pandas().equals(read_table(str(tmp_path / name)))  # the frame today's reader reads


def test_csv_cells_stay_strings(tmp_path):
    (tmp_path / "n.csv").write_text("text,label\n007,1\n1.50,2\n,3\n")
    got = read_dataset(str(tmp_path / "n.csv"), cache_dir=str(tmp_path / "cache"))
    assert got["text"][:] == ["007", "1.50", ""] and got["label"][:] == ["1", "2", "3"]


BAD = {
    "missing.csv": None,
    "data.xlsx": b"text,label\n",
    "latin.csv": "text,label\ncafé,a\n".encode("latin-1"),
    "empty.csv": b"",
    "empty.tsv": b"   \n",
    "header.csv": b"text,label\n",
    "blank.jsonl": b"\n\n",
    "ragged.csv": b"text,label\nfine,a\ntoo,many,fields\nok,b\n",
    "bad_line.jsonl": b'{"text": "a", "label": "x"}\n{"text": "c", label: z}\n',
    "list_line.jsonl": b'{"text": "a", "label": "x"}\n[1, 2]\n',
    "two_objects.jsonl": b'{"text": "a", "label": "x"} {"text": "b", "label": "y"}\n',
    "items.json": b'[{"text": "a"}, 3]',
    "broken.json": b'[{"text": "a"},',
    "latin.jsonl": '{"text": "café", "label": "a"}\n'.encode("latin-1"),
    "garbage.parquet": b"not a parquet file",
    "folder": "dir",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_fail_with_todays_message(tmp_path, name):
    path = tmp_path / name
    if BAD[name] == "dir":
        path.mkdir()
    elif BAD[name] is not None:
        path.write_bytes(BAD[name])
    with pytest.raises(DataError) as today:
        read_table(str(path))
    with pytest.raises(DataError) as arrow:
        read_dataset(str(path), cache_dir=str(tmp_path / "cache"))
    assert str(arrow.value) == str(today.value)


def test_mixed_json_types(tmp_path, tiny_backbone):
    """JSON cells of mixed types (read as `datasets.Json`): labels of numbers and names are labels;
    numbers in the text column are refused as today."""
    rows = [{"text": f"text {i}", "label": [1, "b", 2.0][i % 3]} for i in range(12)]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    data = TextClassificationData(
        train_file=str(path), val_fraction=0, test_fraction=0, cache_dir=str(tmp_path / "c")
    )
    assert data.label_names == ["1", "2", "b"]
    path = write_jsonl(tmp_path / "numbers.jsonl", [{"text": "a", "label": "x"}, {"text": 4, "label": "y"}])
    with pytest.raises(DataError, match="train column 'text' holds non-text values"):
        _ = TextClassificationData(train_file=str(path), cache_dir=str(tmp_path / "c")).frames


def _mapped_files() -> list[tuple[int, int, str]]:
    spans = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6:
            start, end = (int(x, 16) for x in parts[0].split("-"))
            spans.append((start, end, parts[5]))
    return spans


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the process's memory map (Linux)")
def test_token_ids_are_read_in_place_from_the_cache_file(tmp_path, tiny_backbone, data_files):
    data = TextClassificationData(
        train_file=str(data_files["train"]), model_name_or_path=tiny_backbone, cache_dir=str(tmp_path / "c")
    )
    data.setup("fit")
    encoded, spans = data.encoded["train"], _mapped_files()
    for array in [*encoded.chunks, *encoded.chunk_offsets]:
        assert not array.flags.owndata  # a view, not a copy
        address = array.ctypes.data
        files = [path for start, end, path in spans if start <= address < end]
        assert files and Path(files[0]).name.startswith("tokens-"), files  # inside the mapped cache file
    # the sequences are what the tokenizer makes of the texts
    texts = data.frames["train"]["text"].tolist()
    want = data.tokenizer(texts, truncation=True, max_length=data.hparams.max_length)["input_ids"]
    assert [encoded.sequence(i).tolist() for i in range(len(encoded))] == want


def test_num_proc_gives_the_same_encodings(tmp_path, tiny_backbone):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_backbone)
    texts = [r["text"] for r in make_rows(700, seed=4)]  # 2,100 texts: more than one batch per process
    one = tokenize_cached(texts, tok, TextLayout(16, long_text="chunks", chunk_stride=4), str(tmp_path / "1"))
    two = tokenize_cached(
        texts, tok, TextLayout(16, long_text="chunks", chunk_stride=4), str(tmp_path / "2"), num_proc=2
    )
    assert len(list((tmp_path / "2").glob("tokens-*.arrow"))) == 2  # one file per process
    tokens = [np.concatenate([t[o[0] : o[-1]] for t, o in zip(r[0], r[1], strict=True)]) for r in (one, two)]
    lengths = [np.concatenate([np.diff(o) for o in r[1]]) for r in (one, two)]
    assert np.array_equal(*tokens) and np.array_equal(*lengths)
    for a, b in zip(one[2:4], two[2:4], strict=True):  # owners, text lengths
        assert np.array_equal(a, b)


# the duplicate and leakage checks as they were on frames (before Arrow): the reference on small data
def _old_keys(frame: pd.DataFrame) -> pd.Series:
    if "text_pair" not in frame:
        return frame["text"].str.strip()
    sides = zip(frame["text"].str.strip(), frame["text_pair"].str.strip(), strict=True)
    return pd.Series([" ||| ".join(sorted(pair)) for pair in sides], index=frame.index)


def _old_duplicates(frames: dict, examples: int) -> list[tuple]:
    out = []
    for frame in frames.values():
        text = _old_keys(frame)
        repeated = text.duplicated(keep="first")
        if repeated.any():
            shown = text[repeated].drop_duplicates().head(examples).tolist()
            out.append(("duplicate_texts", int(repeated.sum()), text[repeated].nunique(), shown))
        per_text = frame.assign(text=text).groupby("text")["label"].nunique()
        conflicting = per_text[per_text > 1]
        if len(conflicting):
            out.append(("conflicting_labels", len(conflicting), conflicting.index[:examples].tolist()))
    return out


def _old_leakage(frames: dict, examples: int) -> list[tuple]:
    texts = {split: set(_old_keys(frame)) for split, frame in frames.items()}
    out = []
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        if a in texts and b in texts and texts[a] & texts[b]:
            shared = texts[a] & texts[b]
            out.append(("leakage", len(shared), texts[a] == texts[b], sorted(shared)[:examples]))
    return out


@pytest.mark.parametrize("pairs", [False, True])
def test_duplicates_and_leakage_by_hash_equal_the_frame_checks(tmp_path, pairs):
    rng = np.random.default_rng(0)
    pool = [f"text {i}" for i in range(25)] + [" text 3 ", "Text 3"]  # spacing is the same text, case not
    rows = [
        {"text": pool[i], "text_pair": pool[j], "label": "ab"[k]}
        for i, j, k in zip(
            rng.integers(0, 27, 120), rng.integers(0, 4, 120), rng.integers(0, 2, 120), strict=True
        )
    ]
    if not pairs:
        rows = [{"text": r["text"], "label": r["label"]} for r in rows]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", rows[:40])
    data = TextClassificationData(
        train_file=str(tmp_path / "train.jsonl"),
        test_file=str(tmp_path / "test.jsonl"),
        text_pair_column="text_pair" if pairs else None,
        cache_dir=str(tmp_path / "c"),
    )
    splits = data.raw_splits
    frames = {split: rows.frame() for split, rows in splits.items()}
    hashes = {split: hash_examples(rows) for split, rows in splits.items()}
    got = duplicates(splits, hashes, 3)
    old = _old_duplicates(frames, 3)
    assert len(got) == len(old) >= 4  # repeats and conflicts in every split
    for new, ref in zip(got, old, strict=True):
        assert new["code"] == ref[0] and new["examples"] == ref[-1]
        assert [int(w) for w in new["message"].split() if w.isdigit()][: len(ref) - 2] == list(ref[1:-1])
    got = leakage(splits, hashes, 3)
    old = _old_leakage(frames, 3)
    assert len(got) == len(old) >= 2
    for new, ref in zip(got, old, strict=True):
        assert new["examples"] == ref[3] and f"{ref[1]} " in new["message"]
        assert ("are the same" in new["message"]) == ref[2]
