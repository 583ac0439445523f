"""textcls vs the Hugging Face Trainer, the textbook recipe, a bare PyTorch loop, and `pipeline` (issue 7).

Every variant trains on the same rows, backbone, batch size, learning rate, epochs and seed, in its own
child process (so peak memory is per variant). Throughput counts the training loop only (data loading
included; model loading, tokenization and validation excluded), the same way for every variant:
1. textcls: the real CLI, `python -m textcls fit` with default settings (its ThroughputLogger's summary);
2. hf_trainer: `transformers.Trainer` with `DataCollatorWithPadding` and random sampling;
3. textbook: `padding="max_length"` tokenization + Trainer (as in the typical BERT tutorial);
4. bare_loop: AdamW + the same schedule over textcls's own batches (the floor: no framework).
Prediction: textcls's predict path (Lightning `Trainer.predict` + PredictionWriter), the exported-folder
predictor (`textcls.inference`, what the app runs), each also with `quantize int8`, a bare loop (the
floor: tokenize all, sort by length, pad per batch, `torch.inference_mode`, softmax) and
`transformers.pipeline("text-classification")` with its default batch size, on textcls's fine-tuned
weights exported with `textcls export` (or `--model_dir`, skipping training), on the validation texts.

    PYTHONPATH=. python scripts/benchmark.py --out results.json              # IMDB, then SST-2
    PYTHONPATH=. python scripts/benchmark.py --dataset sst2 --train_rows 64 --val_rows 32   # a smoke run
    PYTHONPATH=. python scripts/benchmark.py --dataset sst2 --model_dir exported/sst2 \
        --variants textcls_predict textcls_predict_int8 predictor predictor_int8 bare_predict pipeline
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"
SHARED = Path(os.environ.get("TEXTCLS_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
# train_rows/val_rows sampled with the seed; val_file None: validation rows come from the train file too
DATASETS = {
    "imdb": {
        "train_file": SHARED / "imdb" / "train.csv",
        "val_file": None,
        "train_rows": 256,
        "val_rows": 128,
        "max_length": 512,
        "batch_size": 16,
        "textbook_length": 512,
    },
    "sst2": {
        "train_file": SHARED / "sst2" / "train.csv",
        "val_file": SHARED / "sst2" / "validation.csv",
        "train_rows": 4000,
        "val_rows": None,
        "max_length": 64,
        "batch_size": 32,
        "textbook_length": 128,
    },
}
TRAIN_VARIANTS = ("textcls", "hf_trainer", "textbook", "bare_loop")
# fp32 unless named int8 (dynamic int8 quantization of the Linear layers); bare_predict is the floor
PREDICT_VARIANTS = (
    "textcls_predict",
    "textcls_predict_int8",
    "predictor",
    "predictor_int8",
    "bare_predict",
    "pipeline",
)
# data preparation (read, split, tokenize or load the cache) of the dataset's whole train file, twice
PREP_VARIANTS = ("data_prep_cold", "data_prep_warm")


# ----------------------------------------------------------------------------- the parent


def main() -> None:
    args = parse_args()
    if args.child:
        spec = json.loads(Path(args.spec).read_text())
        result = CHILDREN[args.child](spec)
        result["peak_rss_mb"] = result.get("peak_rss_mb") or peak_rss_mb(resource.RUSAGE_SELF)
        used = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        result["cpu_seconds"] = sum(u.ru_utime + u.ru_stime for u in used)
        Path(spec["result_file"]).write_text(json.dumps(result))
        return
    if args.report:
        print(markdown(json.loads(Path(args.report).read_text())))
        return
    started = time.perf_counter()
    results = {"machine": machine(), "command": " ".join(sys.argv), "datasets": {}}
    for name in args.dataset:
        results["datasets"][name] = run_dataset(name, args)
        print_table(name, results["datasets"][name])
    if args.gpu:
        for name in args.dataset:
            run = gpu_run(name, args)
            if run:
                results["datasets"][f"{name}_gpu"] = run
                print_table(f"{name}_gpu", run)
    results["total_seconds"] = time.perf_counter() - started
    print(f"\nBenchmark took {results['total_seconds'] / 60:.1f} min")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
        print(f"Wrote {args.out}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    p.add_argument("--train_rows", type=int, help="training rows (default: per dataset, 256 / 4000)")
    p.add_argument("--val_rows", type=int, help="validation rows (default: IMDB 128, SST-2 all 872)")
    p.add_argument("--max_length", type=int, help="textcls/Trainer max_length (default: 512 / 64)")
    p.add_argument("--textbook_length", type=int, help="padding length of (3) (default: 512 / 128)")
    p.add_argument("--batch_size", type=int, help="training batch size (default: 16 / 32)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--warmup_ratio", type=float, default=0.06)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--variants",
        nargs="+",
        choices=[*TRAIN_VARIANTS, *PREDICT_VARIANTS, *PREP_VARIANTS],
        default=[*TRAIN_VARIANTS, *PREDICT_VARIANTS],
        help="what to run (data_prep_cold/_warm: `setup('fit')` on the whole train file, not by default)",
    )
    p.add_argument("--model_dir", help="predict with this exported folder (no training run needed)")
    p.add_argument("--work_dir", default="benchmark_runs", help="data, logs and the exported model")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--gpu", action="store_true", help="also a DistilBERT-sized compute-only run on CUDA")
    p.add_argument("--report", metavar="JSON", help="print the markdown tables of a results file and exit")
    p.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    return p.parse_args()


def run_dataset(name: str, args: argparse.Namespace, backbone: str = BACKBONE, device: str = "cpu") -> dict:
    cfg = dict(DATASETS[name])
    for key in ("train_rows", "val_rows", "max_length", "textbook_length", "batch_size"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    work = Path(args.work_dir).resolve() / (name if device == "cpu" else f"{name}_{device}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    files = prepare_data(cfg, work, args.seed)
    spec = {
        **{k: cfg[k] for k in ("max_length", "textbook_length", "batch_size")},
        **files,
        "backbone": backbone,
        "device": device,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "warmup_ratio": args.warmup_ratio,
        "seed": args.seed,
        "work": str(work),
    }
    print(
        f"\n== {name}: {cfg['train_rows']} train rows, {files['val_rows']} validation rows, "
        f"max_length {cfg['max_length']}, batch {cfg['batch_size']}, {args.epochs} epoch(s)",
        flush=True,
    )
    out = {"settings": {k: v for k, v in spec.items() if k != "work"}, "variants": {}}
    for variant in [v for v in args.variants if v in TRAIN_VARIANTS]:
        out["variants"][variant] = run_child(variant, spec, work)
    predicting = [v for v in args.variants if v in PREDICT_VARIANTS]
    if predicting and (args.model_dir or "textcls" in out["variants"]):
        spec["model_dir"] = str(Path(args.model_dir).resolve()) if args.model_dir else None
        spec["model_dir"] = spec["model_dir"] or export_model(
            out["variants"]["textcls"]["checkpoint"], work / "exported"
        )
        for variant in predicting:
            out["variants"][variant] = run_child(variant, spec, work)
    for variant in [v for v in PREP_VARIANTS if v in args.variants]:
        spec.update(full_train=str(cfg["train_file"]), full_val=str(cfg["val_file"] or ""))
        out["variants"][variant] = run_child(variant, spec, work)
    add_ratios(out["variants"])
    return out


def prepare_data(cfg: dict, work: Path, seed: int) -> dict:
    """Sample the rows once, write them as CSV: every variant reads these same files."""
    train = pd.read_csv(cfg["train_file"], dtype=str, keep_default_na=False)
    if cfg["val_file"]:
        val = pd.read_csv(cfg["val_file"], dtype=str, keep_default_na=False)
    else:
        val = train.sample(n=cfg["val_rows"], random_state=seed + 1)
        train = train.drop(val.index)
    if cfg["val_rows"] and cfg["val_rows"] < len(val):
        val = val.sample(n=cfg["val_rows"], random_state=seed + 1)
    train = train.sample(n=min(cfg["train_rows"], len(train)), random_state=seed)
    files = {"train_csv": str(work / "train.csv"), "val_csv": str(work / "validation.csv")}
    train[["text", "label"]].to_csv(files["train_csv"], index=False)
    val[["text", "label"]].to_csv(files["val_csv"], index=False)
    return {**files, "train_rows": len(train), "val_rows": len(val)}


def run_child(variant: str, spec: dict, work: Path) -> dict:
    spec = {**spec, "result_file": str(work / f"{variant}.result.json"), "dir": str(work / variant)}
    spec_file = work / f"{variant}.spec.json"
    spec_file.write_text(json.dumps(spec))
    log = work / f"{variant}.log"
    cmd = [sys.executable, __file__, "--child", variant, "--spec", str(spec_file)]
    print(f"-- {variant} ...", end=" ", flush=True)
    started = time.perf_counter()
    with open(log, "w") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=child_env(), check=False)
    if done.returncode:
        raise SystemExit(f"{variant} failed (exit {done.returncode}); see {log}:\n{log.read_text()[-3000:]}")
    result = json.loads(Path(spec["result_file"]).read_text())
    result["process_seconds"] = time.perf_counter() - started
    # below ~0.9 on an idle machine: other jobs took CPU time from this variant, its speed is understated
    result["cpu_share"] = result["cpu_seconds"] / result["process_seconds"] / os.cpu_count()
    result["load_average_after"] = os.getloadavg()[0]
    speed = f"{result['samples_per_sec']:.1f} samples/s" if "samples_per_sec" in result else ""
    print(
        f"{speed} ({result['process_seconds']:.0f} s in all, CPU share {result['cpu_share']:.0%})", flush=True
    )
    return result


def child_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def export_model(checkpoint: str, target: Path) -> str:
    cmd = [sys.executable, "-m", "textcls", "export", "--ckpt_path", checkpoint, "--output_dir", str(target)]
    subprocess.run(
        cmd, check=True, env=child_env(), cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL
    )
    return str(target)


def add_ratios(variants: dict) -> None:
    base = variants.get("hf_trainer", {}).get("samples_per_sec")
    for name in TRAIN_VARIANTS:
        if name in variants and base:
            variants[name]["ratio_to_hf_trainer"] = variants[name]["samples_per_sec"] / base
    # every predict variant against the pipeline (speed), the bare loop (overhead) and the full-precision
    # textcls predict (labels; the pipeline's when that did not run)
    pipe, bare = variants.get("pipeline"), variants.get("bare_predict")
    reference = variants.get("textcls_predict") or pipe
    for name in PREDICT_VARIANTS:
        if name not in variants:
            continue
        v = variants[name]
        if pipe:
            v["ratio_to_pipeline"] = v["samples_per_sec"] / pipe["samples_per_sec"]
        if bare:
            v["ratio_to_bare"] = v["samples_per_sec"] / bare["samples_per_sec"]
        if reference and reference is not v:
            v["label_agreement"] = float(np.mean(np.array(v["labels"]) == np.array(reference["labels"])))
    if pipe and "textcls_predict" in variants:  # the two references: agreement with each other
        variants["textcls_predict"]["label_agreement"] = pipe["label_agreement"]


def print_table(name: str, result: dict) -> None:
    v = result["variants"]
    print(f"\n{name}: training")
    print(f"{'variant':<16}{'samples/s':>10}{'ratio':>8}{'real tok':>9}{'peak MB':>9}{'val acc':>9}")
    for key in TRAIN_VARIANTS:
        if key in v:
            r = v[key]
            print(
                f"{key:<16}{r['samples_per_sec']:>10.2f}{r.get('ratio_to_hf_trainer', float('nan')):>8.2f}"
                f"{r['real_token_share']:>9.1%}{r['peak_rss_mb']:>9.0f}{r['val_acc']:>9.4f}"
            )
    if any(k in v for k in PREDICT_VARIANTS):
        print(f"{name}: prediction")
        print(f"{'variant':<22}{'samples/s':>10}{'ratio':>8}{'agree':>9}{'peak MB':>9}")
        for key in PREDICT_VARIANTS:
            if key in v:
                r = v[key]
                print(
                    f"{key:<22}{r['samples_per_sec']:>10.2f}{r.get('ratio_to_pipeline', float('nan')):>8.2f}"
                    f"{r.get('label_agreement', float('nan')):>9.1%}{r['peak_rss_mb']:>9.0f}"
                )


def machine() -> dict:
    import lightning
    import torch
    import transformers

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "lightning": lightning.__version__,
    }


def peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def gpu_run(name: str, args: argparse.Namespace) -> dict | None:
    """The same variants on CUDA with a DistilBERT-base-sized model of random weights (compute only:
    its accuracy means nothing). MiniLM's tokenizer has DistilBERT's uncased 30,522-token vocabulary."""
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

    from textcls.backbone import resolve_backbone

    if not torch.cuda.is_available():
        print("--gpu: no CUDA device here; skipping the DistilBERT-sized GPU run")
        return None
    folder = Path(args.work_dir).resolve() / "distilbert_random"
    torch.manual_seed(args.seed)
    DistilBertForSequenceClassification(DistilBertConfig(num_labels=2)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_backbone(BACKBONE)).save_pretrained(folder)
    return run_dataset(name, args, backbone=str(folder), device="cuda")


# ----------------------------------------------------------------------------- training children


def child_textcls(spec: dict) -> dict:
    """The real CLI in a grandchild process; its peak memory is read as RUSAGE_CHILDREN here."""
    root = Path(spec["dir"])
    cmd = [
        sys.executable,
        "-m",
        "textcls",
        "fit",
        "--model.model_name_or_path",
        spec["backbone"],
        "--model.learning_rate",
        str(spec["learning_rate"]),
        "--model.warmup_ratio",
        str(spec["warmup_ratio"]),
        "--data.train_file",
        spec["train_csv"],
        "--data.val_file",
        spec["val_csv"],
        "--data.test_fraction",
        "0",
        "--data.max_length",
        str(spec["max_length"]),
        "--data.batch_size",
        str(spec["batch_size"]),
        "--data.seed",
        str(spec["seed"]),
        "--data.cache_dir",
        str(root / "cache"),
        "--seed_everything",
        str(spec["seed"]),
        "--trainer.max_epochs",
        str(spec["epochs"]),
        "--trainer.accelerator",
        "gpu" if spec["device"] == "cuda" else "cpu",
        "--trainer.gradient_clip_val",
        "1.0",  # the Trainer's default max_grad_norm; the same in all variants
        "--trainer.enable_progress_bar",
        "false",
        # the sanity check's forward passes would warm the model up outside the clock: all variants start cold
        "--trainer.num_sanity_val_steps",
        "0",
        "--trainer.logger",
        "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir",
        str(root),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=Path(__file__).parents[1])
    print(done.stdout, done.stderr)
    if done.returncode:
        raise SystemExit(done.returncode)
    found = re.search(
        r"padding efficiency ([\d.]+)% \((\d+) samples in ([\d.]+) s", done.stdout + done.stderr
    )
    samples, seconds = int(found.group(2)), float(found.group(3))
    metrics = pd.read_csv(next(root.glob("lightning_logs/version_*/metrics.csv")))
    # the summary rounds to 0.1%: the logged metric has full precision
    efficiency = metrics["train/padding_efficiency"].dropna()
    return {
        "samples_per_sec": samples / seconds,
        "train_seconds": seconds,
        "samples": samples,
        "real_token_share": float(efficiency.mean()) if len(efficiency) else float(found.group(1)) / 100,
        "val_acc": float(metrics["val/acc"].dropna().iloc[-1]),
        "checkpoint": str(sorted(root.glob("lightning_logs/version_*/checkpoints/*.ckpt"))[-1]),
        "peak_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),
    }


def read_split(path: str, label_names: list[str] | None = None) -> tuple[list[str], np.ndarray, list[str]]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    names = label_names or sorted(frame["label"].unique())
    index = {n: i for i, n in enumerate(names)}
    return frame["text"].tolist(), frame["label"].map(index).to_numpy(), names


class CountingCollator:
    """Wraps a collator and counts real and padded tokens of the batches it makes."""

    def __init__(self, collate):
        self.collate, self.real, self.padded = collate, 0, 0

    def __call__(self, features):
        batch = self.collate(features)
        mask = batch["attention_mask"]
        self.real += int(mask.sum())
        self.padded += mask.numel()
        return batch


def child_hf(spec: dict, textbook: bool = False) -> dict:
    import datasets
    import transformers as tf

    from textcls.backbone import resolve_backbone

    folder = resolve_backbone(spec["backbone"])
    tokenizer = tf.AutoTokenizer.from_pretrained(folder)
    texts, labels, names = read_split(spec["train_csv"])
    val_texts, val_labels, _ = read_split(spec["val_csv"], names)
    length = spec["textbook_length"] if textbook else spec["max_length"]
    padding = "max_length" if textbook else False

    def encode(batch: dict) -> dict:
        return tokenizer(batch["text"], truncation=True, max_length=length, padding=padding)

    train = datasets.Dataset.from_dict({"text": texts, "label": labels}).map(encode, batched=True)
    val = datasets.Dataset.from_dict({"text": val_texts, "label": val_labels}).map(encode, batched=True)
    model = tf.AutoModelForSequenceClassification.from_pretrained(
        folder,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    # the tutorials' collator: default_data_collator for fixed-length rows, DataCollatorWithPadding otherwise
    collate = CountingCollator(
        tf.default_data_collator if textbook else tf.DataCollatorWithPadding(tokenizer)
    )
    args = tf.TrainingArguments(
        output_dir=spec["dir"],
        per_device_train_batch_size=spec["batch_size"],
        per_device_eval_batch_size=2 * spec["batch_size"],
        learning_rate=spec["learning_rate"],
        num_train_epochs=spec["epochs"],
        warmup_steps=spec["warmup_ratio"],  # a float below 1 is a ratio in transformers 5
        weight_decay=0.01,  # textcls's default; the Trainer's is 0
        seed=spec["seed"],
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        use_cpu=spec["device"] == "cpu",
        bf16=spec["device"] == "cuda",  # textcls's GPU default; the tutorials set fp16/bf16 on GPU too
        disable_tqdm=True,
    )
    clock = loop_clock(tf.TrainerCallback)
    trainer = tf.Trainer(
        model=model,
        args=args,
        train_dataset=train,
        data_collator=collate,
        processing_class=tokenizer,
        callbacks=[clock],
    )
    trainer.train()
    real, padded = collate.real, collate.padded
    predictions = trainer.predict(val).predictions
    logits = predictions[0] if isinstance(predictions, tuple) else predictions
    return {
        "samples_per_sec": len(texts) * spec["epochs"] / clock.seconds,
        "train_seconds": clock.seconds,
        "samples": len(texts) * spec["epochs"],
        "real_token_share": real / padded,
        "val_acc": float((logits.argmax(-1) == val_labels).mean()),
    }


def loop_clock(base: type):
    """A Trainer callback that sums training-loop seconds: each epoch from its start (before its first
    batch is loaded) to its last optimizer step, as textcls's ThroughputLogger does."""

    class LoopClock(base):
        seconds = 0.0

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.last = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            now = time.perf_counter()
            self.seconds += now - self.last
            self.last = now

    return LoopClock()


