"""End to end in a real browser: the Streamlit app on a tiny exported model, driven by headless Chromium."""

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import make_rows
from tests.test_cli import ROOT, run

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def needs_browser():
    """Skip unless playwright, streamlit and Debian's chromium are there; playwright's sync API."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    pytest.importorskip("streamlit", reason="streamlit is not installed (the app extra)")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    return sync_api


@contextlib.contextmanager
def browser_on_app(folder: Path, tmp_path: Path):
    """`textcls app --model folder` served on a free port, and a headless Chromium page on it."""
    sync_api = needs_browser()
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "textcls", "app", "--model", str(folder), "--port", str(port)]
    server = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the app did not answer within 60 s")
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 1800})
            page.goto(url, timeout=60_000)
            page.get_by_text("Model facts").wait_for(timeout=120_000)
            yield page
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_app_in_browser(tmp_path, tiny_backbone):
    needs_browser()
    from tests.conftest import write_jsonl
    from tests.test_cli import write_config

    files = {
        "train": write_jsonl(tmp_path / "train.jsonl", make_rows(30, seed=1)),
        "test": write_jsonl(tmp_path / "test.jsonl", make_rows(5, seed=2)),
        "predict": write_jsonl(tmp_path / "predict.jsonl", make_rows(2, seed=3)),
    }
    run("fit", "--config", str(write_config(tmp_path, tiny_backbone, files, max_epochs=1)), cwd=tmp_path)
    folder = tmp_path / "exported"
    ckpt = tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt"
    run("export", "--ckpt_path", str(ckpt), "--output_dir", str(folder), cwd=tmp_path)
    upload = tmp_path / "batch.csv"
    upload.write_text("text\n" + "".join(r["text"] + "\n" for r in make_rows(3, seed=4)))

    with browser_on_app(folder, tmp_path) as page:
        page.get_by_label("Text to classify").fill("pizza recipe bake sauce dinner")
        page.get_by_role("button", name="Classify").click()
        label = page.get_by_text("Label: ").first
        label.wait_for(timeout=60_000)
        assert label.inner_text().split("Label: ")[1].strip() in {"food", "sports", "tech", "UNCERTAIN"}
        if importlib.util.find_spec("captum"):  # the "why" view: one shaded word each, score on hover
            page.get_by_text("Why this label?").click()
            words = page.locator(".textcls-why .textcls-word")
            words.first.wait_for(timeout=60_000)
            assert words.count() == 5
            float(words.first.get_attribute("title"))
        page.locator("input[type=file]").set_input_files(str(upload))
        page.get_by_text("Download results (CSV)").wait_for(timeout=60_000)
        table = page.locator("[data-testid=stDataFrame]").first
        table.wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
    assert (tmp_path / "app.png").stat().st_size > 10_000
    print("screenshot:", tmp_path / "app.png")


@pytest.mark.slow
def test_app_in_browser_reads_pairs_and_shows_a_score(tmp_path, tiny_backbone):
    """A regression on pairs of texts: two text boxes, and the score as the answer."""
    needs_browser()
    from tests.conftest import write_pair_config, write_pair_files

    files = write_pair_files(tmp_path, train=60, test=10, predict=2)
    config = write_pair_config(
        tmp_path, tiny_backbone, files, 1, label_column="score", problem_type="regression"
    )
    run("fit", "--config", str(config), cwd=tmp_path)
    folder = tmp_path / "exported"
    ckpt = tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt"
    run("export", "--ckpt_path", str(ckpt), "--output_dir", str(folder), cwd=tmp_path)
    expected = float(load_score(folder, ("pizza recipe bake", "pizza sauce dinner")))
    with browser_on_app(folder, tmp_path) as page:
        page.get_by_label("Text to classify").fill("pizza recipe bake")
        page.get_by_label("Second text (text_pair)").fill("pizza sauce dinner")
        page.get_by_role("button", name="Classify").click()
        metric = page.locator("[data-testid=stMetricValue]").first
        metric.wait_for(timeout=60_000)
        assert float(metric.inner_text()) == pytest.approx(expected, abs=1e-3)
        page.screenshot(path=str(tmp_path / "app_pairs.png"), full_page=True)


def load_score(folder: Path, pair: tuple[str, str]) -> float:
    from textcls.inference import load_predictor

    return load_predictor(folder).predict_probs([pair])[0, 0]
