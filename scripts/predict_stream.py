"""`textcls predict` over a large file: time to the first written row, rows per second and peak memory.

Writes a synthetic corpus (real SST-2 sentences from `../shared/data`, sampled with replacement, each with a
row id and a random suffix so rows differ), builds a tiny random BERT (2 layers, hidden 64, MiniLM's
tokenizer) so that the model is not what is measured, trains it for a few batches once, then runs
`python -m textcls predict` from the checkpoint as a child process and samples, every 0.1 s, its
`RssAnon` and `VmRSS` (/proc/PID/status) and the size of the output file (or its temporary name).

    python scripts/predict_stream.py --rows 200000 --work /tmp/pred_bench --root .          # this checkout
    python scripts/predict_stream.py --rows 200000 --work /tmp/pred_bench --root ../main    # another one
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(os.environ.get("TEXTCLS_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def make_corpus(path: Path, rows: int, seed: int = 0) -> None:
    """`id,text`: SST-2 sentences drawn with replacement, each with a random 3-word suffix."""
    rng = np.random.default_rng(seed)
    sentences = pd.read_csv(SHARED / "sst2" / "train.csv")["text"].to_numpy()
    words = np.array("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split())
    drawn = sentences[rng.integers(0, len(sentences), rows)]
    suffix = [" ".join(w) for w in words[rng.integers(0, len(words), (rows, 3))]]
    texts = [f"{s} {x}" for s, x in zip(drawn, suffix, strict=True)]
    pd.DataFrame({"id": np.arange(rows), "text": texts}).to_csv(path, index=False)


def make_backbone(folder: Path) -> None:
    """A random 2-layer BERT of width 64 with MiniLM's WordPiece tokenizer (the one scale.py measures)."""
    from scale import build_backbone  # scripts/ is on the path of a script run from it

    build_backbone(folder)


def textcls(root: Path, args: list[str], cwd: Path, threads: int = 1) -> subprocess.Popen:
    # one intra-op thread by default: on a shared machine, comparisons do not hinge on how threads contend
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(root.resolve()),
        "OMP_NUM_THREADS": str(threads),
    }
    return subprocess.Popen([sys.executable, "-m", "textcls", *args], cwd=cwd, env=env)


def status_kb(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {k: int(fields[k].split()[0]) for k in ("RssAnon", "VmRSS")}


def has_a_row(out: Path) -> bool:
    """Whether the output file, or its temporary name while it is written, holds a header and a row."""
    for f in [out, *out.parent.glob(f".{out.name}.tmp*")]:
        try:
            with open(f, "rb") as handle:
                if handle.read(1 << 16).count(b"\n") >= 2:
                    print(f"first row seen in {f} ({f.stat().st_size} bytes)", file=sys.stderr)
                    return True
        except FileNotFoundError:
            continue
    return False


def measure(root: Path, work: Path, out: Path, threads: int) -> dict:
    """Run predict once, sampling memory and the output file."""
    args = ["predict", "--config", str(work / "predict.yaml"), "--ckpt_path", str(work / "model.ckpt")]
    args += ["--data.cache_dir", str(work / f"cache_{time.time_ns()}"), "--prediction.output_path", str(out)]
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = textcls(root, args, work, threads)
    peak = {"RssAnon": 0, "VmRSS": 0}
    first_row = None
    while proc.poll() is None:
        try:
            now = status_kb(proc.pid)
        except (FileNotFoundError, ProcessLookupError, KeyError):  # gone, or a zombie
            break
        peak = {k: max(peak[k], now[k]) for k in peak}
        if first_row is None and has_a_row(out):
            first_row = time.perf_counter() - start
        time.sleep(0.1)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"predict failed ({proc.returncode})")
    rows = len(pd.read_csv(out, usecols=["id"]))
    return {
        "rows": rows,
        "wall_s": round(wall, 1),
        "rows_per_s": round(rows / wall),
        "first_row_s": round(first_row if first_row is not None else wall, 1),
        "peak_rss_anon_mb": round(peak["RssAnon"] / 1024),
        "peak_rss_mb": round(peak["VmRSS"] / 1024),
        "threads": threads,
        "load_avg": os.getloadavg(),
    }


def prepare(work: Path, rows: int, root: Path) -> None:
    """The corpus, the backbone, a config and a checkpoint trained for 20 batches (once per folder)."""
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "predict.csv").exists():
        make_corpus(work / "predict.csv", rows)
    if not (work / "backbone").exists():
        make_backbone(work / "backbone")
    data = {"max_length": 64, "batch_size": 32}
    fit = {
        "model": {"model_name_or_path": str(work / "backbone")},
        "data": {
            "train_file": str(SHARED / "sst2" / "train.csv"),
            "val_file": str(SHARED / "sst2" / "validation.csv"),
        }
        | data,
        "trainer": {"max_epochs": 1, "limit_train_batches": 20, "precision": "32-true", "logger": False},
    }
    (work / "fit.yaml").write_text(json.dumps(fit))
    predict = {"data": {"predict_file": str(work / "predict.csv"), "id_column": "id"} | data}
    (work / "predict.yaml").write_text(json.dumps(predict | {"trainer": {"logger": False}}))
    if not (work / "model.ckpt").exists():
        fit = ["fit", "--config", "fit.yaml", "--data.cache_dir", str(work / "fit_cache")]
        if textcls(root, fit, work).wait():
            raise SystemExit("fit failed")
        (work / "checkpoints" / "best.ckpt").rename(work / "model.ckpt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument(
        "--work", type=Path, required=True, help="Folder for the corpus, backbone and checkpoint."
    )
    parser.add_argument("--root", type=Path, default=Path("."), help="The textcls checkout to run.")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the predict process.")
    parser.add_argument(
        "--out", type=Path, default=None, help="The predictions file (default WORK/pred.csv)."
    )
    args = parser.parse_args()
    prepare(args.work, args.rows, args.root)
    result = measure(args.root, args.work, (args.out or args.work / "pred.csv").resolve(), args.threads)
    print(json.dumps({"root": str(args.root.resolve()), **result}))


if __name__ == "__main__":
    main()
