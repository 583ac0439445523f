"""Batching: the encoded dataset, padding, samplers and the training loader that resumes mid-epoch."""

import itertools
import math
from collections.abc import Callable, Iterator, Sequence, Sized

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler


class EncodedTexts(Dataset):
    """Token ids of many sequences in flat arrays (a few bytes a token, not a Python list per text).

    `tokens` and `offsets` are one flat array of token ids and the offsets of each sequence in it, or
    lists of them, one pair per chunk: the chunks of a memory-mapped Arrow column (textcls/data/tokens.py),
    read in place, so the token ids stay on disk until a batch reads them.
    One sequence per text, or, for chunked long texts, one per window: `owners` says which text each
    sequence reads, and each window carries its text's label (how chunked texts are trained on).
    `text_lengths` are the texts' full lengths in tokens, before truncation. For text pairs,
    `segments` says where each sequence's second text starts (its segment ids switch to 1 there).
    """

    def __init__(
        self,
        tokens: np.ndarray | list[np.ndarray],
        offsets: np.ndarray | list[np.ndarray],
        labels: np.ndarray | None,
        owners: np.ndarray | None = None,
        text_lengths: np.ndarray | None = None,
        segments: np.ndarray | None = None,
    ):
        self.chunks = [tokens] if isinstance(tokens, np.ndarray) else list(tokens)
        self.chunk_offsets = [offsets] if isinstance(offsets, np.ndarray) else list(offsets)
        self.labels, self.segments = labels, segments
        per_chunk = [np.diff(o) for o in self.chunk_offsets]
        self.lengths = np.concatenate(per_chunk) if per_chunk else np.zeros(0, dtype=np.int64)
        # the first sequence of each chunk, and one past the last
        self.chunk_starts = np.cumsum([0] + [len(n) for n in per_chunk])
        self.owners = np.arange(len(self.lengths)) if owners is None else owners
        self.text_lengths = self.lengths if text_lengths is None else text_lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def sequence(self, i: int) -> np.ndarray:
        chunk = int(np.searchsorted(self.chunk_starts, i, side="right")) - 1
        offsets, j = self.chunk_offsets[chunk], i - self.chunk_starts[chunk]
        return self.chunks[chunk][offsets[j] : offsets[j + 1]]

    def label(self, text: int) -> int | np.ndarray:
        # a class index or a number, or a row of 0/1 per label for label sets
        return self.labels[text].item() if self.labels.ndim == 1 else self.labels[text]

    def __getitem__(self, i: int) -> dict:
        item = {"idx": i, "input_ids": self.sequence(i)}
        if self.segments is not None:
            item["segment"] = int(self.segments[i])
        if self.labels is not None:
            item["label"] = self.label(self.owners[i])
        return item


