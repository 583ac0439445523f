"""The data check's token lengths: how many texts are longer than `data.max_length`, and what that costs.

A longer text is cut (`data.long_text: truncate`, keeping the tokens `data.truncation` names), or read
as overlapping windows (`chunks`), one forward pass each. The windows are counted with the same
`window_starts` as `encode_texts`, so the check reports exactly the windows training and test will read.
"""

import numpy as np

from textcls.checks.problems import problem
from textcls.long_text import SpecialTokens, TextLayout, layout_windows

LONG_DOCS = 'README "Long documents"'
MOST = 0.5  # above this share of long texts, plain head truncation loses most texts' endings


def token_lengths(data, rows, sample: int) -> dict:
    """Token length statistics of a split's texts (at most `sample` of them, a seeded sample).

    Args:
        data: The TextClassificationData (its tokenizer, layout, seed and max_chunks_per_text).
        rows: A split's rows (textcls.data.rows.Split: columns `text`, and `text_pair` for pairs).
        sample: Measure at most this many texts.

    Returns:
        median, p90, p99 and max of the untruncated lengths (special tokens included), the share of
        texts longer than max_length (`truncated_share`), `measured_texts`, and with `long_text: chunks`
        `windows` (see `window_stats`).
    """
    if len(rows) > sample:
        rows = rows.sample(sample, data.hparams.seed)
    frame = rows.texts.select_columns(rows.text_columns()).to_pandas()  # at most `sample` texts
    # untruncated lengths (special tokens included), to see how much max_length cuts off
    sides = [frame[c].tolist() for c in ("text", "text_pair") if c in frame]
    lengths = _lengths(data.tokenizer, sides, add_special_tokens=True, truncation=False)
    out = {
        "median": float(np.median(lengths)),
        "p90": float(np.percentile(lengths, 90)),
        "p99": float(np.percentile(lengths, 99)),
        "max": int(lengths.max()),
        "truncated_share": round(float((lengths > data.hparams.max_length).mean()), 4),
        "measured_texts": len(lengths),
    }
    if len(sides) == 2:  # a pair: which of its texts takes the room (longest_first cuts that one first)
        out["sides"] = {c: side_lengths(data.tokenizer, frame[c].tolist()) for c in ("text", "text_pair")}
    layout = data.layout
    if layout.chunked:
        special = len(SpecialTokens(data.tokenizer))
        out["windows"] = window_stats(lengths - special, layout, special, data.hparams.max_chunks_per_text)
    return out


def _lengths(tokenizer, sides: list[list[str]], batch: int = 2000, **options) -> np.ndarray:
    """Tokens of each text (or pair), a batch at a time: the tokenizer's encodings of all texts at once
    would take far more memory than their lengths."""
    out = []
    for start in range(0, len(sides[0]), batch):
        parts = [side[start : start + batch] for side in sides]
        out += [len(x) for x in tokenizer(*parts, verbose=False, **options)["input_ids"]]
    return np.array(out)


def side_lengths(tokenizer, texts: list[str]) -> dict:
    """Median, p90 and max tokens of one side of the pairs, special tokens excluded."""
    lengths = _lengths(tokenizer, [texts], add_special_tokens=False)
    return {
        "median": float(np.median(lengths)),
        "p90": float(np.percentile(lengths, 90)),
        "max": int(lengths.max()),
    }


def windows_per_text(content_lengths: np.ndarray, layout: TextLayout, special: int) -> np.ndarray:
    """How many windows `encode_texts` makes of texts of these lengths (special tokens excluded)."""
    return np.array([len(layout_windows(int(n), layout, special)[0]) for n in content_lengths])


def window_stats(content_lengths: np.ndarray, layout: TextLayout, special: int, per_text: int | None) -> dict:
    """Windows per text (mean, p90, max), `cost`: windows / texts, the forward passes per text of
    validation, test and predict (1.0 for truncation), and `train_cost`: the same per training epoch,
    where `data.max_chunks_per_text` (`per_text`) bounds each text's windows."""
    windows = windows_per_text(content_lengths, layout, special)
    trained = windows if per_text is None else np.minimum(windows, per_text)
    return {
        "mean": round(float(windows.mean()), 4),
        "p90": float(np.percentile(windows, 90)),
        "max": int(windows.max()),
        "cost": round(float(windows.sum() / len(windows)), 4),
        "train_cost": round(float(trained.sum() / len(trained)), 4),
    }


def length_problems(
    splits: dict, layout: TextLayout, threshold: float, limit: int | None = None
) -> list[dict]:
    """Warnings for splits where more than `threshold` of the texts are longer than max_length: they
    are cut (with a hint towards head_tail or chunks when most are, under plain head truncation), or,
    with chunks, read in windows at a cost this reports."""
    max_length = layout.max_length
    if limit is not None and max_length >= limit:
        advice = f"that is the backbone's limit ({limit} tokens): shorten the texts or use a longer-context backbone"
    elif limit is not None:
        advice = f"consider raising data.max_length (the backbone takes at most {limit})"
    else:
        advice = "consider raising data.max_length"
    out = []
    for split, info in splits.items():
        lengths = info["token_lengths"]
        share = lengths["truncated_share"]
        if share <= threshold:
            continue
        longer = f"{share:.1%} of {split} texts are longer than data.max_length={max_length} tokens"
        spread = f"p90 is {lengths['p90']:.0f} and p99 {lengths['p99']:.0f} tokens"
        if layout.chunked:
            # nothing is cut: the price is one forward pass per window
            w = lengths["windows"]
            message = (
                f"{longer} and are read in windows ({spread}): {w['mean']:.2f} windows per text on average "
                f"(p90 {w['p90']:.0f}, max {w['max']}), so validation, test and predict cost "
                f"{w['cost']:.2f}x the forward passes of truncated texts, and a training epoch {w['train_cost']:.2f}x"
            )
            out.append(problem("warning", "long_text_cost", message))
            continue
        message = f"{longer} and are cut ({_kept(layout)}); {spread}: {advice}"
        if share > MOST and layout.truncation == "head":
            message += (
                "; most texts lose their ending: data.truncation: head_tail keeps the start and the end, "
                f"data.long_text: chunks reads every token in windows (see {LONG_DOCS})"
            )
        out.append(problem("warning", "truncation", message))
    return out


def _kept(layout: TextLayout) -> str:
    if layout.truncation == "tail":
        return "their last tokens are kept"
    if layout.truncation == "head_tail":
        return f"their first {layout.head} and last tokens are kept"
    return "their first tokens are kept"


def render_lines(splits: dict) -> list[str]:
    """The windows lines of the text summary, for splits read in windows (none otherwise)."""
    lines = []
    for split, info in splits.items():
        w = info["token_lengths"].get("windows")
        if w is not None:
            lines.append(
                f"  {split:<10} windows per text: mean {w['mean']:.2f}  p90 {w['p90']:.0f}  max {w['max']}  "
                f"cost {w['cost']:.2f}x (training epoch {w['train_cost']:.2f}x)"
            )
    return lines
