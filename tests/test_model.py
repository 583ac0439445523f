import pytest
import torch
from transformers import get_linear_schedule_with_warmup  # noqa: F401  (the schedule under test)

from textcls.model import HyperParameterError, TextClassifier

LABELS = ["food", "sports", "tech"]


def batch(n=6, length=7, vocab=40):
    g = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.randint(5, vocab, (n, length), generator=g),
        "attention_mask": torch.ones(n, length, dtype=torch.long),
        "labels": torch.arange(n) % 3,
    }


def test_logits_shape_and_label_maps(tiny_backbone):
    model = TextClassifier(tiny_backbone, LABELS)
    b = batch()
    assert model(b["input_ids"], b["attention_mask"]).shape == (6, 3)
    assert model.model.config.id2label == {0: "food", 1: "sports", 2: "tech"}
    assert model.model.config.label2id == {"food": 0, "sports": 1, "tech": 2}


def test_loss_is_finite_and_falls(tiny_backbone):
    torch.manual_seed(0)
    model = TextClassifier(tiny_backbone, LABELS)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    b = batch()
    losses = []
    for _ in range(25):
        loss = model.loss(model(b["input_ids"], b["attention_mask"]), b["labels"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0]


def test_dropout_is_active_in_training(tiny_backbone):
    model = TextClassifier(tiny_backbone, LABELS)
    b = batch()
    assert model.model.training  # from_pretrained returns eval mode; the module turns it back on
    a, c = (model(b["input_ids"], b["attention_mask"]) for _ in range(2))
    assert not torch.allclose(a, c)  # dropout makes two passes differ
    model.eval()
    a, c = (model(b["input_ids"], b["attention_mask"]) for _ in range(2))
    assert torch.allclose(a, c)


def test_class_weights_and_label_smoothing(tiny_backbone):
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    labels = torch.tensor([0, 2])
    plain = TextClassifier(tiny_backbone, LABELS).loss(logits, labels)
    weighted = TextClassifier(tiny_backbone, LABELS, class_weights=[1.0, 1.0, 0.0]).loss(logits, labels)
    smooth = TextClassifier(tiny_backbone, LABELS, label_smoothing=0.2).loss(logits, labels)
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor([1.0, 1.0, 0.0]))
    assert torch.isclose(weighted, expected) and not torch.isclose(weighted, plain)
    assert not torch.isclose(smooth, plain)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_class_weights_with_half_precision_logits(tiny_backbone, dtype):
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    labels = torch.tensor([0, 2])
    model = TextClassifier(tiny_backbone, LABELS, class_weights=[1.0, 2.0, 0.5]).to(dtype)
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor([1.0, 2.0, 0.5]))
    loss = model.loss(logits.to(dtype), labels)
    assert loss.dtype == torch.float32 and torch.isclose(loss, expected, rtol=1e-2)


def test_evaluation_loss_is_averaged_over_ranks(tiny_backbone):
    model = TextClassifier(tiny_backbone, LABELS)
    logged = {}
    model.log = lambda name, value, **kw: logged.setdefault(name, kw)
    model.training_step(batch(), 0)
    model.validation_step(batch(), 0)
    model.test_step(batch(), 0)
    assert logged["val/loss"]["sync_dist"] and logged["test/loss"]["sync_dist"]
    assert not logged["train/loss"].get("sync_dist")  # per step: no collective at every training step


class FakeTrainer:
    estimated_stepping_batches = 100
    gradient_clip_val = None


def test_unlimited_epochs_need_max_steps(tiny_backbone):
    model = TextClassifier(tiny_backbone, LABELS)
    model._trainer = FakeTrainer()
    model._trainer.estimated_stepping_batches = float("inf")  # max_epochs: -1 and no max_steps
    with pytest.raises(HyperParameterError, match="set trainer.max_steps"):
        model.configure_optimizers()


def test_optimizer_groups_and_warmup_schedule(tiny_backbone):
    model = TextClassifier(tiny_backbone, LABELS, learning_rate=1e-3, warmup_ratio=0.1, weight_decay=0.05)
    model._trainer = FakeTrainer()
    config = model.configure_optimizers()
    opt, sched = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    decay, no_decay = opt.param_groups
    names = {id(p): n for n, p in model.model.named_parameters()}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert all(n.endswith("bias") or "LayerNorm" in n for n in (names[id(p)] for p in no_decay["params"]))
    assert all("LayerNorm" not in names[id(p)] and not names[id(p)].endswith("bias") for p in decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 0.0 and abs(lrs[10] - 1e-3) < 1e-9  # linear warmup over 10 of 100 steps
    assert lrs[5] == 0.5e-3 and lrs[55] < lrs[10] and lrs[-1] < 1e-4  # then linear decay


def test_freeze_encoder_trains_only_the_head(tiny_backbone):
    model = TextClassifier(tiny_backbone, LABELS, freeze_encoder=True)
    trainable = [n for n, p in model.model.named_parameters() if p.requires_grad]
    assert trainable and all(not n.startswith("bert.") for n in trainable)
