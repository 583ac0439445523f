"""Baselines on exactly the fine-tuning splits, so a fine-tuned model has something to beat.

- `tfidf_logreg`, `tfidf_nb`: word 1-2 gram TF-IDF + logistic regression / multinomial naive Bayes.
- `frozen_encoder`: the backbone's mean-pooled sentence embeddings + logistic regression (features
  from a pretrained model, the encoder never trained).
- `zero_shot`: the same embeddings compared with embeddings of a description of each label; no
  labelled example is used at all.
- `zero_shot_nli`: transformers' zero-shot-classification pipeline, when an NLI model is named.

They read the data through TextClassificationData (same files, cleaning, split, sample and seed as
`fit`); the trained ones pick their one hyper-parameter on the validation split; all are evaluated on
the test split, with the same report files as `test` (textcls/report/). The data's task says how:
the trained ones pick a hyper-parameter (textcls/baseline/trained.py) or, for label sets, become
one-vs-rest classifiers with per-label thresholds tuned on validation
(textcls/baseline/one_vs_rest.py), where the zero-shot ones (textcls/baseline/zero_shot.py) are skipped.
"""

import json
import time
from pathlib import Path

import numpy as np

from textcls.baseline.embeddings import SentenceEncoder
from textcls.baseline.pairs import combine, cosine_scores, pair_tfidf_features
from textcls.baseline.trained import CLASSIFIERS, vectorizer
from textcls.baseline.zero_shot import zero_shot, zero_shot_nli
from textcls.checks.outputs import ROWS_FILE
from textcls.data import SPLITS, DataError, TextClassificationData
from textcls.report import compose_report
from textcls.tasks import Task, task_for

