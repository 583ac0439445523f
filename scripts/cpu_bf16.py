"""What bf16 autocast buys on this CPU: MiniLM training steps and prediction, fp32 against bf16-mixed.

Training: `--steps` AdamW steps (batch 32, 64 tokens, clipping at 1.0) on the sample feedback texts, after
3 warm-up steps. Prediction: the same texts through the model in eval mode (batch 64, each batch padded to
its longest text), and the largest difference of a softmax probability between the two precisions.
Prints a markdown table; run it on a quiet machine (the load average is printed with it).

    python scripts/cpu_bf16.py [--steps 20] [--ckpt lightning_logs/quickstart/version_0/checkpoints/best.ckpt]

With --ckpt, prediction uses that fine-tuned model (a checkpoint or exported folder), whose probabilities
are not all near uniform as a fresh head's are.
"""

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

import torch

from textcls.backbone import load_classifier, load_tokenizer
from textcls.inference import load_predictor
from textcls.precision import cpu_runs_bf16

BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"
DATA = Path(__file__).resolve().parents[1] / "textcls" / "sample_data" / "feedback" / "train.jsonl"


def autocast(bf16: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def train_seconds_per_step(texts, labels, tokenizer, bf16: bool, steps: int) -> float:
    torch.manual_seed(0)
    model = load_classifier(BACKBONE, ["0", "1", "2", "3", "4"]).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    times = []
    for step in range(steps + 3):
        i = (step * 32) % (len(texts) - 32)
        batch = tokenizer(
            texts[i : i + 32], padding=True, truncation=True, max_length=64, return_tensors="pt"
        )
        start = time.perf_counter()
        with autocast(bf16):
            logits = model(**batch).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor(labels[i : i + 32]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if step >= 3:
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


@torch.no_grad()
def predict(model, tokenizer, texts, bf16: bool) -> tuple[torch.Tensor, float]:
    start, out = time.perf_counter(), []
    for i in range(0, len(texts), 64):
        batch = tokenizer(
            texts[i : i + 64], padding=True, truncation=True, max_length=64, return_tensors="pt"
        )
        with autocast(bf16):
            out.append(torch.softmax(model(**batch).logits.float(), -1))
    return torch.cat(out), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--ckpt", help="a fine-tuned checkpoint or exported folder for the prediction part")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    names = sorted({r["label"] for r in rows})
    texts, labels = [r["text"] for r in rows], [names.index(r["label"]) for r in rows]
    tokenizer = load_tokenizer(BACKBONE)
    train = {
        bf16: train_seconds_per_step(texts, labels, tokenizer, bf16, args.steps) for bf16 in (False, True)
    }
    model = load_predictor(args.ckpt).model if args.ckpt else load_classifier(BACKBONE, names).eval()
    predict(model, tokenizer, texts[:64], False)  # warm-up
    (p32, t32), (p16, t16) = (predict(model, tokenizer, texts, bf16) for bf16 in (False, True))
    print(
        f"native bf16: {cpu_runs_bf16()}; torch threads {torch.get_num_threads()}; load {os.getloadavg()[0]:.2f}"
    )
    print("| | fp32 | bf16-mixed | bf16 speed-up |\n|---|---|---|---|")
    print(
        f"| training step (batch 32, 64 tokens) | {train[False]:.3f} s | {train[True]:.3f} s | "
        f"{train[False] / train[True]:.2f}x |"
    )
    print(
        f"| prediction ({len(texts)} texts) | {len(texts) / t32:.0f} texts/s | {len(texts) / t16:.0f} texts/s | "
        f"{t32 / t16:.2f}x |"
    )
    print(
        f"largest probability difference bf16 vs fp32: {(p16 - p32).abs().max():.4f}; labels that differ: "
        f"{int((p16.argmax(1) != p32.argmax(1)).sum())} of {len(texts)}"
    )


if __name__ == "__main__":
    main()
