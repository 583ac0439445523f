"""Every device x precision x clipping combination: the optimizer the module builds passes Lightning's
precision plugin for that device (its checks run without a GPU), and a real tiny fit for every precision
that CPU supports."""

import math
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins.precision import HalfPrecision, MixedPrecision, Precision
from lightning.pytorch.profilers import PassThroughProfiler

from tests.conftest import make_rows, write_jsonl
from textcls.data import TextClassificationData
from textcls.model import TextClassifier

LABELS = ["food", "sports", "tech"]
# "16-mixed" on CPU is turned into "bf16-mixed" by Lightning, so it has no CPU entry of its own
PRECISIONS = {
    "cpu": ["32-true", "bf16-mixed", "bf16-true", "16-true"],
    "cuda": ["32-true", "16-mixed", "bf16-mixed", "bf16-true", "16-true"],
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


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "bf16-true"])
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


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
def test_multi_label_fit_in_half_precision_with_pos_weight(
    tmp_path, tiny_backbone, multi_label_files, precision
):
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
    trainer = clipped_trainer(precision, [losses], enable_checkpointing=False)
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
    from textcls import precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: cpu_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert precision.auto_precision(accelerator) == expected


@pytest.mark.parametrize("given,expected", [(None, "bf16-mixed"), ("32-true", "32-true")])
def test_the_users_precision_wins(monkeypatch, tmp_path, tiny_backbone, data_files, given, expected):
    from tests.test_cli import write_config
    from textcls.cli import make_cli

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    config = write_config(tmp_path, tiny_backbone, data_files)
    args = ["fit", "--config", str(config), "--trainer.accelerator", "cpu", "--trainer.fast_dev_run", "true"]
    args += ["--trainer.precision", given] if given else []
    monkeypatch.chdir(tmp_path)
    cli = make_cli(args)
    assert cli.trainer.precision == expected
