"""Every device x precision x clipping combination that `fit` accepts: the optimizer the module builds
passes Lightning's precision plugin for that device (its checks run without a GPU), a real tiny fit for
every precision that CPU supports, a real fp16 loss scaler with clipping on CPU, why pure half precision
is refused, and the one precision rule of the CLI (by command, CPU capability and int8)."""

import math
import warnings
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins.precision import HalfPrecision, MixedPrecision, Precision
from lightning.pytorch.profilers import PassThroughProfiler

from tests.conftest import make_rows, write_jsonl
from textcls import precision
from textcls.data import TextClassificationData
from textcls.model import TextClassifier

LABELS = ["food", "sports", "tech"]
# The Trainer turns "16-mixed" on CPU into "bf16-mixed"; the plugin itself runs fp16 autocast with an
# enabled CPU GradScaler (the "cuda" plugin's scaler is disabled without a GPU: those runs are fp32).
# 16-true and bf16-true are refused by `fit` (test_pure_half_precision_loses_adamw_updates).
PRECISIONS = {
    "cpu": ["32-true", "bf16-mixed", "16-mixed"],
    "cuda": ["32-true", "16-mixed", "bf16-mixed"],
}


def precision_plugin(device: str, precision: str) -> Precision:
    """The plugin Lightning's accelerator connector picks for a single-device run (_check_and_init_precision)."""
    if precision in ("16-true", "bf16-true"):
        return HalfPrecision(precision)
    if precision in ("16-mixed", "bf16-mixed"):
        return MixedPrecision(precision, device)
    return Precision()


@pytest.mark.parametrize("clip", [None, 1.0], ids=["no-clip", "clip"])
@pytest.mark.parametrize(
    "device,precision", [pytest.param(d, p, id=f"{d}-{p}") for d, ps in PRECISIONS.items() for p in ps]
)
def test_optimizer_passes_the_precision_plugin(tiny_backbone, device, precision, clip):
    plugin = precision_plugin(device, precision)
    model = plugin.convert_module(TextClassifier(tiny_backbone, LABELS))
    # what the Trainer's optimizer step reads; the device is the one the Trainer would have moved the
    # module to (the optimizer itself is built on the CPU tensors, which fused AdamW also supports)
    model._trainer = SimpleNamespace(
        lightning_module=model,
        callbacks=[],
        profiler=PassThroughProfiler(),
        precision_plugin=plugin,
        gradient_clip_val=clip,
        gradient_clip_algorithm=None,
        estimated_stepping_batches=10,
    )
    model._device = torch.device(device, 0) if device == "cuda" else torch.device(device)
    optimizer = model.configure_optimizers()["optimizer"]
    before = [p.detach().clone() for p in model.parameters()]
    ids, losses = torch.randint(5, 40, (4, 6)), []

    def closure() -> torch.Tensor:  # what Lightning's automatic optimization runs: forward and backward
        optimizer.zero_grad()
        with plugin.forward_context():
            loss = model.loss(model(ids, torch.ones_like(ids)), torch.tensor([0, 1, 2, 0]))
        plugin.pre_backward(loss, model).backward()
        losses.append(loss)
        return loss

    # the same call the Trainer makes: closure, on_before_optimizer_step, clipping, then the step
    plugin.optimizer_step(optimizer, model=model, closure=closure)
    assert len(losses) == 1 and torch.isfinite(losses[0])
    if clip is None:  # fused stays where nothing refuses it: on GPU when nothing clips
        assert bool(optimizer.defaults["fused"]) == (device == "cuda")
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def grad_norm(model: torch.nn.Module) -> float:
    grads = [p.grad.detach().float() for p in model.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item()


class ScalerRecorder(Callback):
    """Per step: the loss scale, the gradient norm as backward left it (scaled), after unscaling (before
    clipping) and after the optimizer step (clipped)."""

    def __init__(self):
        self.steps = []

    def on_after_backward(self, trainer, pl_module) -> None:
        scale = trainer.precision_plugin.scaler.get_scale()
        self.steps.append({"scale": scale, "scaled": grad_norm(pl_module)})

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.steps[-1]["unscaled"] = grad_norm(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps[-1]["clipped"] = grad_norm(pl_module)  # zero_grad comes with the next step


def test_fp16_loss_scaling_with_clipping_on_cpu(tmp_path, tiny_backbone):
    """16-mixed's loss scaling for real, on CPU: backward runs on the scaled loss, the gradients are
    unscaled before they are clipped (to 0.25: below most of the tiny model's gradient norms, 0.2-0.8),
    and the weights train and stay finite."""
    clip = 0.25
    data = tiny_data(tmp_path, tiny_backbone, imbalanced_train(tmp_path))
    model = TextClassifier(tiny_backbone, data.label_names, learning_rate=3e-3)
    before = [p.detach().clone() for p in model.parameters()]
    scaler = torch.amp.GradScaler("cpu")
    assert scaler.is_enabled()
    recorder = ScalerRecorder()
    trainer = L.Trainer(
        accelerator="cpu",
        plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)],
        gradient_clip_val=clip,
        max_epochs=1,
        callbacks=[recorder],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=data)
    steps = [s for s in recorder.steps if math.isfinite(s["scaled"])]  # the scaler skips overflowing steps
    assert len(steps) >= len(recorder.steps) - 2 and trainer.global_step > 5
    for step in steps:
        assert step["scale"] > 1000
        assert step["scaled"] == pytest.approx(step["scale"] * step["unscaled"], rel=1e-3)
        # clipped in real units: clipping the scaled gradients would leave a norm of ~clip / scale
        assert step["clipped"] == pytest.approx(min(step["unscaled"], clip), rel=1e-3)
    assert sum(s["unscaled"] > clip for s in steps) >= 2  # clipping did cut
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def one_adamw_step(backbone: str, plugin: Precision) -> tuple[dict, dict]:
    """The encoder's weights before and after one AdamW step (lr 5e-5, eps 1e-8: textcls's defaults)."""
    torch.manual_seed(0)
    model = plugin.convert_module(TextClassifier(backbone, LABELS))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, eps=1e-8)
    encoder = {n: p for n, p in model.model.named_parameters() if not model._is_head(n)}
    before = {n: p.detach().clone() for n, p in encoder.items()}
    ids = torch.randint(5, 40, (4, 6))
    with plugin.forward_context():
        logits = model(ids, torch.ones_like(ids))
    torch.nn.functional.cross_entropy(logits.float(), torch.tensor([0, 1, 2, 0])).backward()
    optimizer.step()
    return before, {n: p.detach() for n, p in encoder.items()}


