"""Baselines on exactly the fine-tuning splits, so a fine-tuned model has something to beat.

- `tfidf_logreg`, `tfidf_nb`: word 1-2 gram TF-IDF + logistic regression / multinomial naive Bayes.
- `frozen_encoder`: the backbone's mean-pooled sentence embeddings + logistic regression (features
  from a pretrained model, the encoder never trained).
- `zero_shot`: the same embeddings compared with embeddings of a description of each label; no
  labelled example is used at all.
- `zero_shot_nli`: transformers' zero-shot-classification pipeline, when an NLI model is named.

They read the data through TextClassificationData (same files, cleaning, split, sample and seed as
`fit`); the trained ones pick their one hyper-parameter on the validation split; all are evaluated on
the test split, with the same report files as `test` (textcls/report.py). For multi-label data the
trained ones become one-vs-rest classifiers with per-label thresholds tuned on validation
(textcls/baseline_multilabel.py); the zero-shot ones are skipped.
"""

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB

from textcls.baseline_multilabel import SINGLE_LABEL_ONLY, select_multi_label
from textcls.checks import ROWS_FILE
from textcls.data import SPLITS, DataError, TextClassificationData
from textcls.data.multilabel import multi_hot
from textcls.embeddings import SentenceEncoder
from textcls.metrics import f1_macro
from textcls.report import compose_report
from textcls.report.multi_label import FIXED_THRESHOLD
from textcls.tasks import task_for

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
METHODS = ("tfidf_logreg", "tfidf_nb", "frozen_encoder", "zero_shot", "zero_shot_nli")
# cosine similarities are sharpened into probabilities with the scale sentence-transformers trains
# its embedding models with (MultipleNegativesRankingLoss, scale 20): a fixed choice, not fitted
ZERO_SHOT_SCALE = 20.0


class Baselines:
    """Which baselines `textcls baseline` runs and how.

    Args:
        methods: Baselines to run, from tfidf_logreg, tfidf_nb, frozen_encoder, zero_shot,
            zero_shot_nli (which also needs `nli_model`).
        label_descriptions: A sentence describing each label, for the zero-shot baselines (label name
            -> sentence); labels not listed are described by their name, underscores as spaces.
        nli_model: An NLI model (folder or hub id, e.g. facebook/bart-large-mnli) for zero_shot_nli;
            it runs only when this is given.
        embedding_batch_size: Texts per forward pass when embedding with the backbone.
    """

    def __init__(
        self,
        methods: list[str] = ["tfidf_logreg", "tfidf_nb", "frozen_encoder", "zero_shot", "zero_shot_nli"],  # noqa: B006
        label_descriptions: dict[str, str] | None = None,
        nli_model: str | None = None,
        embedding_batch_size: int = 64,
    ):
        unknown = sorted(set(methods) - set(METHODS))
        if unknown:
            raise DataError(
                f"unknown baseline.methods {', '.join(unknown)}: choose from {', '.join(METHODS)}"
            )
        self.methods, self.label_descriptions = list(methods), dict(label_descriptions or {})
        self.nli_model, self.embedding_batch_size = nli_model, embedding_batch_size

    def descriptions(self, labels: list[str]) -> list[str]:
        """One description per label, in label order."""
        unknown = sorted(set(self.label_descriptions) - set(labels))
        if unknown:
            raise DataError(
                f"baseline.label_descriptions names labels the data does not have: {', '.join(unknown)} "
                f"(the labels are {', '.join(labels)})"
            )
        return [self.label_descriptions.get(name, name.replace("_", " ")) for name in labels]


def vectorizer() -> TfidfVectorizer:
    """Word uni- and bigrams, sublinear term frequency."""
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)


