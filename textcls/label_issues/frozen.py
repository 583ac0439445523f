"""Out-of-fold probabilities from the frozen encoder: each text embedded once (the mean-pooled sentence
embeddings of the frozen-encoder baseline), then one logistic regression per fold, trained on the other
folds and applied to it. Minutes on CPU: the encoder runs once, forward only."""

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from textcls.baseline.embeddings import SentenceEncoder
from textcls.baseline.pairs import combine

# the middle of the frozen-encoder baseline's grid (textcls/baseline/trained.py): unit-length features
C = 4.0


def frozen_probabilities(rows: pd.DataFrame, folds: np.ndarray, data, batch_size: int = 64) -> np.ndarray:
    """Each row's probabilities (rows x labels) from the classifier of the folds it was not in.

    Args:
        rows: The rows (`text`, optional `text_pair`, `label`).
        folds: The fold of each row.
        data: The TextClassificationData: its task, labels, backbone and max_length.
        batch_size: Texts per forward pass of the encoder.
    """
    hp = data.hparams
    encoder = SentenceEncoder(hp.model_name_or_path, hp.max_length, batch_size, hp.trust_remote_code)
    x = encoder.encode(rows["text"].tolist())
    if "text_pair" in rows:  # a pair: [u, v, u*v, |u-v|], as the baseline reads pairs
        x = combine(x, encoder.encode(rows["text_pair"].tolist()))
    n_labels = len(data.label_names)
    targets = data.task.targets(rows["label"], data.label_names)  # class indices, or 0/1 per label
    targets = targets.astype(int)
    out = np.zeros((len(rows), n_labels), dtype=np.float64)
    for k in np.unique(folds):
        train, held_out = folds != k, folds == k
        out[held_out] = fold_classifier(x[train], targets[train], n_labels, hp.seed).predict_proba(
            x[held_out]
        )
    return out


def fold_classifier(x: np.ndarray, y: np.ndarray, n_labels: int, seed: int):
    """A logistic regression on one fold's training rows, with a column for every label even when a
    rare class is missing from them (its probability is then 0)."""
    if y.ndim == 2:
        return OneVsRestClassifier(LogisticRegression(C=C, max_iter=3000, random_state=seed)).fit(x, y)
    clf = LogisticRegression(C=C, max_iter=3000, random_state=seed).fit(x, y)
    return AllClasses(clf, n_labels)


class AllClasses:
    """A fitted classifier whose probabilities have one column per label, in label order."""

    def __init__(self, clf, n_labels: int):
        self.clf, self.n_labels = clf, n_labels

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        probs = np.zeros((len(x), self.n_labels))
        probs[:, self.clf.classes_] = self.clf.predict_proba(x)
        return probs