def child_textbook(spec: dict) -> dict:
    return child_hf(spec, textbook=True)


def child_bare_loop(spec: dict) -> dict:
    import lightning as L
    import torch
    import torch.nn.functional as F
    from transformers import get_linear_schedule_with_warmup

    from textcls.backbone import load_classifier
    from textcls.data import TextClassificationData

    data = TextClassificationData(
        train_file=spec["train_csv"],
        val_file=spec["val_csv"],
        test_fraction=0.0,
        seed=spec["seed"],
        model_name_or_path=spec["backbone"],
        max_length=spec["max_length"],
        batch_size=spec["batch_size"],
        cache_dir=str(Path(spec["dir"]) / "cache"),
    )
    data.setup("fit")
    L.seed_everything(spec["seed"])
    device = torch.device(spec["device"])
    model = load_classifier(spec["backbone"], data.label_names).to(device)
    model.train()
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=spec["learning_rate"],
        eps=1e-8,
        fused=device.type == "cuda" or None,
    )
    loader = data.train_dataloader()
    total = len(loader) * spec["epochs"]
    scheduler = get_linear_schedule_with_warmup(optimizer, int(spec["warmup_ratio"] * total), total)
    samples = real = padded = 0
    started = time.perf_counter()
    for _ in range(spec["epochs"]):
        for batch in loader:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            loss = F.cross_entropy(logits.float(), batch["labels"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            mask = batch["attention_mask"]
            samples, real, padded = samples + len(mask), real + mask.sum(), padded + mask.numel()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    model.eval()
    correct = 0
    with torch.inference_mode():
        for batch in data.val_dataloader():
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            correct += int((logits.argmax(-1) == batch["labels"]).sum())
    return {
        "samples_per_sec": samples / seconds,
        "train_seconds": seconds,
        "samples": samples,
        "real_token_share": float(real) / padded,
        "val_acc": correct / len(data.encoded["validation"]),
    }


# ----------------------------------------------------------------------------- prediction children


def child_textcls_predict(spec: dict, quantize: str = "none") -> dict:
    """textcls's predict path: the data module (tokenize, sort by length, default eval batch size), the
    model under Lightning's `Trainer.predict` (inference mode) and the PredictionWriter (input order)."""
    import lightning as L

    from textcls.callbacks import PredictionWriter
    from textcls.data import TextClassificationData
    from textcls.model import TextClassifier

    names = model_labels(spec["model_dir"])
    model = TextClassifier(model_name_or_path=spec["model_dir"], label_names=names)
    out = Path(spec["dir"]) / "predictions.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    trainer = L.Trainer(
        accelerator="gpu" if spec["device"] == "cuda" else "cpu",
        precision="bf16-mixed" if spec["device"] == "cuda" else "32-true",  # as textcls's auto precision
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[PredictionWriter(output_path=str(out), quantize=quantize)],
    )
    started = time.perf_counter()  # tokenization counts, as it does in the pipeline
    data = TextClassificationData(
        predict_file=spec["val_csv"],
        labels=names,
        model_name_or_path=spec["model_dir"],
        max_length=spec["max_length"],
        batch_size=spec["batch_size"],
        cache_dir=str(Path(spec["dir"]) / "cache"),
    )
    trainer.predict(model, datamodule=data, return_predictions=False)
    seconds = time.perf_counter() - started
    labels = pd.read_csv(out, dtype=str, keep_default_na=False)["label"].tolist()
    return {"samples_per_sec": len(labels) / seconds, "seconds": seconds, "labels": labels}


def child_predictor(spec: dict, quantize: str = "none") -> dict:
    """The exported-folder predictor (`textcls.inference.load_predictor`), as the app and scripts use it."""
    from textcls.inference import load_predictor

    texts, _, _ = read_split(spec["val_csv"])
    predictor = load_predictor(spec["model_dir"], quantize=quantize)
    started = time.perf_counter()  # as for the bare loop: model loading is not timed
    probs = predictor.predict_probs(texts, batch_size=2 * spec["batch_size"])
    seconds = time.perf_counter() - started
    labels = [predictor.label_names[i] for i in probs.argmax(-1)]
    return {"samples_per_sec": len(texts) / seconds, "seconds": seconds, "labels": labels}


def child_bare_predict(spec: dict) -> dict:
    """The floor: tokenize all texts at once, sort by length, pad per batch, inference mode, softmax."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts, _, _ = read_split(spec["val_csv"])
    model = AutoModelForSequenceClassification.from_pretrained(spec["model_dir"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    started = time.perf_counter()
    ids = tokenizer(texts, truncation=True, max_length=spec["max_length"])["input_ids"]
    order = np.argsort([-len(x) for x in ids], kind="stable")
    labels = [None] * len(texts)
    size = 2 * spec["batch_size"]
    with torch.inference_mode():
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            batch = tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
            predicted = model(**batch).logits.softmax(-1).argmax(-1).tolist()
            for i, p in zip(rows, predicted, strict=True):
                labels[i] = model.config.id2label[p]
    seconds = time.perf_counter() - started
    return {"samples_per_sec": len(texts) / seconds, "seconds": seconds, "labels": labels}


def child_pipeline(spec: dict) -> dict:
    from transformers import pipeline

    texts, _, _ = read_split(spec["val_csv"])
    pipe = pipeline(
        "text-classification",
        model=spec["model_dir"],
        truncation=True,
        max_length=spec["max_length"],
        device=spec["device"],
    )
    started = time.perf_counter()
    out = pipe(texts)
    seconds = time.perf_counter() - started
    return {"samples_per_sec": len(texts) / seconds, "seconds": seconds, "labels": [o["label"] for o in out]}


def model_labels(folder: str) -> list[str]:
    config = json.loads((Path(folder) / "config.json").read_text())
    return [config["id2label"][str(i)] for i in range(len(config["id2label"]))]


def child_data_prep(spec: dict) -> dict:
    """`setup("fit")` of the whole train file, as `fit` does it before training; run twice on one cache."""
    from textcls.data import TextClassificationData

    started = time.perf_counter()
    data = TextClassificationData(
        train_file=spec["full_train"],
        val_file=spec["full_val"] or None,
        test_fraction=0.0,
        model_name_or_path=spec["backbone"],
        max_length=spec["max_length"],
        cache_dir=str(Path(spec["work"]) / "prep_cache"),
    )
    data.setup("fit")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": sum(len(e) for e in data.encoded.values())}


def markdown(results: dict) -> str:
    """The tables of a results file, for docs/benchmarks.md."""
    lines = []
    for name, run in results["datasets"].items():
        v, st = run["variants"], run["settings"]
        lines += [
            f"### {name}: {st['train_rows']} train / {st['val_rows']} validation rows, max_length "
            f"{st['max_length']}, batch {st['batch_size']}, {st['epochs']} epoch(s), lr {st['learning_rate']}",
            "",
            "| variant | train samples/s | ratio to (2) | real-token share | peak RSS (MB) | val accuracy "
            "| CPU share |",
            "|---|---|---|---|---|---|---|",
        ]
        for i, key in enumerate(TRAIN_VARIANTS, start=1):
            if key in v:
                r = v[key]
                lines.append(
                    f"| ({i}) {key} | {r['samples_per_sec']:.2f} | {r.get('ratio_to_hf_trainer', float('nan')):.2f} "
                    f"| {r['real_token_share']:.1%} | {r['peak_rss_mb']:.0f} | {r['val_acc']:.4f} "
                    f"| {r.get('cpu_share', float('nan')):.0%} |"
                )
        if any(k in v for k in PREDICT_VARIANTS):
            lines += [
                "",
                "| predict | samples/s | ratio to pipeline | ratio to bare loop | label agreement with fp32 "
                "| peak RSS (MB) | CPU share |",
                "|---|---|---|---|---|---|---|",
            ]
            for key in PREDICT_VARIANTS:
                if key in v:
                    r = v[key]
                    lines.append(
                        f"| {key} | {r['samples_per_sec']:.2f} | {r.get('ratio_to_pipeline', float('nan')):.2f} "
                        f"| {r.get('ratio_to_bare', float('nan')):.2f} | {r.get('label_agreement', float('nan')):.1%} "
                        f"| {r['peak_rss_mb']:.0f} | {r.get('cpu_share', float('nan')):.0%} |"
                    )
        for key in PREP_VARIANTS:
            if key in v:
                lines.append(f"\n{key}: {v[key]['rows']} rows prepared in {v[key]['seconds']:.2f} s")
        lines.append("")
    return "\n".join(lines + targets(results))


def targets(results: dict) -> list[str]:
    """Issue 7's targets, checked against a results file (those whose runs are in it)."""
    runs = {name: run["variants"] for name, run in results["datasets"].items()}
    checks = []  # (what, measured, target, met)

    def ratio(run: str, a: str, b: str) -> float | None:
        v = runs.get(run, {})
        return v[a]["samples_per_sec"] / v[b]["samples_per_sec"] if a in v and b in v else None

    for run, a, b, floor in (
        ("imdb", "textcls", "hf_trainer", 1.5),
        ("imdb", "textcls", "textbook", 1.6),
        ("sst2", "textcls", "hf_trainer", 1.3),
        ("imdb", "textcls", "bare_loop", 0.9),
        ("sst2", "textcls", "bare_loop", 0.9),
        ("sst2", "textcls_predict", "pipeline", 3.0),
        ("imdb", "textcls_predict", "pipeline", 1.2),
        # issue 14: int8 prediction against the pipeline, and every predict path within 10% of the floor
        ("sst2", "textcls_predict_int8", "pipeline", 3.5),
        ("imdb", "textcls_predict_int8", "pipeline", 1.5),
        ("sst2", "textcls_predict", "bare_predict", 0.9),
        ("imdb", "textcls_predict", "bare_predict", 0.9),
        ("sst2", "predictor", "bare_predict", 0.9),
        ("imdb", "predictor", "bare_predict", 0.9),
    ):
        r = ratio(run, a, b)
        if r is not None:
            checks.append((f"{run}: {a} / {b} samples/s", f"{r:.2f}", f">= {floor}", r >= floor))
    sst2 = runs.get("sst2", {})
    if "textcls" in sst2 and "hf_trainer" in sst2:
        gap = sst2["textcls"]["val_acc"] - sst2["hf_trainer"]["val_acc"]
        checks.append(("sst2: val accuracy textcls - Trainer", f"{gap:+.4f}", ">= -0.01", gap >= -0.01))
    for run, v in runs.items():
        if "label_agreement" in v.get("textcls_predict", {}):
            agree = v["textcls_predict"]["label_agreement"]
            checks.append((f"{run}: predict label agreement", f"{agree:.2%}", "100%", agree == 1.0))
        for name in ("textcls_predict_int8", "predictor_int8"):
            if "label_agreement" in v.get(name, {}):
                agree = v[name]["label_agreement"]
                checks.append((f"{run}: {name} labels = fp32", f"{agree:.2%}", ">= 99.5%", agree >= 0.995))
        if "data_prep_warm" in v:
            warm = v["data_prep_warm"]
            checks.append(
                (
                    f"{run}: second fit's data preparation ({warm['rows']} rows), s",
                    f"{warm['seconds']:.2f}",
                    "< 2",
                    warm["seconds"] < 2,
                )
            )
    lines = ["| target | measured | wanted | met |", "|---|---|---|---|"]
    lines += [f"| {what} | {got} | {want} | {'yes' if ok else 'no'} |" for what, got, want, ok in checks]
    return lines if checks else []


CHILDREN = {
    "textcls": child_textcls,
    "hf_trainer": child_hf,
    "textbook": child_textbook,
    "bare_loop": child_bare_loop,
    "textcls_predict": child_textcls_predict,
    "textcls_predict_int8": lambda spec: child_textcls_predict(spec, "int8"),
    "predictor": child_predictor,
    "predictor_int8": lambda spec: child_predictor(spec, "int8"),
    "bare_predict": child_bare_predict,
    "pipeline": child_pipeline,
    "data_prep_cold": child_data_prep,
    "data_prep_warm": child_data_prep,
}

if __name__ == "__main__":
    main()