class TextWindows(Dataset):
    """The texts of chunked `EncodedTexts`, each item one text with all its windows.

    Validation, test and predict read texts this way: a text's windows stay in one batch (and on one
    rank under DDP), where the model pools their logits into the text's one answer.
    """

    def __init__(self, encoded: EncodedTexts):
        self.encoded = encoded
        # owners are ascending (each text's windows in a row): the first window of each text
        self.starts = np.searchsorted(encoded.owners, np.arange(len(encoded.text_lengths) + 1))
        # what a text costs to read: the tokens of all its windows, for sorting batches by size
        self.lengths = np.add.reduceat(encoded.lengths, self.starts[:-1]) if len(encoded.lengths) else []

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, i: int) -> dict:
        windows = [self.encoded.sequence(w) for w in range(self.starts[i], self.starts[i + 1])]
        item = {"idx": i, "windows": windows}
        if self.encoded.labels is not None:
            item["label"] = self.encoded.label(i)
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
        if "windows" in items[0]:  # whole texts of windows: one row per window, `owner` its text's row
            rows = [w for item in items for w in item["windows"]]
            owner = [k for k, item in enumerate(items) for _ in item["windows"]]
        else:
            rows, owner = [item["input_ids"] for item in items], None
        width = self.width(max(len(ids) for ids in rows))
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for row, ids in enumerate(rows):
            input_ids[row, : len(ids)] = torch.from_numpy(np.asarray(ids, dtype=np.int64))
            attention_mask[row, : len(ids)] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "segment" in items[0]:  # a pair: segment ids 1 from the second text to its end, 0 elsewhere
            starts = torch.tensor([item["segment"] for item in items])[:, None]
            positions = torch.arange(width)[None, :]
            batch["token_type_ids"] = ((positions >= starts) & attention_mask.bool()).long()
        if owner is not None:
            batch["owner"] = torch.tensor(owner)
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
        # numpy arrays of the epoch's indices, not a Python int per text: epochs of millions of texts
        indices = np.fromiter(self.sampler, dtype=np.int64)
        lengths = np.asarray(self.lengths)
        window = self.batch_size * self.window_batches
        starts, ends = [], []
        for start in range(0, len(indices), window):
            chunk = indices[start : start + window]
            indices[start : start + window] = chunk[np.argsort(lengths[chunk], kind="stable")]
            cuts = np.arange(start, start + len(chunk), self.batch_size)
            starts.append(cuts)
            ends.append(np.minimum(cuts + self.batch_size, start + len(chunk)))
        starts = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
        ends = np.concatenate(ends) if ends else np.zeros(0, dtype=np.int64)
        if self.drop_last:
            full = ends - starts == self.batch_size
            starts, ends = starts[full], ends[full]
        for i in rng.permutation(len(starts)):
            yield indices[starts[i] : ends[i]].tolist()


class SeededRandomSampler(RandomSampler):
    """A random order drawn from the seed and the epoch alone (Lightning sets the epoch), so that a
    resumed run, or a second run with the same seed, sees the same batches."""

    def __init__(self, data_source: Sized, seed: int = 0):
        super().__init__(data_source, generator=torch.Generator())
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        # RandomSampler's order, made a Python int at a time rather than as one list of every index
        self.generator.manual_seed(self.seed * 1_000_003 + self.epoch)
        for chunk in torch.randperm(len(self.data_source), generator=self.generator).split(1 << 16):
            yield from chunk.tolist()


