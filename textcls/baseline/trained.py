"""The trained baselines: TF-IDF features (`vectorizer`) and the classifiers fitted on them or on frozen
sentence embeddings (`CLASSIFIERS`), each with the one hyper-parameter it tries; for one label per
text, the value with the best validation macro F1 is kept (`select_on_validation`). For label sets
the same classifiers become one-vs-rest (textcls/baseline/one_vs_rest.py)."""

import time
from collections.abc import Callable

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB

from textcls.metrics import f1_macro

# name -> (title, the classifier for one value of its hyper-parameter, that parameter, values tried)
CLASSIFIERS: dict[str, tuple[str, Callable, str, tuple]] = {
    "tfidf_logreg": (
        "TF-IDF + logistic regression",
        lambda c, seed: LogisticRegression(C=c, max_iter=3000, random_state=seed),
        "C",
        (0.25, 1.0, 4.0, 16.0),
    ),
    "tfidf_nb": (
        "TF-IDF + multinomial naive Bayes",
        lambda alpha, seed: MultinomialNB(alpha=alpha),
        "alpha",
        (0.01, 0.03, 0.1, 0.3, 1.0),
    ),
    "frozen_encoder": (
        "frozen encoder + logistic regression",
        lambda c, seed: LogisticRegression(C=c, max_iter=3000, random_state=seed),
        "C",
        (0.25, 1.0, 4.0, 16.0),
    ),
}


def vectorizer() -> TfidfVectorizer:
    """Word uni- and bigrams, sublinear term frequency."""
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)


def select_on_validation(
    classifier: tuple, x: dict, y: dict, n_labels: int, seed: int, features: str, start: float
) -> tuple[np.ndarray, dict]:
    """Fit the classifier for each value of its hyper-parameter, keep the best on validation macro F1.

    Args:
        classifier: (title, make(value, seed), parameter name, values tried), as in `CLASSIFIERS`.
        x: Features per split (`train`, `validation`, `test`).
        y: Class indices per split.
        n_labels: How many classes there are (classes absent from train keep probability 0).
        seed: The classifier's random state.
        features: What the features are, for the report.
        start: When the work started (`time.perf_counter()`), for the training time.

    Returns:
        The test probabilities (texts x classes) and the report's info.
    """
    title, make, param, grid = classifier
    scores, fitted = {}, {}
    for value in grid:
        fitted[value] = make(value, seed).fit(x["train"], y["train"])
        scores[value] = f1_macro(y["validation"], fitted[value].predict(x["validation"]))
    best = max(grid, key=lambda v: scores[v])  # first of equals: the smallest value tried
    clf = fitted[best]
    train_seconds = time.perf_counter() - start
    probs = np.zeros((x["test"].shape[0], n_labels))  # classes absent from train keep probability 0
    probs[:, clf.classes_] = clf.predict_proba(x["test"])
    info = {
        "model": title,
        "description": f"{features} and {type(clf).__name__} with {param}={best}, chosen on validation macro "
        f"F1 among {', '.join(f'{v}: {scores[v]:.4f}' for v in grid)}.",
        "settings": {param: best},
        "train_seconds": train_seconds,
    }
    return probs, info
