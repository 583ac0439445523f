"""Shipped settings against `textcls tune`'s best.yaml: a fit, a validation of its best checkpoint and a test
of it for each, on the same data with the same overrides (docs/results.md, "tune" section).

    python scripts/tune_compare.py --best lightning_logs/sst2_minilm/tune/best.yaml --output_dir D \\
        -- --config configs/sst2_minilm.yaml --data.val_fraction 0.01

Everything after `--` is the config and overrides both fits get; `--seeds N` repeats each with
seed_everything 42, 43, ... (from `--first_seed`); `--settings shipped` (or `tuned`) runs one side only (the shipped one can
run while the search does). Adds its rows to compare.csv in D and prints them.
"""

import argparse
from pathlib import Path

import pandas as pd

from textcls.experiments.runs import best_checkpoint, fit, run_logger, test
from textcls.launch import make_cli
from textcls.quiet import quiet_libraries


def evaluate(args: list[str], folder: Path, run: str) -> dict:
    """Fit, then validate and test the best checkpoint: validation and test accuracy and macro F1."""
    logger = run_logger(folder.parent, folder.name, run)
    checkpoint = best_checkpoint(fit([*args, logger]))
    validate = make_cli(["validate", *args, logger, "--ckpt_path", str(checkpoint)])
    val = {k: float(v) for k, v in validate.trainer.callback_metrics.items()}
    metrics = test([*args, logger, "--report.explain_mistakes", "0"], checkpoint)
    return {
        "val_accuracy": val["val/acc"],
        "val_f1_macro": val["val/f1_macro"],
        "test_accuracy": metrics["accuracy"],
        "test_f1_macro": metrics["f1_macro"],
        "train_seconds": metrics.get("train_seconds"),
        "run": str(folder / run),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--best", help="best.yaml written by textcls tune (for the tuned settings)")
    parser.add_argument("--settings", nargs="+", choices=("shipped", "tuned"), default=["shipped", "tuned"])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first_seed", type=int, default=42)
    parser.add_argument("args", nargs="+", help="after --: the config and overrides")
    options = parser.parse_args()
    quiet_libraries()
    folder = Path(options.output_dir)
    table = folder / "compare.csv"
    rows = pd.read_csv(table).to_dict("records") if table.is_file() else []
    for seed in range(options.first_seed, options.first_seed + options.seeds):
        common = [*options.args, "--seed_everything", str(seed)]
        for name in options.settings:
            extra = ["--config", options.best] if name == "tuned" else []
            rows.append(
                {"settings": name, "seed": seed, **evaluate([*common, *extra], folder, f"{name}_{seed}")}
            )
            pd.DataFrame(rows).to_csv(table, index=False)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