METHODS = ("tfidf_logreg", "tfidf_nb", "frozen_encoder", "zero_shot", "zero_shot_nli")


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
    task = task_for(data.hparams, labels, label_separator=data.hparams.label_separator)
    methods = runnable(options.methods, task, "text_pair" in frames["train"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ROWS_FILE).write_text(json.dumps({s: f["row"].tolist() for s, f in frames.items()}))
    run = BaselineRun(data, folder, task)
    for key in ("tfidf_logreg", "tfidf_nb"):
        if key in methods:
            features = pair_tfidf_features(run.texts, run.pairs) if run.pairs else tfidf_features(run.texts)
            run.trained(key, *features)
    if "frozen_encoder" in methods or "zero_shot" in methods:
        embedding_baselines(run, methods, descriptions, options.embedding_batch_size)
    if "zero_shot_nli" in methods and options.nli_model:
        run.report("zero_shot_nli", *zero_shot_nli(options.nli_model, run.texts["test"], descriptions), task)
    return run.results


def runnable(methods: list[str], task: Task, pairs: bool) -> list[str]:
    """The methods that run on the task's data (of `pairs` of texts or not); each one skipped is
    printed with the reason."""
    kept = []
    for method in methods:
        reason = task.baseline_skips(method, pairs)
        if reason:
            print(f"{method}: skipped, {reason}")
        else:
            kept.append(method)
    return kept


class BaselineRun:
    """One run of baselines on `data`: its texts and targets per split, and each baseline's report
    (written under `folder`, its test metrics kept in `results`)."""

    def __init__(self, data: TextClassificationData, folder: Path, task: Task):
        frames, labels = data.frames, task.label_names
        self.data, self.folder, self.task, self.results = data, folder, task, {}
        self.test = frames["test"]
        self.texts = {split: frame["text"].tolist() for split, frame in frames.items()}
        self.pairs = (
            {s: f["text_pair"].tolist() for s, f in frames.items()} if "text_pair" in self.test else None
        )
        self.y = {split: task.targets(frame["label"], labels) for split, frame in frames.items()}
        self.common = {
            "splits": {
                s: dict(zip(labels, data.class_counts(s), strict=True)) for s in SPLITS if s in frames
            },
            "split_rows": {s: len(frames[s]) for s in SPLITS if s in frames},
            "hyperparameters": {"seed": data.hparams.seed, "train_sample": data.hparams.train_sample},
        }

    def trained(self, key: str, x: dict, features: str, start: float) -> None:
        """Fit the trained baseline `key` on the features `x` (per split) as the task says, and report it."""
        seed = self.data.hparams.seed
        self.report(key, *self.task.fit_baseline(CLASSIFIERS[key], x, self.y, seed, features, start))

    def report(self, key: str, probs: np.ndarray, info: dict, task: Task) -> None:
        """Write baseline `key`'s test report, `task` deciding from `probs`; print its scores."""
        info = {
            **self.common,
            **info,
            "hyperparameters": {**self.common["hyperparameters"], **info.pop("settings", {})},
        }
        metrics, _ = compose_report(self.folder / key, task, self.test, probs, info)
        self.results[key] = metrics
        print(
            f"{info['model']}: test {task.baseline_summary(metrics)} ({info['train_seconds']:.1f} s); "
            f"report in {self.folder / key}"
        )


def tfidf_features(texts: dict[str, list[str]]) -> tuple[dict, str, float]:
    """TF-IDF features per split, fitted on train: (features, what they are, when the work started)."""
    start = time.perf_counter()
    tfidf = vectorizer()
    x = {"train": tfidf.fit_transform(texts["train"])}
    x.update({s: tfidf.transform(texts[s]) for s in ("validation", "test")})
    return x, f"Word 1-2 gram TF-IDF (sublinear tf, {len(tfidf.vocabulary_)} features)", start


def embedding_baselines(
    run: BaselineRun, methods: list[str], descriptions: list[str], batch_size: int
) -> None:
    """`zero_shot` and `frozen_encoder`, on the backbone's sentence embeddings (the test texts' computed once)."""
    hp = run.data.hparams
    encoder = SentenceEncoder(hp.model_name_or_path, hp.max_length, batch_size, hp.trust_remote_code)
    backbone = Path(str(hp.model_name_or_path)).name
    if run.pairs:
        pair_embedding_baselines(run, methods, encoder, backbone)
        return
    start = time.perf_counter()
    test_embeddings = encoder.encode(run.texts["test"])  # once, for both
    test_seconds = time.perf_counter() - start
    if "zero_shot" in methods:
        args = (encoder, test_embeddings, test_seconds, descriptions, backbone)
        run.report("zero_shot", *zero_shot(*args), run.task)
    if "frozen_encoder" in methods:
        start = time.perf_counter() - test_seconds
        x = {split: encoder.encode(run.texts[split]) for split in ("train", "validation")}
        x["test"] = test_embeddings
        features = (
            f"Mean-pooled {backbone} embeddings ({x['train'].shape[1]} dimensions, encoder not trained)"
        )
        run.trained("frozen_encoder", x, features, start)


def pair_embedding_baselines(
    run: BaselineRun, methods: list[str], encoder: SentenceEncoder, backbone: str
) -> None:
    """For pairs: `frozen_encoder` on `[u, v, u*v, |u-v|]` of the two texts' embeddings, and `zero_shot`,
    the cosine of the two embeddings (the similarity-score baseline; the task skips it otherwise)."""
    start = time.perf_counter()
    splits = ("test",) if "frozen_encoder" not in methods else ("train", "validation", "test")
    u = {s: encoder.encode(run.texts[s]) for s in splits}
    v = {s: encoder.encode(run.pairs[s]) for s in splits}
    if "zero_shot" in methods:
        info = {
            "model": f"zero-shot {backbone} (cosine of the two texts)",
            "description": f"No labelled data used: the cosine similarity of the pair's mean-pooled {backbone} "
            "embeddings, mapped from [0, 1] onto the training targets' range.",
            "train_seconds": time.perf_counter() - start,
        }
        run.report("zero_shot", cosine_scores(u["test"], v["test"], run.y["train"]), info, run.task)
    if "frozen_encoder" in methods:
        x = {s: combine(u[s], v[s]) for s in splits}
        features = (
            f"Mean-pooled {backbone} embeddings of each text ({u['train'].shape[1]} dimensions, encoder not "
            "trained), with their product and absolute difference"
        )
        run.trained("frozen_encoder", x, features, start)
