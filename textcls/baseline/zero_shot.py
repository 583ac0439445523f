"""The baselines that use no labelled example: each text gets the label whose description it is closest
to, by the cosine of sentence embeddings (`zero_shot`) or by an NLI model's entailment score
(`zero_shot_nli`, transformers' zero-shot-classification pipeline). Both give one label per text."""

import time
from pathlib import Path

import numpy as np

from textcls.baseline.embeddings import SentenceEncoder

# cosine similarities are sharpened into probabilities with the scale sentence-transformers trains
# its embedding models with (MultipleNegativesRankingLoss, scale 20): a fixed choice, not fitted
ZERO_SHOT_SCALE = 20.0


def zero_shot(
    encoder: SentenceEncoder, embeddings: np.ndarray, seconds: float, descriptions: list[str], backbone: str
) -> tuple[np.ndarray, dict]:
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


def zero_shot_nli(nli_model: str, texts: list[str], descriptions: list[str]) -> tuple[np.ndarray, dict]:
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
