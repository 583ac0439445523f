"""Streamed `predict`: rows sorted by length within blocks of input rows, gathered from every rank in
bounded rounds, put back in input order and appended to the file as they complete."""

import io
import os
import socket
import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper

from tests.test_cli import ROOT, run, write_config
from textcls.callbacks import PredictionWriter, writer
from textcls.callbacks.gathering import RankRounds
from textcls.callbacks.table_file import TableFile
from textcls.data import batching
from textcls.data.batching import BlockSortedSampler, SortedSampler
from textcls.inference import load_predictor
from textcls.predictions import InputOrder

# ----------------------------------------------------------------------------- the pieces


def test_block_sorted_sampler_sorts_within_blocks_and_splits_as_lightning_does():
    lengths = np.random.default_rng(0).integers(1, 50, 23)
    alone = list(BlockSortedSampler(lengths, block=8, num_replicas=1, rank=0))
    for start in range(0, 23, 8):  # each block: its own rows, longest first, blocks in input order
        block = alone[start : start + 8]
        assert sorted(block) == list(range(start, min(start + 8, 23)))
        assert block == list(SortedSampler(lengths[start : start + 8]).order + np.int64(start))
    # 3 ranks: Lightning's unrepeated split of the same order, no row twice, ranks 8/8/7 rows
    for rank in range(3):
        ours = BlockSortedSampler(lengths, block=8, num_replicas=3, rank=rank)
        lightnings = UnrepeatedDistributedSamplerWrapper(alone, num_replicas=3, rank=rank, shuffle=False)
        assert list(ours) == list(lightnings) and len(ours) == len(lightnings) == (8 if rank < 2 else 7)


def test_input_order_hands_on_complete_stretches_each_row_once():
    order = InputOrder()
    probs = torch.arange(10, dtype=torch.float32)[:, None]
    order.add(torch.tensor([3, 1, 2]), probs[[3, 1, 2]])
    assert order.take() is None and len(order) == 3  # row 0 is missing: nothing is handed on
    order.add(torch.tensor([0, 2, 5]), probs[[0, 2, 5]] + torch.tensor([[0.0], [100.0], [0.0]]))
    assert order.take(at_least=5) is None  # 4 complete rows are fewer than asked
    rows, values = order.take()
    assert rows.tolist() == [0, 1, 2, 3] and values[:, 0].tolist() == [0, 1, 2, 3]  # a repeat: first kept
    assert len(order) == 1
    order.add(torch.tensor([2, 4, 7]), probs[[2, 4, 7]])  # 2 again, already written: dropped
    rows, _ = order.take()
    assert rows.tolist() == [4, 5]
    rows, values = order.rest()  # what never arrives (6) leaves a gap
    assert rows.tolist() == [7] and values[:, 0].tolist() == [7] and order.rest() is None


def test_inputs_at_reads_a_frame_or_an_arrow_dataset():
    from types import SimpleNamespace

    from datasets import Dataset

    from textcls.predictions import inputs_at

    frame = pd.DataFrame({"text": list("abcdef"), "id": range(10, 16)})
    rows = np.array([1, 2, 4])
    from_frame = inputs_at(SimpleNamespace(predict_frame=frame), rows)
    from_arrow = inputs_at(SimpleNamespace(predict_rows=Dataset.from_pandas(frame)), rows)
    for inputs in (from_frame, from_arrow):
        assert inputs["text"].tolist() == ["b", "c", "e"] and inputs["id"].tolist() == [11, 12, 14]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_table_file_appends_parts_as_one_write_would(tmp_path, suffix):
    frame = pd.DataFrame({"id": [3, 1, 2, 9, 8], "label": list("abcab"), "prob_a": np.linspace(0, 1, 5)})
    whole, parts = tmp_path / f"whole{suffix}", tmp_path / f"parts{suffix}"
    {
        ".csv": lambda: frame.to_csv(whole, index=False),
        ".parquet": lambda: frame.to_parquet(whole, index=False),
    }.get(suffix, lambda: frame.to_json(whole, orient="records", lines=True, force_ascii=False))()
    table = TableFile(parts)
    for start in (0, 2, 3):
        table.append(frame.iloc[start : {0: 2, 2: 3, 3: 5}[start]])
        assert not parts.exists() and table.tmp.exists()  # written under the temporary name until the end
    table.close()
    assert not table.tmp.exists()
    if suffix == ".parquet":
        assert pq.ParquetFile(parts).metadata.num_row_groups == 3
        pd.testing.assert_frame_equal(pd.read_parquet(parts), pd.read_parquet(whole))
    else:
        assert parts.read_bytes() == whole.read_bytes()


