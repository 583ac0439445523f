"""The web app: `textcls app --model <exported folder or checkpoint> [--port N]` (the app extra).

Classify typed text or an uploaded CSV/JSONL file, keep the session's history, show the model's facts.
What differs by kind of task, the sidebar's decision controls and the view of one prediction, is one
pair of functions per kind (`VIEWS`, keyed by the task's `problem_type`): a single-label model shows
its label, confidence and why; a multi-label model each label's probability against its threshold
and the labels given. The logic is in plain functions (tested without Streamlit); `page` and the
views only lay out the widgets.
"""

import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from textcls.checkpoint import CheckpointError
from textcls.predictions import DEFAULT_UNCERTAIN_BELOW, UNCERTAIN
from textcls.tasks import MultiLabel, Regression, SingleLabel

BATCH_SIZE = 32
PER_LABEL = ("prob_", "pred_")  # the prediction table's per-label columns (textcls/predictions.py)


def launch(
    model: str | None = None,
    port: int = 8501,
    address: str = "127.0.0.1",
    quantize: str = "none",
    label_issues: str | None = None,
    corrections: str = "corrections.csv",
) -> None:
    """Serve a classifier as a web app on localhost (Streamlit, the app extra).

    Classify typed text or an uploaded CSV/JSONL file, keep the session's history, see the model's facts;
    with --label_issues, review the rows `textcls label-issues` found (a page of its own).

    Args:
        model: An exported folder or a textcls checkpoint.
        port: The port to serve on.
        address: The bind address (default: localhost only).
        quantize: "int8": classify with dynamically quantized int8 Linear layers (faster on CPU;
            explanations still use the full-precision model).
        label_issues: A label_issues.csv written by `textcls label-issues`, to review: mark each row
            "correct as given" or "relabel to X" (no model needed).
        corrections: Where the review keeps its decisions (CSV: file, row, label), the file that
            `fit` applies with data.corrections_file.
    """
    from textcls.data import DataError
    from textcls.quantize import check_quantize

    check_quantize(quantize, "quantize")
    if model is None and label_issues is None:
        raise CheckpointError(
            "pass --model (a classifier to serve) or --label_issues (a label_issues.csv to review)"
        )
    if model is not None and not Path(model).exists():
        raise CheckpointError(f"model '{model}' does not exist: pass an exported folder or a checkpoint")
    if label_issues is not None and not Path(label_issues).is_file():
        raise DataError(
            f"--label_issues '{label_issues}' does not exist: pass the label_issues.csv of `textcls label-issues`"
        )
    pages = (["--model", model] if model else []) + (
        ["--label_issues", label_issues, "--corrections", corrections] if label_issues else []
    )
    command = [
        sys.executable, "-m", "streamlit", "run", __file__,
        "--server.address", address, "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--", *pages, "--quantize", quantize,
    ]  # fmt: skip
    # become the Streamlit server, so stopping `textcls app` stops the server too
    os.execv(sys.executable, command)


def read_upload(name: str, data: bytes) -> pd.DataFrame:
    """An uploaded CSV or JSONL file as a frame; DataError with a readable message otherwise."""
    from textcls.data import DataError, read_table

    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json"):
        raise DataError(f"'{name}' is not a CSV or JSONL file")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return read_table(str(path))
        except UnicodeDecodeError as err:
            raise DataError(f"'{name}' is not UTF-8 text") from err


def default_column(columns: list[str], name: str = "text") -> int:
    """Index of the column offered first for the texts (or the second texts): `name` when there is one."""
    return columns.index(name) if name in columns else 0


def upload_texts(frame: pd.DataFrame, column: str) -> list[str]:
    """The texts of an uploaded frame's `column`; DataError when some are missing."""
    from textcls.data import DataError

    if frame[column].isna().any():
        raise DataError(f"column '{column}' has empty values")
    return frame[column].astype(str).tolist()


