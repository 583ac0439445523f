"""Baseline features for pairs of texts, and the zero-shot baseline of similarity scores.

A pair's features are each text's features with their element-wise product and absolute difference
(`[u, v, u*v, |u-v|]`, as InferSent and Sentence-BERT's classification objective combine two sentence
vectors): the product shows what the two share, the difference what one has and the other lacks.
`cosine_scores` is the classic STS baseline: the cosine similarity of the two texts' embeddings, no
labelled example used.
"""

import time

import numpy as np
from scipy import sparse

from textcls.baseline.trained import vectorizer


def combine(u, v):
    """`[u, v, u*v, |u-v|]` of two feature matrices (sparse TF-IDF or dense embeddings)."""
    if sparse.issparse(u):
        return sparse.hstack([u, v, u.multiply(v), abs(u - v)]).tocsr()
    return np.hstack([u, v, u * v, np.abs(u - v)])


def pair_tfidf_features(texts: dict[str, list[str]], pairs: dict[str, list[str]]) -> tuple[dict, str, float]:
    """TF-IDF of each text of each pair (one vocabulary, fitted on both sides of train), combined."""
    start = time.perf_counter()
    tfidf = vectorizer().fit(texts["train"] + pairs["train"])
    x = {split: combine(tfidf.transform(texts[split]), tfidf.transform(pairs[split])) for split in texts}
    what = (
        f"Word 1-2 gram TF-IDF of each text (sublinear tf, {len(tfidf.vocabulary_)} features), "
        "with their product and absolute difference"
    )
    return x, what, start


def cosine_scores(u: np.ndarray, v: np.ndarray, train_targets: np.ndarray) -> np.ndarray:
    """The cosine of each pair's unit-length embeddings, mapped linearly from [0, 1] onto the training
    targets' range (so MSE and MAE are in the target's units; Pearson and Spearman do not change)."""
    cosine = (u * v).sum(1)
    low, high = float(np.min(train_targets)), float(np.max(train_targets))
    return (low + cosine * (high - low))[:, None]
