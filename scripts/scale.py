"""Memory and speed of `check-data`, `fit` and `predict` as the corpus grows (issue 25's targets).

Writes a synthetic corpus of real SST-2 sentences (../shared/data/sst2, sampled with replacement, each
row given its id and a random suffix so that no two rows are the same; the smaller corpus is the first
rows of the larger), builds a tiny random BERT (2 layers, hidden 64) on the real MiniLM WordPiece
vocabulary so that the model is not what is measured, and runs the real commands as subprocesses:

    check-data                      every row read, split, checked
    fit                             one epoch capped at --limit_train_batches steps (and as many
                                    validation batches), after reading, splitting and tokenizing all rows
    predict                         every row classified and written

For each it samples the whole process tree's memory every 0.1 s from /proc: private memory (`RssAnon`,
what the process cannot give back; pages of memory-mapped files are left out, because the kernel can
drop them) and the resident set (`VmRSS`, mapped file pages included). `predict` also reports rows per
second and the time to the first row written.

    python scripts/scale.py --rows 200000 2000000 --label after
    python scripts/scale.py --rows 200000 2000000 --label before --textcls /path/to/old/checkout

The results go to <work_dir>/scale_<label>.json; `--table` prints the Markdown table of every JSON there.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sst2" / "train.csv"
SUFFIXES = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike".split()


def write_corpus(folder: Path, rows: int, seed: int = 0) -> dict[str, Path]:
    """`train.csv` (id,text,label) and `predict.csv` (id,text) of `rows` rows each; for a given seed, a
    smaller corpus is the first rows of a larger one."""
    source = pd.read_csv(SST2, dtype=str, keep_default_na=False)
    texts, labels = source["text"].tolist(), source["label"].tolist()
    rng = random.Random(seed)
    train, predict = folder / f"train_{rows}.csv", folder / f"predict_{rows}.csv"
    if train.exists() and predict.exists():
        return {"train": train, "predict": predict}
    with open(train, "w") as t, open(predict, "w") as p:
        t.write("id,text,label\n"), p.write("id,text\n")
        for i in range(rows):
            j = rng.randrange(len(texts))
            text = f"{texts[j]} {rng.choice(SUFFIXES)} {i}".replace('"', "'")
            t.write(f'r{i},"{text}",{labels[j]}\n')
            k = rng.randrange(len(texts))
            other = f"{texts[k]} {rng.choice(SUFFIXES)} {i}".replace('"', "'")
            p.write(f'r{i},"{other}"\n')
    return {"train": train, "predict": predict}


def build_backbone(folder: Path) -> Path:
    """A random 2-layer, 64-wide BERT with MiniLM's 30,522-word vocabulary."""
    if (folder / "config.json").exists():
        return folder
    import torch
    from transformers import BertConfig, BertModel

    from textcls.backbone import load_tokenizer

    tokenizer = load_tokenizer("sentence-transformers/all-MiniLM-L6-v2")
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tree_memory(pid: int) -> tuple[int, int]:
    """(RssAnon, VmRSS) in bytes summed over `pid` and its descendants (tokenizer or loader processes)."""
    anon = rss = 0
    for p in [pid, *descendants(pid)]:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("RssAnon:"):
                anon += int(line.split()[1]) * 1024
            elif line.startswith("VmRSS:"):
                rss += int(line.split()[1]) * 1024
    return anon, rss


def descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return [d for c in children for d in (c, *descendants(c))]


def measure(cmd: list[str], env: dict, watch: Path | None = None, log: Path | None = None) -> dict:
    """Run `cmd`, sampling its memory; with `watch`, also when a file there first holds a data row."""
    start = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        peak = {"anon": 0, "rss": 0, "first_row_s": None}

        def sample() -> None:
            while proc.poll() is None:
                anon, rss = tree_memory(proc.pid)
                peak["anon"], peak["rss"] = max(peak["anon"], anon), max(peak["rss"], rss)
                if watch is not None and peak["first_row_s"] is None and first_row_written(watch):
                    peak["first_row_s"] = time.perf_counter() - start
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_anon_mb": round(peak["anon"] / 2**20),
        "peak_rss_mb": round(peak["rss"] / 2**20),
        "first_row_s": None if peak["first_row_s"] is None else round(peak["first_row_s"], 1),
    }


def first_row_written(folder: Path) -> bool:
    # the writer may write under a temporary name and rename at the end: any file with a data row counts
    for f in folder.glob("*predictions*"):
        try:
            with open(f, "rb") as handle:
                if handle.read(4096).count(b"\n") >= 2:
                    return True
        except OSError:
            continue
    return False


