"""Compare the ways of reading long documents on IMDB: head, tail, head_tail and chunks (mean and max
pooling) at 128 tokens, against head at 512, with fine-tuned MiniLM, through the real CLI.

For each seed and variant: `textcls fit` (wall time and CPU share), then the best checkpoint's test
accuracy and prediction time over the test reviews through `textcls.inference` (what `predict`, the
exported folder and the app run), in this process. A chunked model is trained once and scored with
both poolings: training reads each window on its own, so the pooling only acts when texts are scored
(with one epoch, the best checkpoint is the last, whatever the pooling). Samples the reviews once
from ../shared/data/imdb into the output folder (git-ignored), so every variant sees the same texts.

    python scripts/long_documents.py [--train 2000] [--test 1000] [--seeds 1 2] [--variants head tail]

Writes <out>/long_documents.json and prints a markdown table; `--docs` also writes it as the "Long
documents" section of docs/results.md (which scripts/make_results.py keeps).
"""

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
IMDB = ROOT.parent / "shared" / "data" / "imdb"
VARIANTS = {
    "head": {},
    "tail": {"data": {"truncation": "tail"}},
    "head_tail": {"data": {"truncation": "head_tail"}},
    "chunks": {"data": {"long_text": "chunks"}},
    "head_512": {"data": {"max_length": 512, "batch_size": 16}},
}


def base_config(data_dir: Path, epochs: int) -> dict:
    return {
        "model": {"model_name_or_path": "sentence-transformers/all-MiniLM-L6-v2", "learning_rate": 1.0e-4},
        "data": {
            "train_file": str(data_dir / "train.csv"),
            "test_file": str(data_dir / "test.csv"),
            "val_fraction": 0.1,
            "max_length": 128,
            "batch_size": 32,
        },
        "trainer": {"max_epochs": epochs, "precision": "32-true", "log_every_n_steps": 10},
    }


def sample_reviews(out: Path, n_train: int, n_test: int) -> Path:
    """The same random reviews for every variant (seed 0), written once."""
    folder = out / "data"
    if not (folder / "test.csv").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", n_train), ("test", n_test)):
            frame = pd.read_csv(IMDB / f"{split}.csv")
            frame.sample(n=n, random_state=0).to_csv(folder / f"{split}.csv", index=False)
    return folder


def run(args: list[str], cwd: Path) -> tuple[float, float]:
    """Run `textcls ARGS`; its wall time and CPU share (CPU seconds / wall / cores)."""
    print("$ textcls " + " ".join(shlex.quote(a) for a in args), flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "textcls", *args], cwd=cwd, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu / wall / (os.cpu_count() or 1)


def newest(folder: Path, pattern: str) -> Path:
    return max(folder.glob(pattern), key=os.path.getmtime)


def measure(variant: str, seed: int, out: Path, data_dir: Path, epochs: int) -> list[dict]:
    config = base_config(data_dir, epochs)
    for section, values in VARIANTS[variant].items():
        config[section].update(values)
    path = out / f"{variant}.yaml"  # the run's log folder: <out>/lightning_logs/<variant>/version_N
    path.write_text(yaml.safe_dump(config))
    seed_arg = ["--seed_everything", str(seed)]
    fit_s, fit_cpu = run(["fit", "--config", path.name, *seed_arg], out)
    ckpt = newest(out / "lightning_logs" / variant, "version_*/checkpoints/best.ckpt")
    test = pd.read_csv(data_dir / "test.csv")
    poolings = ("mean", "max") if config["data"].get("long_text") == "chunks" else (None,)
    rows = []
    for pooling in poolings:
        predict_s, predicted = predict(ckpt, test["text"].tolist(), pooling)
        name = f"{variant}_{pooling}" if pooling else variant
        correct = predicted == test["label"].astype(str).to_numpy()
        rows.append(
            {
                "variant": name,
                "seed": seed,
                "accuracy": round(float(correct.mean()), 4),
                "fit_s": round(fit_s, 1),
                "fit_cpu_share": round(fit_cpu, 2),
                "predict_s": round(predict_s, 1),
                "predict_texts_per_s": round(len(test) / predict_s, 1),
            }
        )
    return rows


def predict(ckpt: Path, texts: list[str], pooling: str | None) -> tuple[float, np.ndarray]:
    """Seconds to classify `texts` with the checkpoint (through `textcls.inference`), and the labels."""
    from textcls.inference import load_predictor

    predictor = load_predictor(ckpt)
    if pooling:
        predictor.hparams["model"]["chunk_pooling"] = pooling
    torch.set_num_threads(os.cpu_count() or 1)
    start = time.perf_counter()
    probs = predictor.predict_probs(texts, batch_size=64)
    seconds = time.perf_counter() - start
    return seconds, np.asarray(predictor.label_names)[probs.argmax(-1)]


