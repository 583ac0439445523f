"""CPU speed of PyTorch vs ONNX Runtime on an exported folder that holds model.onnx.

python scripts/bench_onnx.py --model exported/quickstart --texts textcls/sample_data/feedback/test.jsonl
"""

import argparse
import time

import torch

from textcls.data import read_table
from textcls.export import ONNX_FILE, onnx_probs, onnx_session
from textcls.inference import load_predictor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--texts", required=True)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    texts = read_table(args.texts)["text"].astype(str).tolist()
    predictor = load_predictor(args.model)
    session = onnx_session(predictor.source / ONNX_FILE)
    agree = (
        predictor.predict_probs(texts).argmax(-1) == onnx_probs(session, predictor, texts).argmax(-1)
    ).mean()
    print(f"{len(texts)} texts, {torch.get_num_threads()} torch threads, label agreement {agree:.2%}")
    print("| batch size | PyTorch texts/s | ONNX Runtime texts/s |\n|---|---|---|")
    for bs in args.batch_sizes:
        speeds = []
        for run in (
            lambda bs=bs: predictor.predict_probs(texts, bs),
            lambda bs=bs: onnx_probs(session, predictor, texts, bs),
        ):
            best = min(_timed(run) for _ in range(args.repeats))
            speeds.append(len(texts) / best)
        print(f"| {bs} | {speeds[0]:.0f} | {speeds[1]:.0f} |")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
