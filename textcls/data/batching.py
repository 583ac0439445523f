"""Batching: the encoded dataset, padding, samplers and the training loader that resumes mid-epoch."""

import itertools
import math
from collections.abc import Callable, Iterator, Sequence, Sized

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler


class EncodedTexts(Dataset):
    """Token ids of many texts in one flat array (a few bytes a token, not a Python list per text)."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, labels: np.ndarray | None):
        self.tokens, self.offsets, self.labels = tokens, offsets, labels
        self.lengths = np.diff(offsets)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> dict:
        item = {"idx": i, "input_ids": self.tokens[self.offsets[i] : self.offsets[i + 1]]}
        if self.labels is not None:
            # a class index, or a row of 0/1 per label for multi-label data
            item["label"] = int(self.labels[i]) if self.labels.ndim == 1 else self.labels[i]
        return item


def length_buckets(max_length: int, smallest: int = 16) -> list[int]:
    """Padded widths for compiled models: powers of two from `smallest`, then `max_length` itself."""
    buckets = [smallest]
    while buckets[-1] * 2 < max_length:
        buckets.append(buckets[-1] * 2)
    return sorted({b for b in buckets if b < max_length} | {max_length})


class Collator:
    """Pads each batch to its own longest text (rounded up to `pad_to_multiple_of`), or to the
    smallest of `buckets` that fits it, so that a compiled model sees few distinct shapes."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int = 1, buckets: Sequence[int] | None = None):
        self.pad_token_id, self.pad_to_multiple_of = pad_token_id, pad_to_multiple_of
        self.buckets = sorted(buckets) if buckets else None

    def width(self, longest: int) -> int:
        if self.buckets:
            return next((b for b in self.buckets if b >= longest), longest)
        return math.ceil(longest / self.pad_to_multiple_of) * self.pad_to_multiple_of

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        width = self.width(max(len(item["input_ids"]) for item in items))
        input_ids = torch.full((len(items), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            input_ids[row, :n] = torch.from_numpy(item["input_ids"].astype(np.int64))
            attention_mask[row, :n] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        batch["idx"] = torch.tensor([item["idx"] for item in items])
        if "label" in items[0]:
            batch["labels"] = torch.as_tensor(np.array([item["label"] for item in items]))
        return batch


class LengthGroupedBatchSampler(BatchSampler):
    """Batches of texts of similar length, in random order.

    Takes indices from `sampler` (random, or Lightning's distributed wrapper of it), sorts each window
    of `batch_size * window_batches` indices by length, cuts the window into batches and shuffles the
    batches, so padding is small but training stays stochastic.
    """

    def __init__(
        self,
        sampler: Sampler[int],
        batch_size: int,
        drop_last: bool,
        lengths: Sequence[int],
        window_batches: int = 50,
        seed: int = 0,
    ):
        super().__init__(sampler, batch_size, drop_last)
        self.lengths, self.window_batches, self.seed = lengths, window_batches, seed
        self.epoch = 0

    def __iter__(self) -> Iterator[list[int]]:
        # the epoch Lightning gives the sampler, so a resumed run draws the same order
        epoch = getattr(self.sampler, "epoch", self.epoch)
        rng = np.random.default_rng((self.seed, epoch))
        self.epoch += 1
        indices = list(self.sampler)
        window = self.batch_size * self.window_batches
        batches = []
        for start in range(0, len(indices), window):
            chunk = sorted(indices[start : start + window], key=lambda i: self.lengths[i])
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        for i in rng.permutation(len(batches)):
            yield batches[i]


class SeededRandomSampler(RandomSampler):
    """A random order drawn from the seed and the epoch alone (Lightning sets the epoch), so that a
    resumed run, or a second run with the same seed, sees the same batches."""

    def __init__(self, data_source: Sized, seed: int = 0):
        super().__init__(data_source, generator=torch.Generator())
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        self.generator.manual_seed(self.seed * 1_000_003 + self.epoch)
        return super().__iter__()


class ResumableDataLoader(DataLoader):
    """A training DataLoader that Lightning can resume mid-epoch.

    Each pass starts after the batches of the current epoch already done (read from
    `batches_done`; 0 except in a run resumed mid-epoch), so the resumed run continues with the
    batches an uninterrupted run would have seen next. The count is read when the first batch is
    taken, not when the iterator is made: Lightning makes one before it restores the checkpoint.

    Under DDP Lightning re-creates the loader around a DistributedSampler of its own, seeded by
    `seed_everything`; `seed` (data.seed) becomes that sampler's seed, so one seed sets the order.
    """

    def __init__(
        self, *args, batches_done: Callable[[], int] | None = None, seed: int | None = None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.batches_done = batches_done
        for sampler in (self.sampler, getattr(self.batch_sampler, "sampler", None)):
            if seed is not None and isinstance(sampler, DistributedSampler):
                sampler.seed = seed

    def __iter__(self) -> Iterator:
        skip = self.batches_done() if self.batches_done else 0
        yield from itertools.islice(super().__iter__(), skip, None)


class SortedSampler(Sampler[int]):
    """Longest texts first, so evaluation batches carry little padding; outputs are reordered by `idx`."""

    def __init__(self, lengths: Sequence[int]):
        self.order = np.argsort(-np.asarray(lengths), kind="stable").tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)
