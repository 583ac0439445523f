"""Write docs/results.md: every baseline vs fine-tuned MiniLM on the quickstart data, SST-2, AG News
and (multi-label) GoEmotions, measured by the real CLI.

Runs, for each config: `textcls baseline` (TF-IDF, frozen encoder, zero-shot), `textcls fit`, `textcls test --ckpt_path best
--prediction.target_precision 0.95`, then reads the metrics.json files they wrote: accuracy and
macro F1 of each model, and the fine-tuned model's calibration (ECE before and after temperature
scaling, the temperature, Brier score) and test precision and coverage at the validation cut-off
for target precision 0.95. Several minutes per data set on CPU (GoEmotions: over an hour). For a
multi-label config the tables hold macro/micro F1 and subset accuracy at the per-label thresholds tuned
on validation and at a fixed 0.5, and only the TF-IDF baselines run (the frozen encoder would embed
54,000 texts; the zero-shot baselines are single-label).
    python scripts/make_results.py [--reuse] [configs/sst2_minilm.yaml ...]
With --reuse, a config whose baseline and test reports already exist is not run again.
"""

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from textcls.cli import run_name  # names a run's log folder after its config
from textcls.report import load_baseline_metrics

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [
    "configs/quickstart.yaml",
    "configs/sst2_minilm.yaml",
    "configs/ag_news_minilm.yaml",
    "configs/goemotions_minilm.yaml",
]
MULTI_LABEL_BASELINES = "[tfidf_logreg, tfidf_nb]"
TARGET_PRECISION = "0.95"
KEPT_MARKER = "<!-- below: sections written by other scripts, kept by make_results.py -->"


def write_kept_section(name: str, lines: list[str]) -> Path:
    """Write (or replace) the section `name` of docs/results.md below KEPT_MARKER, between
    `<!-- name -->` and `<!-- /name -->`: a section another script owns, which main() keeps."""
    path = ROOT / "docs" / "results.md"
    head, _, kept = path.read_text().partition(KEPT_MARKER)
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    before, found, rest = kept.partition(start)
    after = rest.partition(end)[2] if found else "\n"
    path.write_text(head + KEPT_MARKER + (before or "\n") + "\n".join([start, *lines, end]) + after)
    print(f"Wrote {path}")
    return path


def textcls(*args: str) -> None:
    print("$ textcls", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "textcls", *args], cwd=ROOT, check=True)


def logger_root(config: str) -> Path:
    return ROOT / "lightning_logs" / run_name(["--config", config])


