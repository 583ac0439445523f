"""What pure half precision does to fine-tuning: the same short run of MiniLM on the sample feedback data
in 32-true, bf16-mixed, bf16-true and 16-true (Lightning's Trainer directly: `textcls fit` refuses the
last two), on CPU.

For each precision: the share of encoder weights that the run left unchanged, whether any weight is
NaN, the mean training loss of the last steps, test accuracy (in that precision) and seconds per step.

    python scripts/half_precision.py [--steps 24] [--learning_rate 5e-5] [--backbone NAME_OR_PATH]
"""

import argparse
import math
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from textcls.data import TextClassificationData
from textcls.model import TextClassifier

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "textcls" / "sample_data" / "feedback"
PRECISIONS = ["32-true", "bf16-mixed", "bf16-true", "16-true"]


class Losses(Callback):
    def __init__(self):
        self.values = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.values.append(outputs["loss"].item())


def encoder_weights(model: TextClassifier) -> dict[str, torch.Tensor]:
    """The backbone's parameters without the freshly initialised classification head."""
    return {n: p.detach().float().clone() for n, p in model.model.named_parameters() if not model._is_head(n)}


def run(precision: str, args: argparse.Namespace) -> dict:
    L.seed_everything(0)
    data = TextClassificationData(
        train_file=str(DATA / "train.jsonl"),
        test_file=str(DATA / "test.jsonl"),
        model_name_or_path=args.backbone,
        max_length=64,
        batch_size=16,
    )
    model = TextClassifier(args.backbone, data.label_names, learning_rate=args.learning_rate)
    before = encoder_weights(model)
    losses = Losses()
    trainer = L.Trainer(
        accelerator="cpu",
        precision=precision,
        gradient_clip_val=1.0,  # as textcls runs
        max_steps=args.steps,
        limit_val_batches=0,
        callbacks=[losses],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    after = encoder_weights(model)
    unchanged = sum(int((before[n] == after[n]).sum()) for n in before)
    total = sum(t.numel() for t in before.values())
    [test] = trainer.test(model, datamodule=data, verbose=False)
    last = losses.values[-5:]
    return {
        "precision": precision,
        "unchanged": unchanged / total,
        "nan": any(bool(t.isnan().any()) for t in after.values()),
        "loss": sum(last) / len(last),
        "acc": test["test/acc"],
        "s_per_step": seconds / args.steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--backbone", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--precisions", nargs="+", default=PRECISIONS)
    args = parser.parse_args()
    print(f"{args.backbone}, {args.steps} steps at lr {args.learning_rate}, batch 16, 64 tokens, CPU\n")
    print("| precision | encoder weights unchanged | NaN weights | train loss (last 5) | test acc | s/step |")
    print("|---|---|---|---|---|---|")
    for precision in args.precisions:
        r = run(precision, args)
        loss = f"{r['loss']:.3f}" if math.isfinite(r["loss"]) else str(r["loss"])
        print(
            f"| {precision} | {r['unchanged']:.1%} | {'yes' if r['nan'] else 'no'} | {loss} | "
            f"{r['acc']:.2f} | {r['s_per_step']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