def unchanged_share(before: dict, after: dict) -> float:
    return sum(int((before[n] == after[n]).sum()) for n in before) / sum(t.numel() for t in before.values())


def test_pure_half_precision_loses_adamw_updates(tiny_backbone):
    """Why `fit` refuses weights in half precision: one AdamW step in fp16 makes most weights infinite or
    NaN (eps 1e-8 is 0 there and small squared gradients underflow: update / 0); in bf16 a large share
    of the updates is below the weights' resolution, where fp32 changes (nearly) every weight."""
    _, fp16 = one_adamw_step(tiny_backbone, HalfPrecision("16-true"))
    broken = sum(int((~torch.isfinite(p)).sum()) for p in fp16.values())
    assert broken / sum(p.numel() for p in fp16.values()) > 0.5
    fp32 = unchanged_share(*one_adamw_step(tiny_backbone, Precision()))
    bf16 = unchanged_share(*one_adamw_step(tiny_backbone, HalfPrecision("bf16-true")))
    assert fp32 < 0.01 and bf16 > 0.2, (fp32, bf16)


class LossRecorder(Callback):
    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"].item())


def imbalanced_train(tmp_path):
    """120 rows, 40 per class, less 30 "tech" ones: "balanced" class weights then differ from 1."""
    rows = make_rows(40, seed=1)
    tech = [i for i, r in enumerate(rows) if r["label"] == "tech"][:30]
    return write_jsonl(tmp_path / "train.jsonl", [r for i, r in enumerate(rows) if i not in set(tech)])


def tiny_data(tmp_path, backbone, train) -> TextClassificationData:
    return TextClassificationData(
        train_file=str(train), model_name_or_path=backbone, batch_size=8, cache_dir=str(tmp_path / "cache")
    )


