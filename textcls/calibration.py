"""Calibrated confidences: temperature scaling, calibration error, and the cut-off for a target precision.

Fine-tuned transformers are over-confident (Guo et al. 2017): their top softmax probability is higher
than the share of such predictions that are right. Temperature scaling divides the logits by one
scalar T, fitted after training on the validation split by minimising its negative log-likelihood;
T > 1 softens, T < 1 sharpens, and the most probable class never changes. A validation split with
fewer than `MIN_MISTAKES` wrong predictions cannot support a temperature (with none, the likelihood
keeps rising as T falls, so T runs to its lower bound and a top probability of 0.4 becomes 0.9997):
it keeps T = 1, the raw softmax, and `Calibration.note` says why.

The validation split also turns a target precision into a decision: `cutoff_for_precision` picks
the smallest confidence cut-off whose kept validation predictions reach the target, so the kept
predictions cover as many texts as the target allows. The validation (confidence, correct) pairs are
stored with the temperature (`Calibration`), so any target can be asked for at prediction time.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

ECE_BINS = 15
DEFAULT_TARGET_PRECISION = 0.95  # reported by the test report when no target is given
# bounds: a validation split the model separates perfectly has no finite optimum
MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-2, 1e2
# Fewer wrong validation predictions than this keep T = 1: with none T has no finite optimum, and with
# a few it is set by those few rows alone (as tuned multi-label thresholds need 5 positives).
MIN_MISTAKES = 5


@dataclass
class Calibration:
    """A model's temperature and its validation predictions' calibrated confidences and correctness.

    Stored in checkpoints (`checkpoint["calibration"]`) and exported folders (`calibration.json`).

    Args:
        temperature: Logits are divided by this before the softmax (1 = raw softmax).
        confidence: Calibrated top probability of each validation prediction.
        correct: Whether each validation prediction was right.
        target_precision: A target chosen at export, whose cut-off the web app applies by default.
        note: Why the temperature is 1 although calibration was asked for (too few validation
            mistakes to fit one); None otherwise.
    """

    temperature: float = 1.0
    confidence: np.ndarray | None = None
    correct: np.ndarray | None = None
    target_precision: float | None = None
    note: str | None = None

    @classmethod
    def from_dict(cls, state: dict | None) -> "Calibration | None":
        if not state:
            return None
        confidence, correct = state.get("confidence"), state.get("correct")
        return cls(
            float(state.get("temperature", 1.0)),
            None if confidence is None else np.asarray(confidence, dtype=np.float64),
            None if correct is None else np.asarray(correct, dtype=bool),
            state.get("target_precision"),
            state.get("temperature_note"),
        )

    def to_dict(self, tensors: bool = True) -> dict:
        """For a checkpoint (tensors) or JSON (lists)."""
        out: dict = {"temperature": self.temperature}
        if self.confidence is not None:
            conf, ok = self.confidence.astype(np.float32), self.correct.astype(bool)
            out["confidence"] = torch.from_numpy(conf) if tensors else conf.tolist()
            out["correct"] = torch.from_numpy(ok) if tensors else ok.tolist()
        if self.target_precision is not None:
            out["target_precision"] = self.target_precision
        if self.note is not None:
            out["temperature_note"] = self.note
        return out

    def cutoff(self, target: float) -> tuple[float, float, float] | None:
        """(cut-off, validation precision, validation coverage) for `target`; None when unreachable."""
        if self.confidence is None or not len(self.confidence):
            return None
        return cutoff_for_precision(self.confidence, self.correct, target)


def calibrated_probs(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """softmax(logits / T) in fp32: the probabilities every textcls output shows."""
    return (logits.float() / temperature).softmax(-1)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100) -> float:
    """The T minimising the negative log-likelihood of `labels` under softmax(logits / T).

    LBFGS on log T (T stays positive), in float64, from T = 1; clamped to [0.01, 100]. Without
    wrong predictions it runs to 0.01: `calibrate` does not ask it then.
    """
    logits, labels = logits.detach().double().cpu(), labels.detach().long().cpu()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    t = math.exp(log_t.item())
    return float(min(max(t, MIN_TEMPERATURE), MAX_TEMPERATURE)) if math.isfinite(t) else 1.0


def too_few_mistakes(mistakes: int, rows: int) -> str | None:
    """Why `rows` validation predictions with `mistakes` wrong cannot support a temperature; None
    when they can."""
    if mistakes >= MIN_MISTAKES:
        return None
    return f"{mistakes} of {rows} validation predictions are wrong, fewer than the {MIN_MISTAKES} a temperature needs"


def calibrate(logits: torch.Tensor, labels: torch.Tensor, fit: bool = True) -> Calibration:
    """The calibration of a model from its validation logits: the temperature (when `fit`, and the
    split has `MIN_MISTAKES` wrong predictions; else 1, with a note when `fit`), and each row's
    calibrated confidence and correctness."""
    logits, labels = logits.detach().float().cpu(), labels.detach().long().cpu()
    correct = logits.argmax(-1) == labels
    note = too_few_mistakes(int((~correct).sum()), len(labels)) if fit else None
    temperature = fit_temperature(logits, labels) if fit and note is None else 1.0
    confidence = calibrated_probs(logits, temperature).max(-1).values
    return Calibration(temperature, confidence.numpy(), correct.numpy(), note=note)


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Top-label ECE: sum over `n_bins` equal-width confidence bins of |accuracy - mean confidence|,
    weighted by the bin's share of rows (torchmetrics' MulticlassCalibrationError, norm l1)."""
    probs = torch.tensor(np.asarray(probs), dtype=torch.float64)  # a copy: the input may be read-only
    target = torch.tensor(np.asarray(y_true), dtype=torch.long)
    return float(multiclass_calibration_error(probs, target, probs.shape[1], n_bins=n_bins, norm="l1"))


