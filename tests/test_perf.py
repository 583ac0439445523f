"""Performance features, checked for correctness only (never for speed)."""

import numpy as np
from lightning.fabric.utilities.data import _replace_dunder_methods
from lightning.pytorch.utilities.data import _update_dataloader
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler

from tests.test_cli import run, write_config
from textcls.data.batching import Collator, EncodedTexts, LengthGroupedBatchSampler, length_buckets


def test_length_buckets_bound_the_shapes():
    assert length_buckets(512) == [16, 32, 64, 128, 256, 512]
    assert length_buckets(64) == [16, 32, 64]
    assert length_buckets(100) == [16, 32, 64, 100]
    collate = Collator(pad_token_id=0, buckets=length_buckets(100))
    widths = set()
    for n in range(1, 101):
        item = {"idx": 0, "input_ids": np.arange(1, n + 1)}
        batch = collate([item])
        assert batch["attention_mask"].sum() == n  # every real token kept, padding only after them
        widths.add(batch["input_ids"].shape[1])
    assert widths == {16, 32, 64, 100}


def test_pad_to_multiple_of_8():
    collate = Collator(pad_token_id=0, pad_to_multiple_of=8)
    batch = collate([{"idx": 0, "input_ids": np.arange(1, 10)}, {"idx": 1, "input_ids": np.arange(1, 3)}])
    assert batch["input_ids"].shape == (2, 16)
    assert batch["attention_mask"].sum(1).tolist() == [9, 2]


def test_length_grouped_sampler_under_lightning_distributed_sampler():
    """Lightning re-creates our batch sampler around a DistributedSampler: each rank gets its own rows,
    together every row, in batches of similar length."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=203)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    data = EncodedTexts(np.zeros(offsets[-1], dtype=np.int32), offsets, None)
    seen = []
    for rank in range(2):
        # the data connector captures the init args of batch samplers created inside this context
        with _replace_dunder_methods(BatchSampler):
            sampler = LengthGroupedBatchSampler(RandomSampler(data), 8, False, data.lengths, window_batches=4)
        loader = DataLoader(data, batch_sampler=sampler, collate_fn=lambda items: [i["idx"] for i in items])
        dist = DistributedSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=1)
        updated = _update_dataloader(loader, dist)
        assert isinstance(updated.batch_sampler, LengthGroupedBatchSampler)
        assert updated.batch_sampler.sampler is dist
        batches = list(updated)
        rows = [i for b in batches for i in b]
        assert sorted(rows) == sorted(dist)  # exactly this rank's share
        seen.append(set(rows))
        # within a window sorted by length, a batch spans a small part of the length range
        spans = [np.ptp(lengths[b]) for b in batches if len(b) == 8]
        assert np.median(spans) < 0.25 * np.ptp(lengths)
    assert seen[0] | seen[1] == set(range(len(data)))
    assert len(seen[0] & seen[1]) <= 1  # DistributedSampler repeats at most one row to even the ranks


def test_fit_logs_throughput_and_padding(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files, max_epochs=2)
    fit = run("fit", "--config", str(config), cwd=tmp_path)
    assert "Training throughput:" in fit.stdout + fit.stderr
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((tmp_path / "logs" / "tiny").glob("version_*"))))
    events.Reload()
    tags = events.Tags()["scalars"]
    for tag in ("train/samples_per_sec", "train/tokens_per_sec", "train/padding_efficiency"):
        assert tag in tags, tags
    eff = [e.value for e in events.Scalars("train/padding_efficiency")]
    speed = [e.value for e in events.Scalars("train/samples_per_sec")]
    assert len(eff) == 2 and all(0.5 < e <= 1 for e in eff)  # grouped by length: little padding
    assert all(s > 0 for s in speed)