def clipped_trainer(precision: str, callbacks: list, **kwargs) -> L.Trainer:
    """A quiet 2-epoch CPU Trainer in `precision` that clips gradients at 1.0, as textcls runs do."""
    return L.Trainer(
        accelerator="cpu",
        precision=precision,
        gradient_clip_val=1.0,
        max_epochs=2,
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_real_fit_with_clipping_and_balanced_weights(tmp_path, tiny_backbone, precision):
    data = tiny_data(tmp_path, tiny_backbone, imbalanced_train(tmp_path))
    model = TextClassifier(tiny_backbone, data.label_names, learning_rate=3e-3, class_weights="balanced")
    losses, checkpoint = LossRecorder(), ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = clipped_trainer(precision, [losses, checkpoint])
    trainer.fit(model, datamodule=data)
    assert len(losses.losses) == trainer.global_step > 0 and all(map(math.isfinite, losses.losses))
    assert math.isfinite(trainer.callback_metrics["val/loss"].item())
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    assert model.loss_weights[2] > model.loss_weights[0]  # the rare class weighs more


def test_validate_reports_the_val_loss_of_fit(tmp_path, tiny_backbone):
    """Balanced class weights apply in validate as in fit: the same checkpoint gives the same val/loss."""
    train = imbalanced_train(tmp_path)
    data = tiny_data(tmp_path, tiny_backbone, train)
    model = TextClassifier(tiny_backbone, data.label_names, learning_rate=3e-3, class_weights="balanced")
    kw = {"accelerator": "cpu", "logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    fit = L.Trainer(max_epochs=2, callbacks=[checkpoint], **kw)
    fit.fit(model, datamodule=data)
    fit_loss = fit.callback_metrics["val/loss"].item()

    # a fresh module and data module, as `textcls validate --ckpt_path last` builds them
    fresh = TextClassifier(tiny_backbone, data.label_names, class_weights="balanced")
    [result] = L.Trainer(**kw).validate(
        fresh, datamodule=tiny_data(tmp_path, tiny_backbone, train), ckpt_path=checkpoint.last_model_path
    )
    assert result["val/loss"] == pytest.approx(fit_loss, rel=1e-5)


def test_multi_label_fit_in_half_precision_with_pos_weight(tmp_path, tiny_backbone, multi_label_files):
    """The multi-label loss (fp32 binary cross-entropy with pos_weight) and the thresholds tuned at
    validation work under bf16 as under fp32; a GPU run takes the same code path."""
    data = TextClassificationData(
        train_file=str(multi_label_files["train"]),
        multi_label=True,
        label_column="labels",
        model_name_or_path=tiny_backbone,
        batch_size=8,
        cache_dir=str(tmp_path / "cache"),
    )
    model = TextClassifier(
        tiny_backbone, data.label_names, learning_rate=3e-3, class_weights="balanced", multi_label=True
    )
    losses = LossRecorder()
    trainer = clipped_trainer("bf16-mixed", [losses], enable_checkpointing=False)
    trainer.fit(model, datamodule=data)
    assert len(losses.losses) == trainer.global_step > 0 and all(map(math.isfinite, losses.losses))
    assert math.isfinite(trainer.callback_metrics["val/f1_macro"].item())
    assert (model.loss_weights > 1).all()  # each label has fewer positives than negatives
    assert all(model.thresholds.tuned) and all(0 < t < 1 for t in model.thresholds.values)


@pytest.mark.parametrize(
    "accelerator,cuda,cuda_bf16,cpu_bf16,expected",
    [
        ("auto", True, True, False, "bf16-mixed"),
        ("gpu", True, False, False, "16-mixed"),
        ("auto", False, False, True, "bf16-mixed"),  # a CPU with AVX-512 BF16 or AMX
        ("auto", False, False, False, "32-true"),  # bf16 would be emulated: slower than fp32
        ("cpu", True, True, True, "bf16-mixed"),
        ("cpu", True, True, False, "32-true"),
        ("mps", False, False, True, "32-true"),
    ],
)
def test_automatic_precision_per_device(monkeypatch, accelerator, cuda, cuda_bf16, cpu_bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: cpu_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert precision.auto_precision(accelerator) == expected


def test_gpus_get_the_same_precision_for_every_command(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    for command in ("fit", "validate", "test", "predict"):
        assert precision.run_precision(command, "auto", None) == "16-mixed"


def built_precision(monkeypatch, tmp_path, backbone, files, command: str, *extra: str) -> str:
    """The precision of the Trainer that `textcls COMMAND --config ... EXTRA` builds on CPU (not run)."""
    from tests.test_cli import write_config
    from textcls.launch import TextclsCLI, make_cli

    monkeypatch.setattr(TextclsCLI, "_run_subcommand", lambda self, subcommand: None)
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, backbone, files)
    args = [command, "--config", str(config), "--trainer.accelerator", "cpu"]
    args += [] if command == "fit" else ["--ckpt_path", "none"]
    return make_cli([*args, *extra]).trainer.precision


@pytest.mark.parametrize("cpu_bf16", [True, False], ids=["bf16-cpu", "fp32-cpu"])
@pytest.mark.parametrize("command", ["fit", "validate", "test", "predict"])
def test_training_uses_native_bf16_and_evaluation_fp32(
    monkeypatch, tmp_path, tiny_backbone, data_files, cpu_bf16, command
):
    """On CPU, automatic precision trains in bf16 where the CPU runs it natively, and evaluates in fp32
    everywhere: `predict` then gives the probabilities of the Predictor, the exported folder and ONNX."""
    monkeypatch.setattr(precision, "cpu_runs_bf16", lambda: cpu_bf16)
    expected = "bf16-mixed" if cpu_bf16 and command == "fit" else "32-true"
    assert built_precision(monkeypatch, tmp_path, tiny_backbone, data_files, command) == expected


@pytest.mark.parametrize(
    "command,extra,expected",
    [
        ("fit", ("--trainer.precision", "32-true"), "32-true"),
        ("predict", ("--trainer.precision", "bf16-mixed"), "bf16-mixed"),  # faster, ~1e-2 off fp32
        ("test", ("--trainer.precision", "bf16-true"), "bf16-true"),  # half weights: fine for inference
        ("predict", ("--prediction.quantize", "int8"), "32-true"),
        ("test", ("--prediction.quantize", "int8"), "32-true"),
        ("fit", ("--prediction.quantize", "int8"), "bf16-mixed"),  # fit does not quantize
    ],
)
def test_the_users_precision_and_int8(
    monkeypatch, tmp_path, tiny_backbone, data_files, command, extra, expected
):
    monkeypatch.setattr(precision, "cpu_runs_bf16", lambda: True)
    assert built_precision(monkeypatch, tmp_path, tiny_backbone, data_files, command, *extra) == expected


@pytest.mark.parametrize("given", ["16-true", "bf16-true"])
def test_fit_refuses_pure_half_precision_in_one_line(tmp_path, tiny_backbone, data_files, given):
    from tests.test_cli import run, write_config

    config = write_config(tmp_path, tiny_backbone, data_files)
    proc = run("fit", "--config", str(config), "--trainer.precision", given, cwd=tmp_path, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith(f"textcls: error: trainer.precision {given} keeps"), last
    assert "use bf16-mixed or 16-mixed" in last
    assert not (tmp_path / "logs").exists()  # refused before anything ran


def test_int8_refuses_a_precision_set_by_the_user():
    with pytest.raises(precision.PrecisionError, match="int8 runs in full precision.*not bf16-mixed"):
        precision.run_precision("predict", "cpu", "bf16-mixed", "int8")


def test_mixed_precision_fits_do_not_warn_about_the_model_summary(tiny_backbone):
    """Lightning's summary has no size entry for bf16-mixed and says so on every fit: noise (the weights
    are fp32, which it then counts), silenced with the other library noise."""
    from lightning.pytorch.utilities.model_summary import ModelSummary

    from textcls.quiet import quiet_libraries

    model = TextClassifier(tiny_backbone, LABELS)
    model.trainer = L.Trainer(accelerator="cpu", precision="bf16-mixed", logger=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ModelSummary(model)
        quiet_libraries()
        ModelSummary(model)
    assert len([w for w in caught if "not supported by the model summary" in str(w.message)]) == 1


def test_fit_trains_in_bf16_and_validates_in_fp32_on_cpu(tmp_path, tiny_backbone, monkeypatch):
    """The temperature, thresholds and best checkpoint are chosen on the fp32 probabilities that test and
    predict compute on CPU, whatever fit trains in."""
    data = tiny_data(tmp_path, tiny_backbone, imbalanced_train(tmp_path))
    model = TextClassifier(tiny_backbone, data.label_names, learning_rate=3e-3)
    seen = []
    text_logits = TextClassifier.text_logits

    def spy(self, batch):
        logits = text_logits(self, batch)
        seen.append(("train" if self.trainer.training else "val", logits.dtype))
        return logits

    monkeypatch.setattr(TextClassifier, "text_logits", spy)
    clipped_trainer("bf16-mixed", [], num_sanity_val_steps=0).fit(model, datamodule=data)
    assert {dtype for stage, dtype in seen if stage == "train"} == {torch.bfloat16}
    assert {dtype for stage, dtype in seen if stage == "val"} == {torch.float32}
