"""How an explanation is shown: the shaded HTML (a page, or a fragment for the app), the JSON file of
raw scores, and lines for the terminal; files are written atomically.

Green shades a word that pushes towards the label shown, red one that pushes away from it; the
strength of the colour is the score relative to the text's largest score.
"""

import html
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

METHOD = "Integrated Gradients (Captum LayerIntegratedGradients) on the word embeddings"
TARGET = "the predicted label's logit"
BASELINE = "every token replaced by the pad token, [CLS]/[SEP] (or <s>/</s>) kept"
POSITIVE, NEGATIVE = (22, 163, 74), (220, 38, 38)  # green: towards the label, red: away from it


@dataclass
class WordScore:
    """One word of the text: where it is (character offsets) and its attribution to the label."""

    word: str
    start: int
    end: int
    score: float


@dataclass
class Explanation:
    """The predicted label of one text, its probability, and each word's attribution to that label.

    Args:
        text: The text explained.
        label: The label explained (the predicted one).
        probability: Its probability, calibrated as every textcls output is.
        words: One score per word the model saw, in text order.
        delta: Integrated Gradients' convergence delta: sum of scores minus (logit(text) - logit(baseline)).
        truncated: The text was longer than max_length: the words after the cut have no score.
        true_label: The true label, when known (the test report's mistakes).
    """

    text: str
    label: str
    probability: float
    words: list[WordScore]
    delta: float
    truncated: bool = False
    true_label: str | None = None

    def top(self, k: int, positive: bool = True) -> list[WordScore]:
        """The `k` words pushing most towards (or, with `positive=False`, away from) the label."""
        sign = 1 if positive else -1
        ranked = sorted((w for w in self.words if sign * w.score > 0), key=lambda w: -sign * w.score)
        return ranked[:k]


def _colour(score: float, scale: float) -> str:
    red, green, blue = POSITIVE if score >= 0 else NEGATIVE
    alpha = 0.85 * min(1.0, abs(score) / scale) if scale > 0 else 0.0
    return f"rgba({red}, {green}, {blue}, {alpha:.3f})"


def text_html(explanation: Explanation) -> str:
    """The text with each word shaded by its score (hover: the score); an HTML fragment, inline styles."""
    scale = max((abs(w.score) for w in explanation.words), default=0.0)
    parts, pos, text = [], 0, explanation.text
    for word in sorted(explanation.words, key=lambda w: w.start):
        parts.append(html.escape(text[pos : word.start]))
        parts.append(
            f'<span class="textcls-word" title="{word.score:+.4g}" style="background-color: '
            f'{_colour(word.score, scale)}; border-radius: 3px; padding: 0 1px">'
            f"{html.escape(text[word.start : word.end])}</span>"
        )
        pos = max(pos, word.end)
    rest = text[pos:]
    if rest.strip() and explanation.truncated:
        rest_html = f'<span style="color: #888" title="after max_length: not seen">{html.escape(rest)}</span>'
    else:
        rest_html = html.escape(rest)
    return f'<div class="textcls-why" style="white-space: pre-wrap; line-height: 1.9">{"".join(parts)}{rest_html}</div>'


def summary_line(explanation: Explanation) -> str:
    """Label, probability, the true label when known, and the convergence delta, in one line."""
    true = f", true label {explanation.true_label}" if explanation.true_label else ""
    return (
        f"{explanation.label} (probability {explanation.probability:.3f}{true}); "
        f"IG convergence delta {explanation.delta:+.4f}"
    )


def explanations_html(explanations: Sequence[Explanation], title: str, n_steps: int) -> str:
    """A self-contained HTML page: one shaded text per explanation, and what the colours mean."""
    sections = [
        f"<section><h2>{i}. {html.escape(summary_line(e))}</h2>{text_html(e)}</section>"
        for i, e in enumerate(explanations, 1)
    ]
    legend = (
        f'<span style="background-color: {_colour(1, 1)}">green</span> words push towards the label shown, '
        f'<span style="background-color: {_colour(-1, 1)}">red</span> words away from it; the stronger the '
        f"colour, the larger the score (relative to the text's largest). Hover a word for its score. "
        f"Method: {METHOD}, {n_steps} steps, target {TARGET}; baseline: {html.escape(BASELINE)}. The scores add up to "
        "logit(text) - logit(baseline) minus the convergence delta."
    )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}"
        "h2{font-size:1em;margin:1.5em 0 .3em}.legend{color:#555}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="legend">{legend}</p>'
        f"{''.join(sections) or '<p>Nothing to explain.</p>'}</body></html>\n"
    )


def explanations_json(explanations: Sequence[Explanation], n_steps: int) -> dict:
    """The raw scores and how they were computed."""
    return {
        "method": METHOD,
        "target": TARGET,
        "baseline": BASELINE,
        "n_steps": n_steps,
        "explanations": [asdict(e) for e in explanations],
    }


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` all at once: a temporary file in the same folder, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_explanations(
    explanations: Sequence[Explanation], html_path: Path, n_steps: int, title: str = "Why this label"
) -> Path:
    """Write the HTML page and, next to it, the JSON file of raw scores; returns the JSON path."""
    json_path = html_path.with_suffix(".json")
    write_atomic(json_path, json.dumps(explanations_json(explanations, n_steps), indent=2))
    write_atomic(html_path, explanations_html(explanations, title, n_steps))
    return json_path


def format_text(explanations: Sequence[Explanation], top_k: int) -> str:
    """The top words for and against each label, for the terminal."""
    lines = []
    for e in explanations:
        short = e.text if len(e.text) <= 80 else e.text[:77] + "..."
        lines += [f"{short!r} -> {summary_line(e)}"]
        for name, positive in (("for", True), ("against", False)):
            words = ", ".join(f"{w.word} {w.score:+.3g}" for w in e.top(top_k, positive)) or "-"
            lines.append(f"  {name + ':':<9}{words}")
    return "\n".join(lines)