def run_baselines(
    data: TextClassificationData, folder: Path, options: Baselines | None = None
) -> dict[str, dict]:
    """Run every chosen baseline on the data's splits; write each one's report under `folder`.

    Returns:
        Each baseline's test metrics, by name.
    """
    options = options or Baselines()
    frames = data.frames
    missing = [s for s in ("train", "validation", "test") if s not in frames]
    if missing:
        raise DataError(f"baselines need train, validation and test data; missing: {', '.join(missing)}")
    labels = data.label_names
    descriptions = options.descriptions(labels)  # refuses unknown labels before any work
    multi_label = bool(data.hparams.multi_label)
    if multi_label:
        y = {split: multi_hot(frames[split]["label"].tolist(), labels).astype(int) for split in frames}
        for key in (m for m in options.methods if m in SINGLE_LABEL_ONLY):
            print(f"{key}: skipped, it gives one label per text and this data is multi-label")
    else:
        index = {name: i for i, name in enumerate(labels)}
        y = {split: frames[split]["label"].map(index).to_numpy() for split in frames}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ROWS_FILE).write_text(json.dumps({s: f["row"].tolist() for s, f in frames.items()}))
    common = {
        "splits": {s: dict(zip(labels, data.class_counts(s), strict=True)) for s in SPLITS if s in frames},
        "split_rows": {s: len(frames[s]) for s in SPLITS if s in frames},
        "hyperparameters": {"seed": data.hparams.seed, "train_sample": data.hparams.train_sample},
    }
    results = {}

    def report(key: str, probs: np.ndarray, info: dict, thresholds=None) -> None:
        info = {
            **common,
            **info,
            "hyperparameters": {**common["hyperparameters"], **info.pop("settings", {})},
        }
        if multi_label:
            separator = data.hparams.label_separator
            task = task_for(data.hparams, labels, thresholds=thresholds, label_separator=separator)
            metrics, _ = compose_report(folder / key, task, frames["test"], probs, info)
            fixed = metrics[f"at_threshold_{FIXED_THRESHOLD}"]["f1_macro"]
            scores = (
                f"macro F1 {metrics['f1_macro']:.4f} at thresholds tuned on validation ({fixed:.4f} at "
                f"{FIXED_THRESHOLD}), micro F1 {metrics['f1_micro']:.4f}"
            )
        else:
            metrics, _ = compose_report(
                folder / key, task_for(data.hparams, labels), frames["test"], probs, info
            )
            scores = f"accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['f1_macro']:.4f}"
        results[key] = metrics
        print(f"{info['model']}: test {scores} ({info['train_seconds']:.1f} s); report in {folder / key}")

    def select(key: str, x: dict, features: str, start: float) -> tuple:
        """The trained baseline `key` on features `x`: (probs, info) or, multi-label, (probs, info, thresholds)."""
        seed = data.hparams.seed
        if multi_label:
            probs, thresholds, info = select_multi_label(CLASSIFIERS[key], x, y, seed, features, start)
            return probs, info, thresholds
        return _select_on_validation(key, x, y, len(labels), seed, features, start)

    texts = {split: frame["text"].tolist() for split, frame in frames.items()}
    for key in ("tfidf_logreg", "tfidf_nb"):
        if key in options.methods:
            start = time.perf_counter()
            tfidf = vectorizer()
            x = {"train": tfidf.fit_transform(texts["train"])}
            x.update({s: tfidf.transform(texts[s]) for s in ("validation", "test")})
            features = f"Word 1-2 gram TF-IDF (sublinear tf, {len(tfidf.vocabulary_)} features)"
            report(key, *select(key, x, features, start))
    zero_shot = "zero_shot" in options.methods and not multi_label
    if "frozen_encoder" in options.methods or zero_shot:
        encoder = SentenceEncoder(
            data.hparams.model_name_or_path,
            data.hparams.max_length,
            options.embedding_batch_size,
            data.hparams.trust_remote_code,
        )
        backbone = Path(str(data.hparams.model_name_or_path)).name
        start = time.perf_counter()
        test_embeddings = encoder.encode(texts["test"])  # once, for both
        test_seconds = time.perf_counter() - start
        if zero_shot:
            report("zero_shot", *_zero_shot(encoder, test_embeddings, test_seconds, descriptions, backbone))
        if "frozen_encoder" in options.methods:
            start = time.perf_counter() - test_seconds
            x = {split: encoder.encode(texts[split]) for split in ("train", "validation")}
            x["test"] = test_embeddings
            features = (
                f"Mean-pooled {backbone} embeddings ({x['train'].shape[1]} dimensions, encoder not trained)"
            )
            report("frozen_encoder", *select("frozen_encoder", x, features, start))
    if "zero_shot_nli" in options.methods and options.nli_model and not multi_label:
        report("zero_shot_nli", *_zero_shot_nli(options.nli_model, texts["test"], descriptions))
    return results


def _select_on_validation(
    key: str, x: dict, y: dict, n_labels: int, seed: int, features: str, start: float
) -> tuple:
    """Fit the classifier for each value of its hyper-parameter, keep the best on validation macro F1."""
    title, make, param, grid = CLASSIFIERS[key]
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


def _zero_shot(
    encoder: SentenceEncoder, embeddings: np.ndarray, seconds: float, descriptions: list[str], backbone: str
) -> tuple:
    """The label whose description's embedding is most similar (cosine) to the text's embedding."""
    start = time.perf_counter() - seconds  # the texts' embedding time counts
    similarity = embeddings @ encoder.encode(descriptions).T
    logits = ZERO_SHOT_SCALE * similarity
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    info = {
        "model": f"zero-shot {backbone} (label descriptions)",
        "description": "No labelled data used: each text gets the label whose description is most similar "
        f"(cosine of mean-pooled {backbone} embeddings; probabilities: softmax of {ZERO_SHOT_SCALE:g} x "
        "cosine). Descriptions: " + "; ".join(descriptions) + ".",
        "settings": {"label_descriptions": descriptions},
        "train_seconds": time.perf_counter() - start,
    }
    return probs, info


def _zero_shot_nli(nli_model: str, texts: list[str], descriptions: list[str]) -> tuple:
    """transformers' zero-shot-classification pipeline: does the text entail "This example is <label>."?"""
    from transformers import pipeline

    from textcls.backbone import resolve_backbone

    start = time.perf_counter()
    classify = pipeline("zero-shot-classification", model=resolve_backbone(nli_model))
    outputs = classify(texts, candidate_labels=descriptions, hypothesis_template="This example is {}.")
    outputs = [outputs] if isinstance(outputs, dict) else outputs
    column = {description: j for j, description in enumerate(descriptions)}
    probs = np.zeros((len(texts), len(descriptions)))
    for i, out in enumerate(outputs):
        for description, score in zip(out["labels"], out["scores"], strict=True):
            probs[i, column[description]] = score
    info = {
        "model": f"zero-shot NLI {Path(nli_model).name}",
        "description": f"No labelled data used: `{nli_model}` scores whether each text entails "
        '"This example is <label description>." (transformers zero-shot-classification pipeline).',
        "settings": {"nli_model": nli_model},
        "train_seconds": time.perf_counter() - start,
    }
    return probs, info
