"""The trained baselines of a regression: ridge regression on the same features as the classifiers
(TF-IDF, frozen embeddings), its strength chosen on validation Pearson."""

import time

import numpy as np
from scipy.stats import pearsonr
from sklearn.linear_model import Ridge

ALPHAS = (0.1, 1.0, 10.0, 100.0)


def select_ridge(
    classifier: tuple, x: dict, y: dict, seed: int, features: str, start: float
) -> tuple[np.ndarray, dict]:
    """Fit ridge regression for each alpha; keep the best on validation Pearson.

    Args:
        classifier: The classifier this baseline stands in for, as in `CLASSIFIERS` (its title).
        x: Features per split (`train`, `validation`, `test`).
        y: Targets per split.
        seed: Unused by ridge (closed form); kept for the classifiers' signature.
        features: What the features are, for the report.
        start: When the work started (`time.perf_counter()`), for the training time.

    Returns:
        The test scores, shape (texts, 1), and the report's info.
    """
    title = classifier[0].replace("logistic regression", "ridge regression")
    fitted, scores = {}, {}
    for alpha in ALPHAS:
        fitted[alpha] = Ridge(alpha=alpha).fit(x["train"], y["train"])
        scores[alpha] = float(pearsonr(y["validation"], fitted[alpha].predict(x["validation"]))[0])
    best = max(ALPHAS, key=lambda a: np.nan_to_num(scores[a], nan=-1.0))
    predicted = fitted[best].predict(x["test"])[:, None]
    info = {
        "model": title,
        "description": f"{features} and Ridge with alpha={best}, chosen on validation Pearson among "
        f"{', '.join(f'{a}: {scores[a]:.4f}' for a in ALPHAS)}.",
        "settings": {"alpha": best},
        "train_seconds": time.perf_counter() - start,
    }
    return predicted, info