def newest_test_metrics(root: Path) -> dict:
    runs = sorted(root.glob("version_*/metrics.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(runs[-1].read_text())


def _num(value, fmt: str = ".4f") -> str:
    return "n/a" if value is None else format(value, fmt)


def calibration_lines(metrics: dict, config: str) -> list[str]:
    """The fine-tuned model's calibration and abstention at the target precision, from its metrics.json."""
    lines = [
        "",
        f"Calibration of the fine-tuned model (temperature scaling on the validation split; target precision "
        f"{metrics.get('target_precision', 'n/a')}, cut-off chosen on the validation split, measured on test):",
        "",
        "| accuracy | ECE before | ECE after | temperature | Brier before | Brier after | cut-off "
        "| test precision kept | test coverage |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {_num(metrics.get('accuracy'))} | {_num(metrics.get('ece_uncalibrated'))} | {_num(metrics.get('ece'))} "
        f"| {_num(metrics.get('temperature'), '.3f')} | {_num(metrics.get('brier_uncalibrated'))} "
        f"| {_num(metrics.get('brier'))} | {_num(metrics.get('cutoff'))} "
        f"| {_num(metrics.get('precision_at_cutoff'))} | {_num(metrics.get('coverage_at_cutoff'), '.1%')} |",
    ]
    if metrics.get("target_precision") is not None and metrics.get("cutoff") is None:
        lines += ["", "No confidence cut-off reached the target precision on the validation split."]
    data = yaml.safe_load((ROOT / config).read_text()).get("data", {})
    if data.get("val_file") and data.get("val_file") == data.get("test_file"):
        lines += [
            "",
            "This config validates and tests on the same file: the temperature and the cut-off were chosen "
            "on the rows they are measured on, so these calibration numbers are optimistic.",
        ]
    return lines


def is_multi_label(config: str) -> bool:
    return bool(yaml.safe_load((ROOT / config).read_text()).get("data", {}).get("multi_label"))


def score_table(rows: list[dict], multi_label: bool) -> list[str]:
    if not multi_label:
        return [
            "| model | test rows | accuracy | macro F1 | training time (s) |",
            "|---|---|---|---|---|",
            *(
                f"| {r['model']} | {r['rows']} | {r['accuracy']:.4f} | {r['f1_macro']:.4f} | {r.get('train_seconds', '')} |"
                for r in rows
            ),
        ]
    lines = [
        "| model | test rows | macro F1 (tuned) | macro F1 (0.5) | micro F1 (tuned) | micro F1 (0.5) "
        "| subset accuracy (tuned) | training time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fixed = r["at_threshold_0.5"]
        lines.append(
            f"| {r['model']} | {r['rows']} | {r['f1_macro']:.4f} | {fixed['f1_macro']:.4f} | {r['f1_micro']:.4f} "
            f"| {fixed['f1_micro']:.4f} | {r['subset_acc']:.4f} | {r.get('train_seconds', '')} |"
        )
    lines += [
        "",
        "Tuned: each label's threshold is the one with the best F1 on the validation split (labels with fewer "
        "than 5 validation positives keep 0.5); 0.5: one threshold for every label.",
    ]
    return lines


def main(configs: list[str], reuse: bool = False) -> None:
    lines = [
        "# Results: baselines vs fine-tuning on the same rows",
        "",
        "Generated by `python scripts/make_results.py` (do not edit by hand). CPU, seed 42, MiniLM",
        "(`sentence-transformers/all-MiniLM-L6-v2`). Each row is from the metrics.json that the command wrote.",
        "",
    ]
    for config in configs:
        multi_label = is_multi_label(config)
        baseline = ["baseline", "--config", config]
        commands = [
            [*baseline, "--baseline.methods", MULTI_LABEL_BASELINES] if multi_label else baseline,
            ["fit", "--config", config],
            ["test", "--config", config, "--ckpt_path", "best"],
        ]
        if not multi_label:
            commands[-1] += ["--prediction.target_precision", TARGET_PRECISION]
        start = time.time()
        root = logger_root(config)
        done = (
            list(root.glob("version_*/metrics.json"))
            and (root / "baselines" / "tfidf_nb" / "metrics.json").exists()
        )
        if not (reuse and done):
            for command in commands:
                textcls(*command)
        rows = load_baseline_metrics(root)  # every baseline `textcls baseline` wrote
        rows.append(newest_test_metrics(root))
        lines += [f"## {config}", "", "```bash", *(f"textcls {shlex.join(c)}" for c in commands), "```", ""]
        lines += score_table(rows, multi_label)
        if not multi_label:
            lines += calibration_lines(rows[-1], config)
        if reuse and done:
            lines += [
                "",
                "Reused the runs already in lightning_logs: their load at the time is not recorded here.",
                "",
            ]
        else:
            load = os.getloadavg()[0]
            lines += [
                "",
                f"All three commands took {time.time() - start:.0f} s; 1-minute load average afterwards",
            ]
            lines += [
                f"{load:.1f} on {os.cpu_count()} cores (above the core count, other jobs shared the CPU).",
                "",
            ]
    path = ROOT / "docs" / "results.md"
    # sections other scripts write (scripts/long_documents.py) stay as they are
    kept = path.read_text().partition(KEPT_MARKER)[2] if path.is_file() else ""
    path.write_text("\n".join(lines) + (KEPT_MARKER + kept if kept else ""))
    print("Wrote docs/results.md")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--reuse"]
    main(args or CONFIGS, reuse="--reuse" in sys.argv)
