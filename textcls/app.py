"""The web app: `textcls app --model <exported folder or checkpoint> [--port N]` (the app extra).

Classify typed text or an uploaded CSV/JSONL file, keep the session's history, show the model's facts.
"""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def launch(model: str, port: int = 8501, address: str = "127.0.0.1") -> None:
    """Serve a classifier as a web app on localhost (Streamlit, the app extra).

    Classify typed text or an uploaded CSV/JSONL file, keep the session's history, see the model's facts.

    Args:
        model: An exported folder or a textcls checkpoint.
        port: The port to serve on.
        address: The bind address (default: localhost only).
    """
    if not Path(model).exists():
        raise FileNotFoundError(f"model '{model}' does not exist")
    command = [
        sys.executable, "-m", "streamlit", "run", __file__,
        "--server.address", address, "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--", "--model", model,
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


def page(model_path: str) -> None:
    import streamlit as st

    from textcls.data import DataError
    from textcls.inference import load_predictor

    st.set_page_config(page_title="textcls", layout="wide")

    @st.cache_resource
    def get_predictor(path: str):
        return load_predictor(path)

    predictor = get_predictor(model_path)
    st.title("Text classifier")
    threshold = st.sidebar.slider("Uncertain below confidence", 0.0, 1.0, 0.5, 0.05)
    history = st.session_state.setdefault("history", [])

    text = st.text_area("Text to classify")
    if st.button("Classify") and text.strip():
        st.session_state["last"] = predictor.predict_probs([text])
        row = predictor.results([text], st.session_state["last"], uncertain_below=threshold).iloc[0]
        history.append({"text": text, "label": row["label"], "confidence": float(row["confidence"])})
    if "last" in st.session_state and text.strip():  # stays shown while the rest of the page is used
        probs = st.session_state["last"]
        row = predictor.results([text], probs, uncertain_below=threshold).iloc[0]
        if row["label"] == "UNCERTAIN":
            st.warning(f"Uncertain (best guess {predictor.label_names[int(probs[0].argmax())]})")
        st.subheader(f"Label: {row['label']}")
        st.metric("Confidence", f"{row['confidence']:.3f}")
        st.bar_chart(pd.DataFrame({"probability": probs[0]}, index=predictor.label_names))

    st.header("Classify a file")
    upload = st.file_uploader("CSV or JSONL", type=["csv", "jsonl", "json"])
    if upload is not None:
        try:
            frame = read_upload(upload.name, upload.getvalue())
            columns = [str(c) for c in frame.columns]
            column = st.selectbox(
                "Text column", columns, index=columns.index("text") if "text" in columns else 0
            )
            texts = frame[column].astype(str).tolist()
            if frame[column].isna().any():
                raise DataError(f"column '{column}' has empty values")
        except DataError as err:
            st.error(str(err))
        else:
            bar, parts, batch = st.progress(0.0, text="Predicting..."), [], 32
            for probs in predictor.iter_probs(texts, batch):
                parts.append(probs)
                bar.progress(min(1.0, len(parts) * batch / len(texts)), text="Predicting...")
            results = predictor.results(texts, np.concatenate(parts), uncertain_below=threshold)
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
    if predictor.metrics:
        st.subheader("Test metrics")
        st.json(predictor.metrics)
    if predictor.confusion_matrix_path:
        st.image(str(predictor.confusion_matrix_path), caption="Confusion matrix (test)")


if __name__ == "__main__":
    # Streamlit runs this file as a script: `streamlit run app.py -- --model M`
    page(sys.argv[sys.argv.index("--model") + 1])