def table(results: list[dict]) -> str:
    frame = pd.DataFrame(results)
    lines = [
        "| variant | test accuracy per seed | mean | fit s (mean) | fit CPU share | predict texts/s (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for variant, rows in frame.groupby("variant", sort=False):
        accs = " / ".join(f"{a:.4f}" for a in rows["accuracy"])
        lines.append(
            f"| {variant} | {accs} | {rows['accuracy'].mean():.4f} | {rows['fit_s'].mean():.0f} | "
            f"{rows['fit_cpu_share'].mean():.2f} | {rows['predict_texts_per_s'].mean():.1f} |"
        )
    return "\n".join(lines)


def write_docs(results: list[dict], args: argparse.Namespace) -> None:
    """Replace the Long documents section of docs/results.md (after make_results.py's marker)."""
    from make_results import write_kept_section

    command = (
        f"python scripts/long_documents.py --train {args.train} --test {args.test} --epochs {args.epochs}"
    )
    command += " --seeds " + " ".join(map(str, args.seeds)) + " --docs"
    means = pd.DataFrame(results).groupby("variant")[["accuracy", "fit_s", "predict_texts_per_s"]].mean()
    deltas = [
        f"- {v} vs {ref}: {100 * (means.accuracy[v] - means.accuracy[ref]):+.1f} accuracy points, "
        f"training time x{means.fit_s[v] / means.fit_s[ref]:.2f}, prediction speed "
        f"x{means.predict_texts_per_s[v] / means.predict_texts_per_s[ref]:.2f}"
        for v, ref in [(v, "head") for v in ("tail", "head_tail", "chunks_mean", "chunks_max", "head_512")]
        + [(v, "head_512") for v in ("chunks_mean", "chunks_max")]
        if v in means.index and ref in means.index
    ]
    section = [
        "## Long documents: IMDB at 128 tokens",
        "",
        "Written by this command (do not edit by hand):",
        "",
        f"```bash\n{command}\n```",
        "",
        f"{args.train} IMDB training reviews (10% of them the validation split) and {args.test} test reviews,",
        f"sampled once from `../shared/data/imdb`; fine-tuned MiniLM, {args.epochs} epoch, fp32 on a 2-core CPU,",
        "learning rate 1e-4, batch 32 (16 at 512). Test accuracy and prediction speed: the best checkpoint",
        "through `textcls.inference` over the test reviews. A chunked model is trained once and scored with",
        "both poolings (training reads windows one by one; the pooling acts only when texts are scored).",
        "",
        table(results),
        "",
        "Means over the seeds:",
        "",
        *deltas,
    ]
    write_kept_section("long_documents", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=1000, help="training reviews (10%% become validation)")
    parser.add_argument("--test", type=int, default=1000, help="test reviews")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=ROOT / "lightning_logs" / "long_documents")
    parser.add_argument("--docs", action="store_true", help="write the table into docs/results.md")
    parser.add_argument(
        "--report", action="store_true", help="measure nothing: the tables of <out>'s results"
    )
    args = parser.parse_args()
    if not IMDB.is_dir():
        sys.exit(f"no IMDB data at {IMDB}")
    args.out.mkdir(parents=True, exist_ok=True)
    data_dir = sample_reviews(args.out, args.train, args.test)
    record = args.out / "long_documents.json"
    results = json.loads(record.read_text()) if record.is_file() else []
    for seed in [] if args.report else args.seeds:
        for variant in args.variants:
            names = {variant, f"{variant}_mean", f"{variant}_max"}
            results = [r for r in results if not (r["variant"] in names and r["seed"] == seed)]
            results += measure(variant, seed, args.out, data_dir, args.epochs)
            record.write_text(json.dumps(results, indent=2))
            print(table(results), flush=True)
    order = {
        v: i for i, v in enumerate(["head", "tail", "head_tail", "chunks_mean", "chunks_max", "head_512"])
    }
    results.sort(key=lambda r: (order[r["variant"]], r["seed"]))
    print(f"\n{args.train} training reviews ({args.epochs} epoch), {args.test} test reviews\n")
    print(table(results))
    if args.docs:
        write_docs(results, args)
    print(
        "\nmean accuracy:",
        {v: round(float(np.mean([r["accuracy"] for r in results if r["variant"] == v])), 4) for v in order},
    )


if __name__ == "__main__":
    main()