def write_config(folder: Path, backbone: Path, train: Path, cache: Path, eval_batch_size: int) -> Path:
    config = folder / "scale.yaml"
    config.write_text(
        json.dumps(
            {
                "model": {"model_name_or_path": str(backbone)},
                "data": {
                    "train_file": str(train),
                    "id_column": "id",
                    "max_length": 64,
                    "batch_size": 32,
                    "eval_batch_size": eval_batch_size,
                    "cache_dir": str(cache),
                },
                "trainer": {"max_epochs": 1, "logger": False, "enable_progress_bar": False},
            }
        )
    )
    return config


def command_args(
    command: str, folder: Path, config: Path, args: argparse.Namespace, predict: Path
) -> list[str]:
    if command == "check-data":
        return ["--output_dir", str(folder / "check")]
    if command == "fit":
        limit = str(args.limit_train_batches)
        return [
            "--trainer.limit_train_batches", limit, "--trainer.limit_val_batches", limit,
            "--checkpoint.dirpath", str(folder / "checkpoints"),
        ]  # fmt: skip
    ckpt = Path(args.ckpt) if args.ckpt else folder / "checkpoints" / "last.ckpt"
    out = folder / "out"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    out.mkdir()
    return [
        "--ckpt_path", str(ckpt), "--data.predict_file", str(predict),
        "--prediction.output_path", str(out / "predictions.csv"),
    ]  # fmt: skip


def run_rows(rows: int, args: argparse.Namespace, env: dict, save) -> None:
    """Measure each of `args.commands` on the corpus of `rows` rows, from a cold token cache."""
    work = Path(args.work_dir)
    files = write_corpus(work, rows)
    backbone = build_backbone(work / "backbone")
    folder = work / f"{args.label}_{rows}"
    folder.mkdir(parents=True, exist_ok=True)
    cache = folder / "cache"
    config = write_config(folder, backbone, files["train"], cache, args.eval_batch_size)
    for command in args.commands:
        subprocess.run(["rm", "-rf", str(cache)], check=True)
        extra = command_args(command, folder, config, args, files["predict"])
        load = os.getloadavg()[0]
        cmd = [sys.executable, "-m", "textcls", command, "--config", str(config), *extra]
        watch = folder / "out" if command == "predict" else None
        result = measure(cmd, env, watch=watch, log=folder / f"{command}.log")
        result["load_average"] = round((load + os.getloadavg()[0]) / 2, 1)
        if command == "predict":
            result["rows_per_s"] = round(rows / result["seconds"])
            result["cache_mb"] = round(sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 2**20)
        save(rows, command, result)


def table(work: Path) -> str:
    lines = [
        "| code | rows | command | peak private (RssAnon) MB | peak RSS MB | wall s | load | predict rows/s | first row s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for path in sorted(work.glob("scale_*.json")):
        saved = json.loads(path.read_text())
        for rows, commands in saved["results"].items():
            for command, r in commands.items():
                rate = r.get("rows_per_s", "")
                first = r.get("first_row_s") or ""
                lines.append(
                    f"| {saved['label']} | {int(rows):,} | {command} | {r['peak_rss_anon_mb']:,} | "
                    f"{r['peak_rss_mb']:,} | {r['seconds']} | {r.get('load_average', '')} | {rate} | {first} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 2_000_000])
    parser.add_argument("--label", default="after", help="names the results (e.g. before/after)")
    parser.add_argument("--textcls", help="a textcls checkout to measure instead of this one")
    parser.add_argument("--work_dir", default=str(ROOT / "lightning_logs" / "scale"))
    parser.add_argument("--commands", nargs="+", default=["check-data", "fit", "predict"])
    parser.add_argument("--limit_train_batches", type=int, default=200)
    parser.add_argument("--eval_batch_size", type=int, default=256)
    parser.add_argument("--ckpt", help="predict with this checkpoint instead of the fit's own")
    parser.add_argument("--table", action="store_true", help="print the table of the saved results")
    args = parser.parse_args()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    if args.table:
        print(table(work))
        return
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": args.textcls or str(ROOT)}
    path = work / f"scale_{args.label}.json"
    saved = json.loads(path.read_text()) if path.exists() else {"label": args.label, "results": {}}

    def save(rows: int, command: str, result: dict) -> None:
        saved["results"].setdefault(str(rows), {})[command] = result
        path.write_text(json.dumps(saved, indent=1))
        print(json.dumps({rows: {command: result}}), flush=True)

    for rows in args.rows:
        run_rows(rows, args, env, save)
    print(table(work))


if __name__ == "__main__":
    main()