def brier_score(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Multi-class Brier score: the squared distance to the one-hot label, summed over classes, averaged
    over rows (0 is perfect, 2 the worst)."""
    onehot = np.eye(probs.shape[1])[np.asarray(y_true)]
    return float(((np.asarray(probs, dtype=np.float64) - onehot) ** 2).sum(1).mean())


def precision_coverage(confidence: np.ndarray, correct: np.ndarray) -> dict[str, np.ndarray]:
    """For each distinct confidence c (descending): the precision and coverage of the predictions with
    confidence >= c."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=bool)
    order = np.argsort(-confidence, kind="stable")
    conf, ok = confidence[order], correct[order]
    kept = np.arange(1, len(conf) + 1)
    last_of_tie = np.r_[conf[1:] != conf[:-1], True]
    return {
        "cutoff": conf[last_of_tie],
        "precision": (np.cumsum(ok) / kept)[last_of_tie],
        "coverage": (kept / max(len(conf), 1))[last_of_tie],
    }


def cutoff_for_precision(
    confidence: np.ndarray, correct: np.ndarray, target: float
) -> tuple[float, float, float] | None:
    """The smallest cut-off whose kept predictions (confidence >= cut-off) reach precision `target`,
    with their precision and coverage; None when no cut-off does."""
    curve = precision_coverage(confidence, correct)
    reached = np.nonzero(curve["precision"] >= target)[0]
    if not len(reached):
        return None
    i = reached[-1]  # cut-offs descend: the last one reaching the target keeps the most predictions
    return float(curve["cutoff"][i]), float(curve["precision"][i]), float(curve["coverage"][i])


def kept_precision_coverage(
    probs: np.ndarray, y_true: np.ndarray, cutoff: float
) -> tuple[float | None, float]:
    """Precision (None when nothing is kept) and coverage of the predictions with confidence >= `cutoff`."""
    keep = probs.max(1) >= cutoff
    correct = probs.argmax(1) == np.asarray(y_true)
    precision = float(correct[keep].mean()) if keep.any() else None
    return precision, float(keep.mean())


def calibration_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    raw_probs: np.ndarray,
    calibration: Calibration,
    target: float,
) -> dict:
    """The test report's calibration entries: ECE and Brier score before and after scaling, the
    temperature, and precision/coverage on these rows at the validation cut-off for `target`."""
    out = {
        "ece_uncalibrated": expected_calibration_error(raw_probs, y_true),
        "brier_uncalibrated": brier_score(raw_probs, y_true),
        "temperature": calibration.temperature,
        "target_precision": target,
    }
    if calibration.note:
        out["temperature_note"] = calibration.note
    chosen = calibration.cutoff(target)
    if chosen is None:
        out.update(cutoff=None, precision_at_cutoff=None, coverage_at_cutoff=None)
    else:
        precision, coverage = kept_precision_coverage(probs, y_true, chosen[0])
        out.update(cutoff=chosen[0], precision_at_cutoff=precision, coverage_at_cutoff=coverage)
        out.update(val_coverage_at_cutoff=chosen[2])
    return out


