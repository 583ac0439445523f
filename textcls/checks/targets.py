"""What the data check adds for numeric targets (regression): each split's range, quantiles and
histogram, and a warning where a split's targets do not vary (its Pearson and Spearman are undefined;
a constant training target is refused before the check, when the data is read)."""

import numpy as np
import pandas as pd

from textcls.checks.problems import problem

HISTOGRAM_BINS = 10
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def target_stats(targets: pd.Series) -> dict:
    """`target`: min, max, mean, std, the quantiles and a histogram of a split's targets."""
    values = targets.to_numpy(dtype=np.float64)
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    return {
        "target": {
            "min": float(values.min()),
            "max": float(values.max()),
            "mean": round(float(values.mean()), 6),
            "std": round(float(values.std()), 6),
            "quantiles": {f"p{round(q * 100)}": float(np.quantile(values, q)) for q in QUANTILES},
            "histogram": {"edges": [round(float(e), 6) for e in edges], "counts": counts.tolist()},
        }
    }


def target_problems(splits: dict) -> list[dict]:
    """A warning for each split whose targets are all the same number."""
    return [
        problem(
            "warning",
            "constant_target",
            f"every {split} target is {info['target']['min']:g}: its Pearson and Spearman correlations are "
            "undefined",
        )
        for split, info in splits.items()
        if info["target"]["std"] == 0
    ]


def target_lines(report: dict) -> list[str]:
    """The targets of each split, for the printed report."""
    lines = ["Targets:"]
    for split, info in report["splits"].items():
        t = info["target"]
        q = t["quantiles"]
        lines.append(
            f"  {split:<10} min {t['min']:g}  p25 {q['p25']:g}  median {q['p50']:g}  p75 {q['p75']:g}  "
            f"max {t['max']:g}  mean {t['mean']:.3f}  std {t['std']:.3f}"
        )
    return lines
