"""Baselines on exactly the fine-tuning splits: TF-IDF + logistic regression, TF-IDF + naive Bayes.

They read the data through TextClassificationData (same files, cleaning, split, sample and seed as
`fit`), pick their one hyper-parameter on the validation split, and are evaluated on the test split,
with the same report files as `test` (textcls/report.py).
"""

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB

from textcls.checks import ROWS_FILE
from textcls.data import SPLITS, DataError, TextClassificationData
from textcls.metrics import f1_macro
from textcls.report import write_report

# name -> (title, the classifier for one value of its hyper-parameter, that parameter, values tried)
BASELINES: dict[str, tuple[str, Callable, str, tuple]] = {
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
}


def vectorizer() -> TfidfVectorizer:
    """Word uni- and bigrams, sublinear term frequency."""
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)


def run_baselines(data: TextClassificationData, folder: Path) -> dict[str, dict]:
    """Train, select on validation and test every baseline; write each one's report under `folder`.

    Returns:
        Each baseline's test metrics, by name.
    """
    frames = data.frames
    missing = [s for s in ("train", "validation", "test") if s not in frames]
    if missing:
        raise DataError(f"baselines need train, validation and test data; missing: {', '.join(missing)}")
    labels = data.label_names
    index = {name: i for i, name in enumerate(labels)}
    y = {split: frames[split]["label"].map(index).to_numpy() for split in frames}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ROWS_FILE).write_text(json.dumps({s: f["row"].tolist() for s, f in frames.items()}))
    splits = {s: dict(zip(labels, data.class_counts(s), strict=True)) for s in SPLITS if s in frames}
    results = {}
    for key, (title, make, param, grid) in BASELINES.items():
        start = time.perf_counter()
        tfidf = vectorizer()
        x_train = tfidf.fit_transform(frames["train"]["text"])
        x_val = tfidf.transform(frames["validation"]["text"])
        scores, fitted = {}, {}
        for value in grid:
            clf = make(value, data.hparams.seed).fit(x_train, y["train"])
            scores[value] = f1_macro(y["validation"], clf.predict(x_val))
            fitted[value] = clf
        best = max(grid, key=lambda v: scores[v])  # first of equals: the smallest value tried
        train_seconds = time.perf_counter() - start
        clf = fitted[best]
        probs = np.zeros((len(frames["test"]), len(labels)))
        probs[:, clf.classes_] = clf.predict_proba(tfidf.transform(frames["test"]["text"]))
        info = {
            "model": title,
            "description": f"Word 1-2 gram TF-IDF (sublinear tf, {len(tfidf.vocabulary_)} features) and "
            f"{type(clf).__name__} with {param}={best}, chosen on validation macro F1 among "
            f"{', '.join(f'{v}: {scores[v]:.4f}' for v in grid)}.",
            "hyperparameters": {
                param: best,
                "seed": data.hparams.seed,
                "train_sample": data.hparams.train_sample,
            },
            "splits": splits,
            "train_seconds": train_seconds,
        }
        metrics, _ = write_report(folder / key, frames["test"], probs, labels, info)
        results[key] = metrics
        print(
            f"{title}: test accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['f1_macro']:.4f} "
            f"({param}={best}, {train_seconds:.1f} s); report in {folder / key}"
        )
    return results
