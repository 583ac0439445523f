"""Compare classification heads (`model.pooling`) of fine-tuned MiniLM, through the real CLI, against
the TF-IDF and frozen-encoder baselines on exactly the same splits.

Data sets (development data in ../shared/data, never shipped):
- `sst2`: configs/sst2_minilm.yaml (4,000 sampled sentences, 2 classes, 1 epoch);
- `ag_news`: configs/ag_news_minilm.yaml with 4,000 sampled training rows (4 classes, 1 epoch);
- `emotions27`: a 27-class single-label set built from GoEmotions: the comments of the official
  split that carry exactly one emotion other than neutral (8,000 sampled training rows, the official
  validation and test comments), 3 epochs.

For each data set, pooling and seed: `textcls fit`, then `textcls test --ckpt_path best`, and the test
report's accuracy and macro F1; `textcls baseline` once per data set and seed.

    python scripts/heads.py [--sets sst2 ag_news emotions27] [--poolings pooler auto] [--seeds 1 2]

Writes <out>/heads.json (every run, kept between calls: a run already there is not repeated) and
prints a markdown table of means and per-seed values; `--docs` also writes it as the "Classification
heads" section of docs/results.md (which scripts/make_results.py keeps).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SETS = {
    "sst2": {"config": "configs/sst2_minilm.yaml", "args": []},
    "ag_news": {"config": "configs/ag_news_minilm.yaml", "args": ["--data.train_sample", "4000"]},
    "emotions27": {"config": None, "args": []},
}


def emotions27(out: Path) -> Path:
    """The single-label GoEmotions config (data written once into `out`, seed 0)."""
    folder = out / "data" / "emotions27"
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        frame = pd.read_csv(SHARED / "goemotions" / f"{split}.csv")
        labels = frame["labels"].astype(str)
        frame = frame[~labels.str.contains(";") & (labels != "neutral")].rename(columns={"labels": "label"})
        if split == "train":
            frame = frame.sample(8000, random_state=0)
        frame[["text", "label"]].to_csv(folder / f"{split}.csv", index=False)
    config = out / "emotions27.yaml"
    config.write_text(
        "model:\n  model_name_or_path: sentence-transformers/all-MiniLM-L6-v2\n  learning_rate: 1.0e-4\n"
        f"data:\n  train_file: {folder / 'train.csv'}\n  val_file: {folder / 'validation.csv'}\n"
        f"  test_file: {folder / 'test.csv'}\n  max_length: 64\n  batch_size: 32\n"
        "trainer:\n  max_epochs: 3\n  log_every_n_steps: 50\n"
    )
    return config


def textcls(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "textcls", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"textcls {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


def newest_metrics(folder: Path) -> dict:
    reports = sorted(folder.glob("version_*/metrics.json"), key=os.path.getmtime)
    return json.loads(reports[-1].read_text())


def scores(metrics: dict) -> dict:
    return {"accuracy": metrics["accuracy"], "f1_macro": metrics["f1_macro"]}


def run_head(out: Path, name: str, config: str, extra: list[str], pooling: str, seed: int) -> dict:
    logs = ["--trainer.logger.init_args.save_dir", str(out / "logs"), "--trainer.logger.init_args.name"]
    run_name = f"{name}_{pooling}_seed{seed}"
    common = ["--config", config, *extra, "--seed_everything", str(seed), *logs, run_name]
    start = time.perf_counter()
    textcls("fit", *common, "--model.pooling", pooling)
    fit_seconds = time.perf_counter() - start
    textcls("test", *common, "--ckpt_path", "best")
    return {"fit_seconds": round(fit_seconds, 1), **scores(newest_metrics(out / "logs" / run_name))}


def run_baselines(out: Path, name: str, config: str, extra: list[str], seed: int) -> dict:
    folder = out / "baselines" / f"{name}_seed{seed}"
    methods = "[tfidf_logreg, frozen_encoder]"
    textcls(
        "baseline",
        "--config",
        config,
        *extra,
        "--seed_everything",
        str(seed),
        "--output_dir",
        str(folder),
        "--baseline.methods",
        methods,
    )
    return {
        m: scores(json.loads((folder / m / "metrics.json").read_text()))
        for m in ("tfidf_logreg", "frozen_encoder")
    }


def table(results: dict) -> str:
    lines = [
        "| data | model | accuracy (mean) | macro F1 (mean) | macro F1 per seed |",
        "|---|---|---|---|---|",
    ]
    for name in SETS:
        rows = {k: v for k, v in results.items() if k.startswith(name + "/")}
        models = sorted({k.split("/")[1] for k in rows})
        for model in models:
            runs = [v for k, v in rows.items() if k.split("/")[1] == model]
            acc = sum(r["accuracy"] for r in runs) / len(runs)
            f1 = [r["f1_macro"] for r in runs]
            per_seed = " / ".join(f"{x:.3f}" for x in f1)
            lines.append(f"| {name} | {model} | {acc:.3f} | {sum(f1) / len(f1):.3f} | {per_seed} |")
    return "\n".join(lines)


def write_docs(results: dict, args: argparse.Namespace) -> None:
    from make_results import write_kept_section

    command = "python scripts/heads.py " + " ".join(sys.argv[1:])
    lines = [
        "## Classification heads: model.pooling on three single-label sets",
        "",
        "Written by this command (do not edit by hand); it reuses the runs that earlier calls recorded in",
        "heads.json, so a row may hold other seeds than the command names (the last column lists them):",
        "",
        f"```bash\n{command}\n```",
        "",
        "Fine-tuned all-MiniLM-L6-v2 (`auto` picks `mean` for it: its sentence-transformers pooling) on a 2-core",
        "CPU with automatic precision; test scores of the best checkpoint through `textcls test`; the",
        "baselines (`textcls baseline`) on exactly the same rows. sst2: 4,000 sampled training sentences, 1",
        "epoch; ag_news: 4,000 sampled training rows, 1 epoch; emotions27: GoEmotions comments with exactly",
        "one emotion other than neutral (27 classes; 8,000 sampled training rows, the official validation and",
        "test comments), 3 epochs. Most runs shared the CPU with other jobs: scores do not depend on that,",
        "times would (none are reported).",
        "",
        table(results),
    ]
    write_kept_section("heads", lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--poolings", nargs="+", default=["pooler", "auto"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--out", default=str(ROOT / "benchmark_runs" / "heads"))
    parser.add_argument("--docs", action="store_true", help="write the table into docs/results.md")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = out / "heads.json"
    results = json.loads(record.read_text()) if record.is_file() else {}
    for name in args.sets:
        config = SETS[name]["config"] or str(emotions27(out))
        extra = SETS[name]["args"]
        for seed in args.seeds:
            for pooling in args.poolings:
                key = f"{name}/{pooling}/{seed}"
                if key not in results:
                    results[key] = run_head(out, name, config, extra, pooling, seed)
                    record.write_text(json.dumps(results, indent=2))
                    print(key, results[key], flush=True)
            if f"{name}/tfidf_logreg/{seed}" not in results:
                for method, value in run_baselines(out, name, config, extra, seed).items():
                    results[f"{name}/{method}/{seed}"] = value
                record.write_text(json.dumps(results, indent=2))
    print(table(results))
    if args.docs:
        write_docs(results, args)


if __name__ == "__main__":
    main()
