"""Every rank's predictions reach rank 0 in bounded rounds over the process group: no shared filesystem,
no rank files, and never more than a few batches of each rank in flight.

Ranks may hold different numbers of batches (Lightning's predict split repeats no row), so every rank
takes part in as many rounds as the rank with the most batches needs: a rank with nothing left sends
nothing, but still takes part, and no collective waits for a rank that will never call it.
"""

import math

import torch
import torch.distributed as dist

# batches a rank predicts between two rounds: fewer collectives, and rank 0 receives this many of each rank's
GATHER_EVERY = 8

Rows = tuple[torch.Tensor, torch.Tensor]  # input row indices and their predictions


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class RankRounds:
    """Collects a rank's predicted batches and sends them to rank 0 every `every` batches.

    Call `start` with this rank's number of batches before the first, `add` after each batch, and
    `finish` once this rank has no batch left; rank 0 gets the rows of every rank from each call that
    closes a round (other ranks get nothing back).

    Args:
        every: Batches per round.
        device: Where the process group's collectives take their tensors (the strategy's root device).
    """

    def __init__(self, every: int = GATHER_EVERY, device: torch.device | str = "cpu"):
        self.every, self.device = every, torch.device(device)
        self.pending: list[Rows] = []
        self.batches = self.rounds = self.done = self.added = 0
        self.per_round = every

    def start(self, batches: int) -> None:
        """Agree with the other ranks on the rounds: those the rank with the most batches needs."""
        self.batches, self.done, self.added, self.pending = batches, 0, 0, []
        self.per_round = self.every if world_size() > 1 else 1  # alone, nothing to wait for
        rounds = torch.tensor([math.ceil(batches / self.per_round)], device=self.device)
        if world_size() > 1:
            dist.all_reduce(rounds, op=dist.ReduceOp.MAX)
        self.rounds = int(rounds.item())

    def add(self, idx: torch.Tensor, values: torch.Tensor) -> list[Rows]:
        """Keep one batch's rows; at the end of a round (and at this rank's last batch), send them."""
        self.pending.append((idx.detach().cpu(), values.detach().cpu()))
        self.added += 1
        if self.added % self.per_round and self.added < self.batches:
            return []
        if self.added < self.batches:
            return self._round()
        return self._round() + self.finish()  # this rank's last batch: the rounds other ranks still need

    def finish(self) -> list[Rows]:
        """Take part, with nothing to send, in the rounds left (a rank with fewer batches than others)."""
        received = []
        while self.done < self.rounds:
            received += self._round()
        return received

    def _round(self) -> list[Rows]:
        mine, self.pending = self.pending, []
        self.done += 1
        if world_size() == 1:
            return mine
        parts = [None] * world_size() if dist.get_rank() == 0 else None
        dist.gather_object(mine, parts, dst=0)
        return [rows for part in parts or [] for rows in part]
