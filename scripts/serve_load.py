"""Load test of `textcls serve` on 127.0.0.1: throughput and p50/p99 latency of single-text requests at
several concurrencies, for each `--max_batch_size`, on each set of texts.

Each server configuration is started in turn (`python -m textcls serve`, one worker) and stopped after
its cells, so an idle server never competes with the one measured; `--rounds 2` runs the
configurations in the order A B, then B A, so that both see the machine's load alike. Every cell is
bounded by a request count and a time limit. The load average (`os.getloadavg`) is recorded with
every cell: on a shared machine it says what else ran.

    python scripts/serve_load.py --model CKPT \\
        --texts sst2=../shared/data/sst2/validation.csv imdb=../shared/data/imdb/test.csv \\
        --output docs/benchmark_results/serve_load.json
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    model: str, max_batch_size: int, log: Path, extra: list[str]
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "textcls", "serve", "--model", model, "--port", str(port)]
    command += ["--max_batch_size", str(max_batch_size), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    with open(log, "a") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 600
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}; see {log}")
        try:
            if requests.get(f"{url}/health", timeout=5).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"serve was not ready after 600 s; see {log}")


def run_cell(url: str, texts: list[str], concurrency: int, max_requests: int, seconds: float) -> dict:
    """`concurrency` clients, each sending one text per request (texts in turn) until `max_requests`
    were sent or `seconds` passed; the latency of every answered request."""
    lock, sent, latencies, failures = threading.Lock(), [0], [], [0]
    deadline = time.monotonic() + seconds

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            with lock:
                if sent[0] >= max_requests:
                    return
                i = sent[0]
                sent[0] += 1
            start = time.perf_counter()
            response = session.post(f"{url}/predict", json={"texts": [texts[i % len(texts)]]}, timeout=300)
            took = time.perf_counter() - start
            with lock:
                if response.status_code == 200:
                    latencies.append(took)
                else:
                    failures[0] += 1

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {
        "answered": len(latencies),
        "failed": failures[0],
        "seconds": wall,
        "latencies": latencies,
        "load_1min": [load_before, os.getloadavg()[0]],
    }


def summary(cells: list[dict]) -> dict:
    """Cells of one configuration pooled over rounds: requests/s, p50 and p99 latency (ms)."""
    latencies = np.concatenate([c["latencies"] for c in cells])
    return {
        "requests_per_s": sum(c["answered"] for c in cells) / sum(c["seconds"] for c in cells),
        "p50_ms": float(np.percentile(latencies, 50) * 1000),
        "p99_ms": float(np.percentile(latencies, 99) * 1000),
        "answered": int(sum(c["answered"] for c in cells)),
        "failed": int(sum(c["failed"] for c in cells)),
        "load_1min": [c["load_1min"] for c in cells],
    }


def markdown(table: dict, names: list[str], concurrencies: list[int], sizes: list[int]) -> str:
    """One row per set of texts and concurrency: each configuration's requests/s and p50/p99 latency
    (ms), the throughput of the last configuration over the first's, and the requests that failed
    (LitServe answers 504 to a request that waited longer than its timeout) per configuration."""
    head = ["texts", "concurrency"]
    for size in sizes:
        head += [f"mbs {size}: req/s", "p50 ms", "p99 ms"]
    head += ["speed-up", "failed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        for concurrency in concurrencies:
            rows = [table[f"{name} c={concurrency} max_batch_size={size}"] for size in sizes]
            cells = [name, str(concurrency)]
            for row in rows:
                cells += [f"{row['requests_per_s']:.1f}", f"{row['p50_ms']:.0f}", f"{row['p99_ms']:.0f}"]
            cells.append(f"{rows[-1]['requests_per_s'] / rows[0]['requests_per_s']:.1f}x")
            cells.append(" / ".join(str(row["failed"]) for row in rows))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_texts(spec: str, count: int) -> tuple[str, list[str]]:
    name, _, path = spec.partition("=")
    texts = pd.read_csv(path)["text"].astype(str)
    return name, texts.sample(min(count, len(texts)), random_state=0).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an exported folder or a checkpoint")
    parser.add_argument("--texts", nargs="+", required=True, help="NAME=CSV with a text column")
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--max_batch_sizes", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--requests", type=int, default=600, help="most requests per cell")
    parser.add_argument("--seconds", type=float, default=30, help="most seconds per cell")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds, the configurations' order reversed each round"
    )
    parser.add_argument("--serve_args", default="", help='more `textcls serve` options, e.g. "--threads 1"')
    parser.add_argument("--output", default="serve_load.json")
    args = parser.parse_args()

    sets = dict(read_texts(spec, 1000) for spec in args.texts)
    log = Path(args.output).with_suffix(".log")
    cells = []
    for round_ in range(args.rounds):
        order = args.max_batch_sizes if round_ % 2 == 0 else args.max_batch_sizes[::-1]
        for max_batch_size in order:
            proc, url = start_server(args.model, max_batch_size, log, args.serve_args.split())
            try:
                run_cell(url, sets[next(iter(sets))], 4, 40, 30)  # warm-up
                for name, texts in sets.items():
                    for concurrency in args.concurrency:
                        cell = run_cell(url, texts, concurrency, args.requests, args.seconds)
                        cell |= {"round": round_, "max_batch_size": max_batch_size, "texts": name}
                        cell["concurrency"] = concurrency
                        cells.append(cell)
                        rate = cell["answered"] / cell["seconds"]
                        print(
                            f"round {round_} max_batch_size {max_batch_size} {name} c={concurrency}: "
                            f"{rate:.1f} req/s, load {cell['load_1min']}",
                            flush=True,
                        )
            finally:
                proc.terminate()
                proc.wait(120)

    table = {}
    for name in sets:
        for concurrency in args.concurrency:
            for max_batch_size in args.max_batch_sizes:
                picked = [
                    c
                    for c in cells
                    if (c["texts"], c["concurrency"], c["max_batch_size"])
                    == (name, concurrency, max_batch_size)
                ]
                table[f"{name} c={concurrency} max_batch_size={max_batch_size}"] = summary(picked)
    kept = [{k: v for k, v in c.items() if k != "latencies"} for c in cells]
    Path(args.output).write_text(json.dumps({"args": vars(args), "summary": table, "cells": kept}, indent=1))
    print(markdown(table, list(sets), args.concurrency, args.max_batch_sizes))


if __name__ == "__main__":
    main()
