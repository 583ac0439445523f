"""The prediction tables, one row per input text in input order, as every path writes them (`predict`,
the exported-folder predictor, the web app): one label per text, or a set of labels
(textcls/tasks/ says which).

Evaluation and prediction batches arrive longest-first and, with several devices, split over ranks
that a distributed sampler may pad with repeated rows: `gather_in_order` undoes all of that at the end of
an evaluation, `InputOrder` as rows stream in (predict), and `inputs_at` reads the input rows of a
stretch of predictions.
"""

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

UNCERTAIN = "UNCERTAIN"
DEFAULT_UNCERTAIN_BELOW = 0.0  # never UNCERTAIN unless asked: the same default in `predict` and the app


def gather_in_order(idx: torch.Tensor, probs: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """Gather every rank's rows (any number per rank) and return the input rows, sorted, with their
    probabilities; a row a distributed sampler repeated is kept once."""
    idx, probs = idx.cpu(), probs.cpu()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, (idx, probs))
        idx = torch.cat([p[0] for p in parts])
        probs = torch.cat([p[1] for p in parts])
    order = pd.Series(range(len(idx)), index=idx.numpy()).groupby(level=0).first().sort_index()
    return order.index.to_numpy(), probs[torch.as_tensor(order.to_numpy().copy())]


class InputOrder:
    """Prediction rows that arrive in any order (sorted by length within blocks, split over ranks, some
    repeated), handed on in input order as soon as every row before them has arrived, each row once.

    Holds only the rows not yet handed on (about one block of the predict sampler), and per batch does
    work in proportion to the batch: the rows are sorted only when a stretch is handed on.
    """

    def __init__(self):
        self.next = 0  # the first input row not yet handed on
        self.arrived = np.zeros(0, dtype=bool)  # arrived[i]: input row next + i is held
        self.parts: list[tuple[np.ndarray, torch.Tensor]] = []

    def __len__(self) -> int:
        return int(self.arrived.sum())

    def add(self, rows: torch.Tensor | np.ndarray, values: torch.Tensor) -> None:
        """Take predictions `values` of input `rows`; a row already handed on is dropped."""
        rows = np.asarray(rows, dtype=np.int64)
        kept = rows >= self.next
        rows, values = rows[kept], values.cpu()[torch.from_numpy(kept)]
        if not len(rows):
            return
        offsets = rows - self.next
        if (needed := int(offsets.max()) + 1) > len(self.arrived):  # grown by doubling: few copies
            grown = np.zeros(max(needed, 2 * len(self.arrived)), dtype=bool)
            grown[: len(self.arrived)] = self.arrived
            self.arrived = grown
        self.arrived[offsets] = True
        self.parts.append((rows, values))

    def take(self, at_least: int = 1) -> tuple[np.ndarray, torch.Tensor] | None:
        """The rows from the first not yet handed on, in input order, up to the first row still missing,
        when they are at least `at_least` (else None, and they wait)."""
        missing = np.flatnonzero(~self.arrived)
        run = int(missing[0]) if len(missing) else len(self.arrived)
        return self._hand_on(run) if run and run >= at_least else None

    def rest(self) -> tuple[np.ndarray, torch.Tensor] | None:
        """Every row still held, in input order (rows that never arrive, as with
        trainer.limit_predict_batches, leave gaps)."""
        held = np.flatnonzero(self.arrived)
        return self._hand_on(int(held[-1]) + 1) if len(held) else None

    def _hand_on(self, n: int) -> tuple[np.ndarray, torch.Tensor]:
        """Rows next .. next + n - 1 that are held, sorted, each at its first arrival."""
        rows = np.concatenate([r for r, _ in self.parts])
        values = torch.cat([v for _, v in self.parts])
        rows, first = np.unique(rows, return_index=True)  # sorted, each row's first arrival
        values = values[torch.from_numpy(first)]
        cut = int(np.searchsorted(rows, self.next + n))
        self.parts = [(rows[cut:], values[cut:])] if cut < len(rows) else []
        self.arrived, self.next = self.arrived[n:], self.next + n
        return rows[:cut], values[:cut]


def inputs_at(datamodule, rows: np.ndarray) -> pd.DataFrame:
    """The predict input rows (`text`, and `text_pair` and `id` where the data has them) at positions
    `rows`: from the Arrow dataset `datamodule.predict_rows` where the data module keeps one, else from its
    frame `predict_frame`."""
    source = getattr(datamodule, "predict_rows", None)
    if source is not None and hasattr(source, "select"):
        return pd.DataFrame(source[list(map(int, rows))])
    return datamodule.predict_frame.iloc[rows]


def row_names(inputs: pd.DataFrame) -> pd.DataFrame:
    """What names each row of a prediction table: its `id` when the inputs have one, else its text (and
    second text, for pairs)."""
    columns = ["id"] if "id" in inputs else [c for c in ("text", "text_pair") if c in inputs]
    return pd.DataFrame({c: inputs[c].to_numpy() for c in columns})


def prediction_table(
    inputs: pd.DataFrame,
    probs: torch.Tensor | np.ndarray,
    label_names: list[str],
    uncertain_below: float = 0.0,
) -> pd.DataFrame:
    """`text` (and `text_pair`; or `id` when the inputs have one), `label`, `confidence` and
    `prob_<label>` per row.

    Rows whose top probability is below `uncertain_below` are labelled UNCERTAIN.
    """
    probs = torch.as_tensor(probs)
    confidence, best = probs.max(-1)
    label = [label_names[i] for i in best.tolist()]
    if uncertain_below:
        label = [
            UNCERTAIN if c < uncertain_below else lab
            for lab, c in zip(label, confidence.tolist(), strict=True)
        ]
    out = row_names(inputs)
    out["label"] = label
    out["confidence"] = confidence.numpy()
    for j, name in enumerate(label_names):
        out[f"prob_{name}"] = probs[:, j].numpy()
    return out


def label_set_table(
    inputs: pd.DataFrame,
    probs: torch.Tensor | np.ndarray,
    label_names: list[str],
    chosen: np.ndarray,
    separator: str = ";",
) -> pd.DataFrame:
    """`text` (or `id`), `labels` (the names `chosen` gives each row, joined by `separator`), then per
    label its probability `prob_<label>` and whether it was given `pred_<label>` (0/1)."""
    probs, chosen = torch.as_tensor(probs), np.asarray(chosen).astype(int)
    out = row_names(inputs)
    out["labels"] = [separator.join(label_names[j] for j in np.flatnonzero(row)) for row in chosen]
    for j, name in enumerate(label_names):
        out[f"prob_{name}"] = probs[:, j].numpy()
    for j, name in enumerate(label_names):
        out[f"pred_{name}"] = chosen[:, j]
    return out