def file_probs(
    cache: dict,
    predictor,
    data: bytes,
    column: str,
    texts: list[str],
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Class probabilities of an uploaded file's texts, predicted once per file content, column and model.

    Streamlit reruns the page on every widget change: `cache` (the session's state) keeps the last
    file's probabilities, so moving the threshold or using the history does not predict again.
    """
    key = (hashlib.sha256(data).hexdigest(), column, str(predictor.source))
    if cache.get("key") != key:
        parts = []
        for probs in predictor.iter_probs(texts, BATCH_SIZE):
            parts.append(probs)
            if progress is not None:
                progress(min(1.0, len(parts) * BATCH_SIZE / len(texts)))
        empty = np.zeros((0, len(predictor.label_names)), np.float32)
        cache.clear()
        cache.update(key=key, probs=np.concatenate(parts) if parts else empty)
    return cache["probs"]


def stored_target(predictor) -> float:
    """The target precision stored with the model (`textcls export --target_precision`), else 0 (off)."""
    calibration = predictor.calibration
    return float(calibration.target_precision or 0.0) if calibration is not None else 0.0


def uncertain_threshold(predictor, target_precision: float, uncertain_below: float) -> tuple[float, str]:
    """The confidence below which predictions are UNCERTAIN, and a line saying where it comes from:
    `uncertain_below` when set (an explicit override), else the validation cut-off for the target."""
    if uncertain_below:
        return uncertain_below, f"uncertain below confidence {uncertain_below} (set by hand)"
    return predictor.cutoff(target_precision)


def history_entry(text: str, row: pd.Series) -> dict:
    """One line of the session's history: the text and what its prediction table's row gives it, the
    per-label columns left out: its label (after the threshold) and confidence, or its labels."""
    given = {k: v for k, v in row.items() if k != "text" and not k.startswith(PER_LABEL)}
    return {"text": text, **{k: v.item() if isinstance(v, np.generic) else v for k, v in given.items()}}


def label_table(predictor, probs: np.ndarray, at_least_one: bool = False) -> pd.DataFrame:
    """A multi-label prediction of one text, label by label: its probability, its threshold and
    whether it is given (`probs`: that text's probabilities, one per label)."""
    row = predictor.results([""], np.asarray(probs)[None], at_least_one=at_least_one).iloc[0]
    names = predictor.label_names
    return pd.DataFrame(
        {
            "label": names,
            "probability": [float(row[f"prob_{n}"]) for n in names],
            "threshold": [float(t) for t in predictor.thresholds.values],
            "given": [bool(row[f"pred_{n}"]) for n in names],
        }
    )


def given_labels(table: pd.DataFrame) -> str:
    """The headline of a multi-label prediction: the labels given, or that there are none."""
    given = table.loc[table["given"], "label"].tolist()
    return f"Labels: {', '.join(given)}" if given else "Labels: none (no label reaches its threshold)"


def why_html(cache: dict, predictor, text: str) -> str:
    """The "why" view of a prediction: the text with each word shaded by its Integrated Gradients score
    for the predicted label (textcls/explain/), computed once per text and model: `cache` (the
    session's state) keeps it while the page reruns."""
    from html import escape

    from textcls.explain import DEFAULT_STEPS, explain_predictor
    from textcls.explain.view import summary_line, text_html

    key = (text, str(predictor.source))
    if cache.get("key") != key:
        [explanation] = explain_predictor(predictor, [text])
        legend = (
            "Green words push towards this label, red words away from it; hover a word for its score "
            f"(Integrated Gradients, {DEFAULT_STEPS} steps, pad-token baseline)."
        )
        view = f"<p><b>{escape(summary_line(explanation))}</b></p>{text_html(explanation)}<p>{escape(legend)}</p>"
        cache.clear()
        cache.update(key=key, html=view)
    return cache["html"]


# ----------------------------------------------------------------------------- the views of each kind


def one_label_controls(predictor) -> dict:
    """The sidebar of a single-label model: the confidence below which a prediction is UNCERTAIN, by
    hand or for a target precision; returns the prediction table's options."""
    import streamlit as st

    manual = st.sidebar.slider("Uncertain below confidence", 0.0, 1.0, DEFAULT_UNCERTAIN_BELOW, 0.05)
    target = st.sidebar.number_input(
        "Target precision (0 = off; used when the slider is 0)", 0.0, 1.0, stored_target(predictor), 0.01
    )
    threshold, why = uncertain_threshold(predictor, target, manual)
    st.sidebar.caption(f"Probabilities are calibrated (temperature {predictor.temperature:.3f}). {why}.")
    return {"uncertain_below": threshold}


def one_label_result(predictor, explainer, text: str, probs: np.ndarray, options: dict) -> None:
    """A single-label prediction: its label (or UNCERTAIN), confidence, every class's probability and
    "why this label" (explained with `explainer`, the full-precision model)."""
    import streamlit as st

    from textcls.explain import ExplainError

    row = predictor.results([text], probs, **options).iloc[0]
    if row["label"] == UNCERTAIN:
        st.warning(f"Uncertain (best guess {predictor.label_names[int(probs[0].argmax())]})")
    st.subheader(f"Label: {row['label']}")
    st.metric("Confidence", f"{row['confidence']:.3f}")
    st.bar_chart(pd.DataFrame({"probability": probs[0]}, index=predictor.label_names))
    with st.expander("Why this label?"):
        try:
            st.html(why_html(st.session_state.setdefault("why", {}), explainer, text))
        except ExplainError as err:  # e.g. Captum is not installed
            st.info(str(err))


def label_set_controls(predictor) -> dict:
    """The sidebar of a multi-label model: whether a text where no label passes gets its top-scoring
    one; returns the prediction table's options."""
    import streamlit as st

    at_least_one = st.sidebar.checkbox("At least one label (the top-scoring one when none passes)")
    st.sidebar.caption(
        "Multi-label: each label has its own probability (sigmoid) and is given when it reaches that "
        "label's threshold (tuned on the validation split)."
    )
    return {"at_least_one": at_least_one}


def label_set_result(predictor, explainer, text: str, probs: np.ndarray, options: dict) -> None:
    """A multi-label prediction: the labels given, and each label's probability against its threshold."""
    import streamlit as st

    table = label_table(predictor, probs[0], **options)
    st.subheader(given_labels(table))
    st.dataframe(table, hide_index=True)
    st.caption('"Why this label?" explanations are for single-label models.')


def score_controls(predictor) -> dict:
    """The sidebar of a regression: nothing to set, a caption on what the number is."""
    import streamlit as st

    st.sidebar.caption(
        f"Regression: the model gives a number, {predictor.label_names[0]}, in the training targets' units."
    )
    return {}


def score_result(predictor, explainer, text, probs: np.ndarray, options: dict) -> None:
    """A regression's prediction: its score, and which words raised or lowered it."""
    import streamlit as st

    from textcls.explain import ExplainError

    st.metric(predictor.label_names[0], f"{float(probs[0, 0]):.3f}")
    with st.expander("Which words raised or lowered the score?"):
        try:
            st.html(why_html(st.session_state.setdefault("why", {}), explainer, text))
        except ExplainError as err:  # e.g. Captum is not installed
            st.info(str(err))


VIEWS = {  # problem_type -> (sidebar controls, the view of one prediction)
    SingleLabel.problem_type: (one_label_controls, one_label_result),
    MultiLabel.problem_type: (label_set_controls, label_set_result),
    Regression.problem_type: (score_controls, score_result),
}


# ----------------------------------------------------------------------------- the page


def page(model_path: str, quantize: str = "none") -> None:
    import streamlit as st

    from textcls.data import DataError
    from textcls.inference import load_predictor
    from textcls.model_card import describe_layout

    st.set_page_config(page_title="textcls", layout="wide")

    @st.cache_resource
    def get_predictor(path: str, quantize: str):
        return load_predictor(path, quantize)

    predictor = get_predictor(model_path, quantize)
    # Integrated Gradients needs gradients, which int8 layers do not give: explain with full precision
    explainer = get_predictor(model_path, "none") if predictor.quantized else predictor
    controls, show_result = VIEWS[predictor.task.problem_type]
    st.title("Text classifier")
    options = controls(predictor)
    history = st.session_state.setdefault("history", [])

    text = st.text_area("Text to classify")
    # a model trained on pairs reads two texts: each prediction is of the pair
    item = (text, st.text_area("Second text (text_pair)")) if predictor.reads_pairs else text
    filled = all(t.strip() for t in ([text] if isinstance(item, str) else item))
    if st.button("Classify") and filled:
        st.session_state["last"] = predictor.predict_probs([item])
        row = predictor.results([item], st.session_state["last"], **options).iloc[0]
        history.append(history_entry(text, row))
    if "last" in st.session_state and filled:  # stays shown while the rest of the page is used
        show_result(predictor, explainer, item, st.session_state["last"], options)

    st.header("Classify a file")
    upload = st.file_uploader("CSV or JSONL", type=["csv", "jsonl", "json"])
    if upload is not None:
        try:
            frame = read_upload(upload.name, upload.getvalue())
            columns = [str(c) for c in frame.columns]
            column = st.selectbox("Text column", columns, index=default_column(columns))
            texts = upload_texts(frame, column)
            if predictor.reads_pairs:
                second = st.selectbox(
                    "Second text column", columns, index=default_column(columns, "text_pair")
                )
                texts = list(zip(texts, upload_texts(frame, second), strict=True))
                column = f"{column}+{second}"
        except DataError as err:
            st.error(str(err))
        else:
            bar = st.progress(0.0, text="Predicting...")
            cache = st.session_state.setdefault("file_predictions", {})
            probs = file_probs(
                cache, predictor, upload.getvalue(), column, texts, lambda done: bar.progress(done)
            )
            bar.empty()
            results = predictor.results(texts, probs, **options)
            st.dataframe(results)
            st.download_button("Download results (CSV)", results.to_csv(index=False), "predictions.csv")

    st.header("History")
    if history:
        st.dataframe(pd.DataFrame(history))
    if st.button("Clear history"):
        st.session_state["history"] = []
        st.rerun()

    st.header("Model facts")
    st.write("Labels:", ", ".join(predictor.label_names))
    st.write("Backbone:", predictor.hparams.get("model", {}).get("model_name_or_path", str(predictor.source)))
    st.write("Max length:", predictor.max_length)
    st.write("Quantization:", predictor.quantized or "none (as trained)")
    # the predictor already reads texts this way: shown so a user knows what a long text's answer rests on
    st.write("Long texts:", describe_layout(predictor.layout, predictor.chunk_pooling))
    for name, value in predictor.task.rule_facts().items():  # the temperature, or each label's threshold
        st.write(f"{name}:", value)
    if predictor.metrics:
        st.subheader("Test metrics")
        st.json(predictor.metrics)
    else:
        st.caption(
            "No test report of this checkpoint was found: run `textcls test` on it to see its metrics."
        )
    if predictor.confusion_matrix_path:
        st.image(str(predictor.confusion_matrix_path), caption="Confusion matrix (test)")


def main(args: list[str]) -> None:
    """The app's page, or pages: classify with --model, review with --label_issues (a choice in the sidebar)."""
    import streamlit as st

    option = {name: args[args.index(name) + 1] for name in args if name.startswith("--")}
    review = "--label_issues" in option and (
        "--model" not in option or st.sidebar.radio("Page", ["Classify", "Label issues"]) == "Label issues"
    )
    if review:
        from textcls.label_issues.review import review_page

        review_page(option["--label_issues"], option["--corrections"])
    else:
        page(option["--model"], option.get("--quantize", "none"))


if __name__ == "__main__":
    # Streamlit runs this file as a script: `streamlit run app.py -- --model M`
    main(sys.argv)