class ResumableDataLoader(DataLoader):
    """A training DataLoader that Lightning can resume mid-epoch.

    Each pass starts after the batches of the current epoch already done (read from
    `batches_done`; 0 except in a run resumed mid-epoch), so the resumed run continues with the
    batches an uninterrupted run would have seen next. The count is read when the first batch is
    taken, not when the iterator is made: Lightning makes one before it restores the checkpoint.

    Under DDP Lightning re-creates the loader around a DistributedSampler of its own, seeded by
    `seed_everything`; `seed` (data.seed) becomes that sampler's seed, so one seed sets the order.
    A sampler that is a DistributedSampler already (WindowSampler) is kept, batch sampler or not.
    """

    def __init__(
        self, *args, batches_done: Callable[[], int] | None = None, seed: int | None = None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.batches_done = batches_done
        inner = getattr(self.batch_sampler, "sampler", None)
        for sampler in (self.sampler, inner):
            if seed is not None and isinstance(sampler, DistributedSampler):
                sampler.seed = seed
        if isinstance(inner, DistributedSampler):
            # With a batch sampler the loader's `sampler` is a SequentialSampler stand-in, and Lightning
            # looks at it alone to decide whether to put a DistributedSampler in: show it the real one.
            # (DataLoader refuses `sampler` once initialised; this is still its initialisation.)
            object.__setattr__(self, "sampler", inner)

    def __iter__(self) -> Iterator:
        skip = self.batches_done() if self.batches_done else 0
        yield from itertools.islice(super().__iter__(), skip, None)


class WindowSampler(DistributedSampler):
    """A random order of the windows of chunked texts that keeps at most `per_text` windows of each
    text, a new draw every epoch: long texts add variety without multiplying the cost of an epoch.

    Distributed by itself: every rank makes the same draw (from the seed and the epoch) and reads
    its own share of it, as many windows on each rank (a few repeated to even them out, as
    DistributedSampler does). Being a DistributedSampler, Lightning keeps it under DDP instead of
    putting one over every window, which would drop the bound and lengthen the epoch.

    Args:
        owners: The text each window reads (ascending).
        per_text: The most windows of one text drawn per epoch.
        seed: Seed of the draw (with the epoch).
        num_replicas: Ranks sharing the epoch (default: the initialised process group's, else 1).
        rank: This process's rank among them (default: the process group's, else 0).
    """

    def __init__(
        self,
        owners: np.ndarray,
        per_text: int,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        num_replicas, rank = _replicas_and_rank(num_replicas, rank)
        super().__init__(owners, num_replicas, rank, shuffle=True, seed=seed)
        self.owners, self.per_text = owners, per_text
        self.drawn = int(np.minimum(np.bincount(owners), per_text).sum()) if len(owners) else 0
        self.num_samples = math.ceil(self.drawn / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def draw(self) -> list[int]:
        """The epoch's windows in random order, at most `per_text` of each text: the same on every rank."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        taken = np.zeros(int(self.owners.max()) + 1 if len(self.owners) else 0, dtype=np.int64)
        drawn = []
        for i in torch.randperm(len(self.owners), generator=generator).tolist():
            owner = self.owners[i]
            if taken[owner] < self.per_text:
                taken[owner] += 1
                drawn.append(i)
        return drawn

    def __iter__(self) -> Iterator[int]:
        drawn = self.draw()
        while drawn and len(drawn) < self.total_size:
            drawn += drawn[: self.total_size - len(drawn)]
        return iter(drawn[self.rank : self.total_size : self.num_replicas])


class SortedSampler(Sampler[int]):
    """Longest texts first, so evaluation batches carry little padding; outputs are reordered by `idx`."""

    def __init__(self, lengths: Sequence[int]):
        self.order = np.argsort(-np.asarray(lengths), kind="stable").tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


# input rows that `predict` sorts by length together: the writer restores input order one block at a time
PREDICT_BLOCK = 4096


class BlockSortedSampler(DistributedSampler):
    """Longest texts first within consecutive blocks of input rows, the blocks in input order: batches
    carry little padding, and predictions come back in input order a block at a time, so the writer
    buffers about one block however long the input.

    Distributed by itself as Lightning distributes predict: position p of that order goes to rank
    p % num_replicas, no row repeated, so a rank may hold one row (and one batch) more than another. Being
    a DistributedSampler, Lightning keeps it under DDP instead of wrapping it in its own, which would
    list every index of the input in memory.

    Args:
        lengths: Each text's length (what it costs to read).
        block: Input rows sorted together (default PREDICT_BLOCK).
        num_replicas: Ranks sharing the input (default: the initialised process group's, else 1).
        rank: This process's rank among them (default: the process group's, else 0).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        block: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        num_replicas, rank = _replicas_and_rank(num_replicas, rank)
        self.lengths = lengths  # read a block at a time: they may be a memory-mapped column
        super().__init__(lengths, num_replicas, rank, shuffle=False)
        self.block = block or PREDICT_BLOCK
        self.num_samples = len(range(self.rank, len(self.lengths), self.num_replicas))
        self.total_size = len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        for start in range(0, len(self.lengths), self.block):
            lengths = np.asarray(self.lengths[start : start + self.block])
            order = start + np.argsort(-lengths, kind="stable")
            yield from order[(self.rank - start) % self.num_replicas :: self.num_replicas].tolist()


def _replicas_and_rank(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """The given ranks, or the initialised process group's (a single process without one)."""
    grouped = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if grouped else 1
    if rank is None:
        rank = dist.get_rank() if grouped else 0
    return num_replicas, rank
