"""The test report of a model that gives each text a number: MSE, MAE, Pearson, Spearman and R², the
predicted-against-true scatter, the error by target quantile, the largest errors (with both texts of
a pair), and its columns of the comparison with other models.

Files: predictions.csv (every row, its target, score and error), largest_errors.csv (largest absolute
error first), error_by_quantile.csv, and the figure predicted_vs_true.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from textcls.report.markdown import md_table, shortened, texts_of
from textcls.report.part import ReportPart, run_record

QUANTILE_GROUPS = 5
SHOWN_ERRORS = 5


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, MAE, Pearson, Spearman and R² (the correlations are NaN where either side is constant)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    varies = len(y_true) > 1 and np.ptp(y_true) > 0 and np.ptp(y_pred) > 0
    return {
        "mse": float(mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "pearson": float(pearsonr(y_true, y_pred)[0]) if varies else float("nan"),
        "spearman": float(spearmanr(y_true, y_pred)[0]) if varies else float("nan"),
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
    }


def report_part(folder: Path, test: pd.DataFrame, scores_: np.ndarray, info: dict) -> ReportPart:
    """The regression part of the report of scores (rows of `test`, in order); writes its tables into
    `folder`.

    Args:
        folder: Where to write.
        test: The test rows: `text` (and `text_pair`), `label` (the target) and `row`.
        scores_: The model's scores, shape (rows, 1), in the target's units.
        info: What produced the scores (see `compose_report`).
    """
    y_true, y_pred = test["label"].to_numpy(dtype=np.float64), np.asarray(scores_)[:, 0]
    metrics = {**scores(y_true, y_pred), "rows": len(y_true), "alerts": [], **run_record(info)}
    predictions = pd.DataFrame(
        {"row": test["row"].to_numpy(), **texts_of(test), "true_score": y_true, "predicted_score": y_pred}
    )
    predictions["error"] = predictions["predicted_score"] - predictions["true_score"]
    predictions.to_csv(folder / "predictions.csv", index=False)
    largest = predictions.reindex(
        predictions["error"].abs().sort_values(ascending=False, kind="stable").index
    )
    largest.to_csv(folder / "largest_errors.csv", index=False)
    by_quantile = error_by_quantile(y_true, y_pred)
    by_quantile.to_csv(folder / "error_by_quantile.csv", index=False)
    title = f"{info['model']}: predicted against true ({len(test)} test texts)"
    figures = {"predicted_vs_true": plot_scatter(y_true, y_pred, title)}
    return ReportPart(metrics, figures=figures, lines=summary_markdown(metrics, by_quantile, largest))


def error_by_quantile(y_true: np.ndarray, y_pred: np.ndarray, groups: int = QUANTILE_GROUPS) -> pd.DataFrame:
    """The test rows in quantile groups of their true target: each group's range, rows, MAE and mean
    error (its bias: positive where the model scores too high)."""
    edges = np.unique(np.quantile(y_true, np.linspace(0, 1, groups + 1)))
    group = np.clip(np.searchsorted(edges[1:-1], y_true, side="right"), 0, max(len(edges) - 2, 0))
    rows = []
    for g in np.unique(group):
        mask = group == g
        error = y_pred[mask] - y_true[mask]
        span = {"from": float(y_true[mask].min()), "to": float(y_true[mask].max())}
        rows.append(
            {
                "group": int(g) + 1,
                **span,
                "rows": int(mask.sum()),
                "mae": float(np.abs(error).mean()),
                "mean_error": float(error.mean()),
            }
        )
    return pd.DataFrame(rows)


def plot_scatter(y_true: np.ndarray, y_pred: np.ndarray, title: str):
    """Each test text's score against its target, with the diagonal of perfect scores."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.add_subplot()
    low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([low, high], [low, high], "k--", lw=1, label="perfect")
    ax.scatter(y_true, y_pred, s=8, alpha=0.5)
    ax.set(xlabel="true", ylabel="predicted", title=title)
    ax.legend(loc="upper left")
    return fig


def summary_markdown(metrics: dict, by_quantile: pd.DataFrame, largest: pd.DataFrame) -> list[str]:
    """report.md's regression lines: metrics, error by target quantile, largest errors."""
    shown = {k: metrics[k] for k in ("mse", "mae", "pearson", "spearman", "r2", "rows")}
    values = pd.Series(list(shown.values()), dtype=object)  # keeps counts as integers
    out = ["## Metrics", "", md_table(pd.DataFrame({"metric": list(shown), "value": values})), ""]
    out += [
        "## Error by target quantile",
        "",
        "Mean error above 0: the model scores that range too high.",
        "",
    ]
    out += [md_table(by_quantile), "", "## Largest errors", ""]
    top = largest.head(SHOWN_ERRORS)
    top = top.assign(**shortened(top))
    return out + [md_table(top), ""]


def comparison_table(rows: list[dict]) -> pd.DataFrame:
    """The comparison of models on the same test rows: Pearson, Spearman, MSE and training time."""
    frame = pd.DataFrame(rows).reindex(columns=["model", "pearson", "spearman", "mse", "train_seconds"])
    frame["train_seconds"] = frame["train_seconds"].map(lambda s: "" if s is None or s != s else f"{s:.1f}")
    return frame.rename(columns={"train_seconds": "training time (s)"})


def length_score(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The score of a group of texts (e.g. a length bucket): its mean absolute error."""
    return {"mae": float(np.abs(np.asarray(y_pred) - np.asarray(y_true)).mean())}
