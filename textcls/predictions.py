"""The prediction tables, one row per input text in input order, as every path writes them (`predict`,
the exported-folder predictor, the web app): one label per text, or a set of labels
(textcls/tasks/ says which).

Evaluation and prediction batches arrive longest-first and, with several devices, split over ranks
that a distributed sampler may pad with repeated rows: `gather_in_order` undoes all of that.
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