def cutoff_message(calibration: Calibration | None, target: float) -> tuple[float, str]:
    """The cut-off for `target` and one line saying what it does (0 and why, when none reaches it)."""
    if calibration is None or calibration.confidence is None:
        return 0.0, (
            f"target precision {target}: this model carries no validation predictions to choose a cut-off "
            "from (train it with this textcls version); keeping every prediction"
        )
    chosen = calibration.cutoff(target)
    if chosen is None:
        best = precision_coverage(calibration.confidence, calibration.correct)["precision"].max()
        return 0.0, (
            f"target precision {target}: no confidence cut-off reaches it on the validation split (the best "
            f"is {best:.3f}); keeping every prediction"
        )
    cutoff, precision, coverage = chosen
    return cutoff, (
        f"target precision {target}: confidence cut-off {cutoff:.4f} (validation precision {precision:.3f}, "
        f"coverage {coverage:.1%}); predictions below it are UNCERTAIN"
    )


# ----------------------------------------------------------------------------- figures


def plot_reliability(y_true: np.ndarray, probs: np.ndarray, raw_probs: np.ndarray, title: str):
    """Reliability diagram: accuracy against mean confidence per confidence bin, before and after scaling."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    edges = np.linspace(0, 1, ECE_BINS + 1)
    for p, name, marker in ((raw_probs, "uncalibrated", "s"), (probs, "calibrated", "o")):
        conf, ok = p.max(1), p.argmax(1) == y_true
        bins = np.clip(np.digitize(conf, edges) - 1, 0, ECE_BINS - 1)
        used = [b for b in range(ECE_BINS) if (bins == b).any()]
        ax.plot(
            [conf[bins == b].mean() for b in used],
            [ok[bins == b].mean() for b in used],
            marker=marker,
            label=f"{name} (ECE {expected_calibration_error(p, y_true):.3f})",
        )
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean confidence in bin", ylabel="accuracy in bin", title=title)
    ax.legend(loc="upper left")
    return fig


def plot_precision_coverage(
    y_true: np.ndarray, probs: np.ndarray, calibration: Calibration, target: float, title: str
):
    """Precision against coverage as the cut-off rises, on the test rows and the validation rows."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.add_subplot()
    test = precision_coverage(probs.max(1), probs.argmax(1) == y_true)
    ax.plot(test["coverage"], test["precision"], label="test")
    if calibration.confidence is not None:
        val = precision_coverage(calibration.confidence, calibration.correct)
        ax.plot(val["coverage"], val["precision"], alpha=0.7, label="validation")
    ax.axhline(target, color="grey", ls=":", lw=1, label=f"target {target}")
    chosen = calibration.cutoff(target)
    if chosen is not None:
        precision, coverage = kept_precision_coverage(probs, y_true, chosen[0])
    if chosen is not None and precision is not None:
        ax.plot([coverage], [precision], "ko", label=f"test at cut-off {chosen[0]:.3f}")
    ax.set(xlim=(0, 1.02), xlabel="coverage (share of texts kept)", ylabel="precision of kept predictions")
    ax.set_title(title)
    ax.legend(loc="lower left")
    return fig