SCENARIOS = [(5, 2), (2, 5), (3, 0)]  # batches of rank 0 and rank 1


def test_the_progress_bar_shows_the_rows_written():
    """Lightning's predict bar, rich or tqdm, says how many rows are in the file so far."""
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
    from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
    from rich.progress import Progress

    tqdm_bar = TQDMProgressBar()
    tqdm_bar.predict_progress_bar = Tqdm(total=10, file=io.StringIO())
    writer._show_rows_written(SimpleNamespace(progress_bar_callback=tqdm_bar), 4096)
    assert tqdm_bar.predict_progress_bar.postfix == "rows written=4096"
    rich_bar = RichProgressBar()
    rich_bar.progress = Progress()
    rich_bar.predict_progress_bar_id = rich_bar.progress.add_task("Predicting", total=10)
    writer._show_rows_written(SimpleNamespace(progress_bar_callback=rich_bar), 12288)
    assert rich_bar.progress.tasks[0].description.endswith("Predicting, 12,288 rows written")


def _rounds(rank: int, port: int, out) -> None:
    """One rank through each scenario: batches of 2 rows (rank 0 rows 0-1, 4-5, ...; rank 1 rows 2-3, ...);
    puts what rank 0 received in each round."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    for batches in SCENARIOS:
        rounds, received = RankRounds(every=2), []
        send = rounds._round
        rounds._round = lambda send=send, got=received: got.append(send()) or got[-1]
        rounds.start(batches[rank])
        for rows in torch.arange(100).reshape(-1, 2)[rank::2][: batches[rank]]:
            rounds.add(rows, rows[:, None].float())
        rounds.finish()
        out.put(
            (
                rank,
                batches,
                (rounds.done, rounds.rounds),
                [[r for rows, _ in got for r in rows.tolist()] for got in received],
            )
        )
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_rank_rounds_bring_uneven_ranks_to_rank_0_without_waiting_forever(monkeypatch):
    """2 gloo ranks with different numbers of batches (rank 0 more, fewer, the other none): every rank
    takes part in the rounds the rank with the most needs, and rank 0 receives every row once, one round
    (2 batches of each rank) at a time."""
    # a spawned process re-runs the parent's __main__: Streamlit's AppTest (the app tests) leaves its page
    # script there, which fails outside Streamlit
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    ctx = mp.get_context("spawn")
    out, port = ctx.Queue(), free_port()
    procs = [ctx.Process(target=_rounds, args=(rank, port, out)) for rank in range(2)]
    for proc in procs:
        proc.start()
    results = {(rank, batches): rest for rank, batches, *rest in (out.get(timeout=300) for _ in range(6))}
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    for batches in SCENARIOS:
        (done, rounds), received = results[(0, batches)]
        assert done == rounds == -(-max(batches) // 2) and results[(1, batches)][0] == (rounds, rounds)
        sent = [torch.arange(100).reshape(-1, 2)[rank::2][: batches[rank]].flatten() for rank in range(2)]
        assert sorted(r for got in received for r in got) == sorted(torch.cat(sent).tolist())  # each once
        assert max(len(got) for got in received) <= 2 * 2 * 2  # a round: 2 batches of 2 rows from 2 ranks
        assert not any(results[(1, batches)][1])  # other ranks receive nothing


# ----------------------------------------------------------------------------- end to end


class GrowthSpy(Callback):
    """What the prediction writer holds and has written after each predicted batch."""

    seen: list[tuple[int, int]] = []

    def on_predict_batch_end(self, trainer, *args) -> None:
        writer_ = next(c for c in trainer.callbacks if isinstance(c, PredictionWriter))
        GrowthSpy.seen.append((len(writer_.order), writer_.file.rows))


def small_blocks(monkeypatch) -> None:
    """Blocks of 4 input rows, each written as soon as it is complete: many blocks on tiny data."""
    monkeypatch.setattr(batching, "PREDICT_BLOCK", 4)
    monkeypatch.setattr(writer, "WRITE_ROWS", 1)


def predict_streamed(tmp_path, config, out, *args: str) -> None:
    settings = yaml.safe_load(config.read_text())
    settings["data"]["eval_batch_size"] = 2
    for split in ("train_file", "test_file"):  # predict needs none (they would need an id column too)
        settings["data"].pop(split)
    settings["trainer"]["callbacks"] = [{"class_path": f"{__name__}.GrowthSpy"}]
    streamed = tmp_path / "streamed.yaml"
    streamed.write_text(yaml.safe_dump(settings))
    GrowthSpy.seen = []
    run(
        "predict",
        "--config",
        str(streamed),
        "--ckpt_path",
        "best",
        "--prediction.output_path",
        str(out),
        *args,
        cwd=tmp_path,
    )


def reference(tmp_path, texts: list[str], **options) -> pd.DataFrame:
    """What the exported-folder predictor (no Lightning, no sampler, no writer) makes of the same texts."""
    predictor = load_predictor(tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt")
    return predictor.results(texts, predictor.predict_probs(texts, batch_size=3), **options)


def assert_same_predictions(written: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert written.columns.tolist()[1:] == expected.columns.tolist()[1:]
    for column in expected.columns[1:]:
        if column.startswith(("prob_", "confidence")):
            assert np.abs(written[column].to_numpy() - expected[column].to_numpy()).max() < 1e-5, column
        else:
            assert written[column].tolist() == expected[column].tolist(), column


def test_streamed_predict_writes_what_the_predictor_predicts_in_input_order(
    tmp_path, tiny_backbone, data_files, monkeypatch
):
    """Single label, with ids and UNCERTAIN rows, as CSV and Parquet: 15 rows in blocks of 4, written as
    each block completes, never holding more than a block and a batch."""
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=1)
    run("fit", "--config", str(config), cwd=tmp_path)
    texts = pd.read_csv(data_files["predict"])["text"].tolist()
    ids = pd.DataFrame({"id": [f"row{i}" for i in range(len(texts))][::-1], "text": texts})
    ids.to_csv(tmp_path / "with_ids.csv", index=False)
    expected = reference(tmp_path, texts)
    cut = float(expected["confidence"].median())  # about half the rows UNCERTAIN
    expected = reference(tmp_path, texts, uncertain_below=cut)
    assert 0 < (expected["label"] == "UNCERTAIN").sum() < len(texts)
    small_blocks(monkeypatch)
    for out in (tmp_path / "pred.csv", tmp_path / "pred.parquet"):
        options = ("--data.predict_file", str(tmp_path / "with_ids.csv"), "--data.id_column", "id")
        predict_streamed(tmp_path, config, out, *options, "--prediction.uncertain_below", str(cut))
        written = pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)
        assert written["id"].tolist() == ids["id"].tolist()  # input order
        assert_same_predictions(written, expected)
        held, rows = zip(*GrowthSpy.seen, strict=True)
        assert len(held) == 8  # 15 rows, 2 a batch
        assert max(held) <= 4 + 2  # at most a block and a batch waiting for their turn
        # written block by block while predicting, not at the end (the spy may see a batch late)
        assert rows[2] > 0 and rows[-2] < 15 and len(set(rows)) >= 3
    assert pq.ParquetFile(out).metadata.num_row_groups > 1  # one row group per stretch written


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["multi_label", "chunks"])
def test_streamed_predict_of_label_sets_and_chunked_texts(tmp_path, tiny_backbone, kind, monkeypatch):
    """Multi-label tables (labels, pred_<label>) and chunked long texts (a text's windows pooled in one
    batch) stream the same rows as the predictor predicts, in input order."""
    from tests.conftest import make_rows, write_jsonl, write_multi_label_files

    if kind == "multi_label":
        files = write_multi_label_files(tmp_path)
        data = {"multi_label": True, "label_column": "labels", "val_fraction": 0.2}
    else:
        files = {"train": write_jsonl(tmp_path / "train.jsonl", make_rows(40, seed=1))}
        files["test"] = write_jsonl(tmp_path / "test.jsonl", make_rows(10, seed=2))
        files["predict"] = tmp_path / "predict.jsonl"
        long_rows = [
            {"text": " ".join([r["text"]] * (1 + i % 4))} for i, r in enumerate(make_rows(5, seed=3))
        ]
        write_jsonl(files["predict"], long_rows)
        data = {"max_length": 8, "long_text": "chunks", "chunk_stride": 2}
    config = write_config(tmp_path, tiny_backbone, files, max_epochs=1)
    settings = yaml.safe_load(config.read_text())
    settings["data"].update(data)
    config.write_text(yaml.safe_dump(settings))
    run("fit", "--config", str(config), cwd=tmp_path)
    small_blocks(monkeypatch)
    out = tmp_path / "pred.jsonl"
    predict_streamed(tmp_path, config, out)
    texts = pd.read_json(files["predict"], lines=True) if kind == "chunks" else pd.read_csv(files["predict"])
    written = pd.read_json(out, lines=True)
    assert written["text"].tolist() == texts["text"].tolist()
    assert_same_predictions(written, reference(tmp_path, texts["text"].tolist()))


def torchrun(node: int, port: int, tmp_path, *args: str) -> subprocess.Popen:
    """`torchrun --nnodes 2 --nproc_per_node 1 --node_rank NODE ... -m textcls ARGS`, as README's multi-node
    section runs it on each machine (here both on this one, node 1 with its own tokenization cache)."""
    node_args = [] if node == 0 else ["--data.cache_dir", str(tmp_path / "node1_cache")]
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1"]
    command += ["--node_rank", str(node), "--master_addr", "127.0.0.1", "--master_port", str(port)]
    command += ["-m", "textcls", *args, *TWO_NODES, *node_args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


TWO_NODES = ("--trainer.num_nodes", "2", "--trainer.devices", "1", "--trainer.strategy", "ddp")
TWO_NODES += ("--trainer.accelerator", "cpu")


def on_two_nodes(tmp_path, *args: str) -> None:
    port = free_port()
    nodes = [torchrun(node, port, tmp_path, *args) for node in (0, 1)]
    for node in nodes:
        output, _ = node.communicate(timeout=600)
        assert node.returncode == 0, output[-5000:]


@pytest.mark.slow
def test_two_nodes_fit_then_predict_what_one_process_predicts(tmp_path, tiny_backbone, data_files):
    """2 "machines" x 1 process (torchrun, gloo): fit, then predict 33 rows (ranks of 17 and 16 rows, 9 and
    8 batches: uneven rounds); the file equals a single process's prediction from the same checkpoint."""
    from tests.conftest import make_rows

    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=1)
    on_two_nodes(tmp_path, "fit", "--config", str(config))
    ckpt = tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt"
    assert ckpt.exists()
    texts = [r["text"] for r in make_rows(11, seed=3)]
    pd.DataFrame({"id": range(100, 133), "text": texts}).to_csv(tmp_path / "ids.csv", index=False)
    common = ["predict", "--config", str(config), "--ckpt_path", str(ckpt), "--data.id_column", "id"]
    common += ["--data.predict_file", str(tmp_path / "ids.csv"), "--data.eval_batch_size", "2"]
    common += ["--data.train_file", "null", "--data.test_file", "null"]
    on_two_nodes(tmp_path, *common, "--prediction.output_path", str(tmp_path / "two.csv"))
    run(
        *common, "--prediction.output_path", str(tmp_path / "one.csv"), "--trainer.devices", "1", cwd=tmp_path
    )
    one, two = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "two.csv")
    assert two["id"].tolist() == one["id"].tolist() == list(range(100, 133))
    assert two["label"].tolist() == one["label"].tolist()
    probs = [c for c in one.columns if c.startswith("prob_")]
    assert np.abs(two[probs].to_numpy() - one[probs].to_numpy()).max() < 1e-5
