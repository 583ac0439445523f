"""Multi-label decisions: one probability cut-off per label, tuned on validation.

A multi-label model scores each label on its own (a sigmoid per label) and a text gets every label
whose probability reaches that label's threshold. One threshold of 0.5 for all labels is what most
tools apply; it under-predicts rare labels, whose probabilities rarely climb that high. Here each
label's threshold is the one that maximises that label's F1 on the validation split, computed at
every validation of `fit` (like the temperature of textcls/calibration.py), so each checkpoint carries
the thresholds of its own weights. A label with fewer than `MIN_POSITIVES` validation positives keeps
the global `model.threshold`: an F1 over two or three examples would pick a threshold at random. So
does a label whose best threshold scores hardly better than giving it to every text (`MIN_GAIN`):
tuning it would turn a model that has not learnt the label into one that predicts it everywhere.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import precision_recall_curve

MIN_POSITIVES = 5  # validation positives a label needs for its own threshold
FIXED_THRESHOLD = 0.5  # what most tools apply to every label: reported beside the tuned thresholds
# a tuned threshold must close this share of the gap between "every text gets the label" and a
# perfect F1; below that, chance alone on a few hundred validation rows can explain its gain
MIN_GAIN = 0.1


@dataclass
class Thresholds:
    """Per-label cut-offs, whether each was tuned, and each label's validation positives."""

    values: list[float]
    tuned: list[bool] = field(default_factory=list)
    positives: list[int] = field(default_factory=list)

    @classmethod
    def constant(cls, threshold: float, num_labels: int, positives: list[int] | None = None) -> "Thresholds":
        return cls([float(threshold)] * num_labels, [False] * num_labels, list(positives or []))

    def to_dict(self) -> dict:
        return {"values": self.values, "tuned": self.tuned, "positives": self.positives}

    @classmethod
    def from_dict(cls, state: dict | None) -> "Thresholds | None":
        if not state:
            return None
        return cls(
            [float(v) for v in state["values"]],
            list(state.get("tuned", [])),
            list(state.get("positives", [])),
        )

    def undiscriminating_labels(self, label_names: list[str]) -> list[str]:
        """Labels that had enough validation positives but kept the global threshold: no threshold did
        clearly better on validation than giving the label to every text."""
        if not self.positives:
            return []
        return [
            n
            for n, t, p in zip(label_names, self.tuned, self.positives, strict=True)
            if not t and p >= MIN_POSITIVES
        ]

    def fallback_labels(self, label_names: list[str]) -> list[str]:
        """Labels that kept the global threshold for lack of validation positives."""
        if not self.positives:
            return []
        return [
            n
            for n, t, p in zip(label_names, self.tuned, self.positives, strict=True)
            if not t and p < MIN_POSITIVES
        ]


def tune_thresholds(
    probs: np.ndarray, targets: np.ndarray, default: float, min_positives: int = MIN_POSITIVES
) -> Thresholds:
    """For each label, the probability cut-off with the best F1 on (`probs`, `targets`) (both of shape
    texts x labels); `default` for labels with fewer than `min_positives` positive texts."""
    probs, targets = np.asarray(probs, dtype=np.float64), np.asarray(targets) > 0.5
    values, tuned = [], []
    counts = targets.sum(0).astype(int).tolist()
    for j, count in enumerate(counts):
        if count < min_positives:
            values.append(float(default))
            tuned.append(False)
            continue
        precision, recall, cutoffs = precision_recall_curve(targets[:, j], probs[:, j])
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        best = int(np.argmax(f1[:-1]))
        always = always_predicted_f1(count / len(targets))
        if f1[best] < always + MIN_GAIN * (1 - always):
            # the model hardly separates this label: its "best" threshold would give it to (nearly)
            # every text, so it keeps the global one
            values.append(float(default))
            tuned.append(False)
            continue
        # halfway to the next lower score, not on a text's own probability: the same decisions on
        # validation, and a probability that comes out 1 ulp lower elsewhere (another batch shape,
        # another precision) is not flipped
        below = cutoffs[best - 1] if best > 0 else 0.0
        values.append(float((below + cutoffs[best]) / 2))
        tuned.append(True)
    return Thresholds(values, tuned, counts)


def always_predicted_f1(prevalence: float) -> float:
    """A label's F1 when every text gets it: precision is its prevalence, recall 1."""
    return 2 * prevalence / (1 + prevalence)


# predicted labels per text this many times the true number (or this share of it) is flagged
CARDINALITY_FACTOR = 2.0


def cardinality_alert(true_per_text: float, predicted_per_text: float) -> str | None:
    """A warning when a model gives texts far more (or far fewer) labels than they carry, else None."""
    if true_per_text <= 0:
        return None
    ratio = predicted_per_text / true_per_text
    if 1 / CARDINALITY_FACTOR <= ratio <= CARDINALITY_FACTOR:
        return None
    return (
        f"the model gives {predicted_per_text:.2f} labels per text where the texts carry {true_per_text:.2f} "
        f"({ratio:.1f}x): its thresholds {'over' if ratio > 1 else 'under'}-predict; see the per-label table"
    )


def decide(
    probs: torch.Tensor | np.ndarray, thresholds: Thresholds, at_least_one: bool = False
) -> torch.Tensor:
    """The labels each text gets (a bool matrix): those whose probability reaches their threshold.

    With `at_least_one`, a text where no label passes gets its highest-scoring label.
    """
    probs = torch.as_tensor(probs)
    chosen = probs >= torch.tensor(thresholds.values, dtype=probs.dtype, device=probs.device)
    if at_least_one:
        rows = (~chosen.any(-1)).nonzero().squeeze(1)
        chosen[rows, probs[rows].argmax(-1)] = True
    return chosen
