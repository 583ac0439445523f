"""Every bad input a user can give ends in one line that names the problem and the fix, never a traceback.

Data problems are checked in-process (fast); a few cases go through the real command line to show the
whole path: exit code 2, no traceback, the message on the last line of stderr.
"""

import builtins
import errno
import json
import os
import pickle
import time
from types import SimpleNamespace

import lightning as L
import pandas as pd
import pytest
import torch

from tests.conftest import make_rows, write_jsonl
from tests.test_cli import ROOT, run, write_config
from textcls import cli, launch
from textcls.backbone import BackboneNotFoundError, load_tokenizer
from textcls.callbacks import FiniteLossCheck, NonFiniteLossError
from textcls.checkpoint import CheckpointError, load_checkpoint, resolve_ckpt_path
from textcls.cli import user_error
from textcls.data import DataError, TextClassificationData
from textcls.model import HyperParameterError, TextClassifier


def data(tmp_path, **kwargs) -> TextClassificationData:
    kwargs.setdefault("cache_dir", str(tmp_path / "cache"))
    return TextClassificationData(**kwargs)


def frames_error(tmp_path, **kwargs) -> str:
    with pytest.raises(DataError) as err:
        data(tmp_path, **kwargs).frames  # noqa: B018 (reading the property reads the files)
    return str(err.value)


def assert_clean_failure(proc, *words: str) -> str:
    """Exit code 2, no traceback, and a last stderr line that contains `words`."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last, last
    return last


# ----------------------------------------------------------------------------- files


def test_missing_file(tmp_path):
    msg = frames_error(tmp_path, train_file=str(tmp_path / "nope.csv"))
    assert "nope.csv' does not exist" in msg and "check the path" in msg


def test_folder_that_is_not_a_dataset(tmp_path):
    (tmp_path / "folder").mkdir()
    msg = frames_error(tmp_path, train_file=str(tmp_path / "folder"))
    assert "not a saved dataset" in msg and "point at a data file" in msg


@pytest.mark.parametrize("name", ["secret.csv", "secret.jsonl"])
def test_unreadable_file(tmp_path, monkeypatch, name):
    path = tmp_path / name
    path.write_text("text,label\na,b\n" if name.endswith(".csv") else '{"text": "a", "label": "b"}\n')
    path.chmod(0)  # enough for other users; root reads any file, so opening it is refused below too
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    msg = frames_error(tmp_path, train_file=str(path))
    assert "cannot read" in msg and "Permission denied" in msg


def test_unknown_extension(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    msg = frames_error(tmp_path, train_file=str(path))
    assert "unknown extension '.xlsx'" in msg and ".csv, .tsv, .jsonl" in msg


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "data.parquet"
    path.write_text("not parquet")
    assert "cannot be read as PARQUET" in frames_error(tmp_path, train_file=str(path))


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("empty.csv", "", "is empty"),
        ("header.csv", "text,label\n", "has no data rows"),
        ("header.tsv", "text\tlabel\n", "has no data rows"),
        ("empty.jsonl", "\n", "has no data rows"),
    ],
)
def test_empty_or_header_only(tmp_path, name, content, expected):
    (tmp_path / name).write_text(content)
    assert expected in frames_error(tmp_path, train_file=str(tmp_path / name))


def test_missing_column_lists_the_columns(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"sentence": "hi", "label": "a"}])
    msg = frames_error(tmp_path, train_file=str(path))
    assert "no column 'text'" in msg and "'sentence', 'label'" in msg and "data.text_column" in msg


def test_not_utf8_names_the_encoding_option(tmp_path):
    path = tmp_path / "latin.csv"
    rows = "".join(f"café {i},{'ab'[i % 2]}\n" for i in range(20))
    path.write_bytes(("text,label\n" + rows).encode("latin-1"))
    msg = frames_error(tmp_path, train_file=str(path), val_fraction=0, test_fraction=0)
    assert "not valid utf-8" in msg and "--data.encoding" in msg and "latin-1" in msg
    frames = data(tmp_path, train_file=str(path), encoding="latin-1", val_fraction=0, test_fraction=0).frames
    assert frames["train"]["text"].iloc[0] == "café 0"
    assert "unknown data.encoding 'nope'" in frames_error(tmp_path, train_file=str(path), encoding="nope")


def test_malformed_jsonl_line_number(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": "c", label: z}\n')
    msg = frames_error(tmp_path, train_file=str(path))
    assert "line 3 is not valid JSON" in msg and "one JSON object per line" in msg


def test_ragged_csv(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nfine,a\ntoo,many,fields\nok,b\n")
    msg = frames_error(tmp_path, train_file=str(path))
    assert "not well-formed CSV" in msg and "line 3" in msg


def test_short_csv_row_is_a_missing_label(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nfine,a\nno label here\nok,b\n")
    assert "1 rows without a label (first at source row 1)" in frames_error(tmp_path, train_file=str(path))


# ----------------------------------------------------------------------------- texts and labels


def test_empty_texts_dropped_with_a_count_or_refused(tmp_path):
    rows = make_rows(10) + [{"text": "  ", "label": "food"}, {"text": None, "label": "tech"}]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    with pytest.warns(UserWarning, match="dropped 2 empty or whitespace-only texts"):
        frames = data(tmp_path, train_file=str(path), val_fraction=0, test_fraction=0).frames
    assert len(frames["train"]) == 30
    msg = frames_error(tmp_path, train_file=str(path), empty_texts="error")
    assert "2 empty texts" in msg and "data.empty_texts=drop" in msg


def test_missing_labels(tmp_path):
    path = write_jsonl(
        tmp_path / "t.jsonl", make_rows(5) + [{"text": "no label"}, {"text": "x", "label": ""}]
    )
    msg = frames_error(tmp_path, train_file=str(path))
    assert "2 rows without a label (first at source row 15)" in msg and "fill or remove" in msg


def test_numeric_text_column(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": 3.5, "label": "a"}, {"text": 1, "label": "b"}])
    msg = frames_error(tmp_path, train_file=str(path))
    assert "non-text values" in msg and "data.text_column" in msg


def test_label_only_in_test(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", make_rows(5))
    test = write_jsonl(tmp_path / "test.jsonl", make_rows(2) + [{"text": "new", "label": "music"}])
    msg = frames_error(tmp_path, train_file=str(train), test_file=str(test))
    assert "labels in test never occur in train: music" in msg


def test_single_class(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": f"t {i}", "label": "only"} for i in range(10)])
    msg = frames_error(tmp_path, train_file=str(path))
    assert "single class ('only')" in msg and "at least two" in msg


def test_class_with_one_example_stays_in_train(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", make_rows(10) + [{"text": "lonely", "label": "rare"}])
    with pytest.warns(UserWarning, match="classes too small to split were kept in train only: rare"):
        frames = data(tmp_path, train_file=str(path)).frames
    assert "rare" in set(frames["train"]["label"]) and "rare" not in set(frames["validation"]["label"])


def test_very_long_texts_are_truncated(tmp_path, tiny_backbone):
    rows = make_rows(10) + [{"text": "goal " * 20_000, "label": "sports"}]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    module = data(tmp_path, train_file=str(path), model_name_or_path=tiny_backbone, max_length=16)
    module.setup("fit")
    lengths = module.encoded["train"].lengths
    assert lengths.max() == 16 and len(lengths) == len(module.frames["train"])


def test_predict_input_without_text_column(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("body\nhello\n")
    with pytest.raises(DataError, match="predict data has no column 'text'; its columns are 'body'"):
        data(tmp_path, predict_file=str(path)).read_predict_frame()


def test_checkpoint_labels_do_not_match_the_test_data(tmp_path, tiny_backbone, data_files):
    # a checkpoint supplies its labels through data.labels (see cli._parse_ckpt_path)
    module = data(
        tmp_path, test_file=str(data_files["test"]), labels=["neg", "pos"], model_name_or_path=tiny_backbone
    )
    with pytest.raises(DataError, match="not among the model's labels .* does not match the checkpoint"):
        module.setup("test")


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"learning_rate": -1e-5}, "model.learning_rate must be positive"),
        ({"warmup_ratio": 1.0}, "model.warmup_ratio must be in [0, 1)"),
        ({"warmup_ratio": -0.1}, "model.warmup_ratio must be in [0, 1)"),
        ({"label_smoothing": 1.5}, "model.label_smoothing must be in [0, 1)"),
        ({"class_weights": [1.0]}, "model.class_weights needs 2 non-negative weights"),
    ],
)
def test_invalid_model_hyper_parameters(kwargs, expected):
    with pytest.raises(HyperParameterError) as err:
        TextClassifier(model_name_or_path="never-loaded", label_names=["a", "b"], **kwargs)
    assert expected in str(err.value)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"batch_size": 0}, "data.batch_size and data.eval_batch_size must be at least 1"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "add up to less than 1"),
        ({"val_fraction": -0.1}, "must each be in [0, 1)"),
        ({"max_length": 0}, "data.max_length must be at least 2"),
        ({"empty_texts": "keep"}, "data.empty_texts must be 'drop' or 'error'"),
    ],
)
def test_invalid_data_settings(tmp_path, kwargs, expected):
    with pytest.raises(DataError) as err:
        data(tmp_path, **kwargs)
    assert expected in str(err.value)


def test_hub_name_fails_fast_offline():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    start = time.perf_counter()
    with pytest.raises(BackboneNotFoundError) as err:
        load_tokenizer("textcls-tests/no-such-model")
    assert time.perf_counter() - start < 10
    assert "(HF_HUB_OFFLINE is set)" in str(err.value) and "pass a local model folder" in str(err.value)


def test_ckpt_path_that_does_not_exist(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint 'nope.ckpt' does not exist"):
        resolve_ckpt_path("nope.ckpt", None)


def test_ckpt_path_that_is_not_a_checkpoint(tmp_path):
    garbage = tmp_path / "notes.ckpt"
    garbage.write_text("hello")
    with pytest.raises(CheckpointError, match="is not a textcls checkpoint"):
        load_checkpoint(str(garbage))
    plain = tmp_path / "tensor.ckpt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="no weights and hyper-parameters"):
        load_checkpoint(str(plain))


# ----------------------------------------------------------------------------- faults


class _Exploit:
    """Unpickling this would run code: it must never be unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_checkpoint_that_runs_code_is_refused_without_running_it(tmp_path, tiny_backbone, data_files):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": {}, "hyper_parameters": _Exploit(marker)}))
    config = write_config(tmp_path, tiny_backbone, data_files)
    proc = run("test", "--config", str(config), "--ckpt_path", str(evil), cwd=tmp_path, check=False)
    assert_clean_failure(proc, "is not a textcls checkpoint", "evil.ckpt")
    assert not marker.exists()


def test_cli_missing_data_file(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, {**data_files, "train": tmp_path / "missing.jsonl"})
    proc = run("fit", "--config", str(config), cwd=tmp_path, check=False)
    assert_clean_failure(proc, "textcls: error:", "missing.jsonl' does not exist", "check the path")


def test_cli_invalid_hyper_parameter(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files)
    proc = run("fit", "--config", str(config), "--model.warmup_ratio", "1.5", cwd=tmp_path, check=False)
    assert_clean_failure(proc, "textcls: error: model.warmup_ratio must be in [0, 1), got 1.5")


def test_cli_value_of_the_wrong_type(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files)
    proc = run("fit", "--config", str(config), "--data.batch_size", "many", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "data.batch_size" in proc.stderr and "many" in proc.stderr


def test_cli_predict_output_folder_missing(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files)
    out = tmp_path / "no-such-folder" / "preds.csv"
    proc = run(
        "predict", "--config", str(config), "--ckpt_path", "none", "--prediction.output_path", str(out),
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert_clean_failure(proc, "no-such-folder", "does not exist: create it first")


def test_cli_predict_output_formats(tmp_path, tiny_backbone, data_files):
    config = write_config(tmp_path, tiny_backbone, data_files)
    out = tmp_path / "preds.parquet"
    args = ("predict", "--config", str(config), "--ckpt_path", "none", "--prediction.output_path")
    run(*args, str(out), cwd=tmp_path)
    inputs = pd.read_csv(data_files["predict"])
    assert pd.read_parquet(out)["text"].tolist() == inputs["text"].tolist()
    proc = run(*args, str(tmp_path / "preds.xlsx"), cwd=tmp_path, check=False)
    assert_clean_failure(proc, "preds.xlsx", ".csv, .jsonl, .json, .parquet", "'.xlsx'")


def test_errors_inside_library_code_keep_their_traceback_and_ask_for_a_report(monkeypatch, capsys):
    def library_bug(*args, **kwargs):
        raise FileNotFoundError("[Errno 2] No such file or directory: '/site-packages/some/asset.json'")

    monkeypatch.setattr(launch, "TextclsCLI", library_bug)
    monkeypatch.delenv("TEXTCLS_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fit"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "FileNotFoundError: [Errno 2]" in err
    assert "not a problem with your input" in err.strip().splitlines()[-1]
    assert "please report it" in err.strip().splitlines()[-1]


def test_out_of_memory_message(monkeypatch, capsys):
    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(launch, "TextclsCLI", oom)
    monkeypatch.delenv("TEXTCLS_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fit"])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "out of GPU memory" in last and "data.batch_size" in last and "accumulate_grad_batches" in last
    assert "data.max_length" in last


def test_wrapped_user_errors_are_unwrapped():
    try:
        try:
            raise DataError("the real problem")
        except DataError as inner:
            raise RuntimeError("instantiation failed") from inner
    except RuntimeError as outer:
        assert str(user_error(outer)) == "the real problem"
    assert user_error(RuntimeError("a bug")) is None


def test_debug_switch_shows_the_traceback(monkeypatch):
    def fail(*args, **kwargs):
        raise DataError("bad data")

    monkeypatch.setattr(launch, "TextclsCLI", fail)
    monkeypatch.setenv("TEXTCLS_DEBUG", "1")
    with pytest.raises(DataError, match="bad data"):
        cli.main(["fit"])


class _NaNAfterTwoSteps(TextClassifier):
    def loss(self, logits, labels):
        loss = super().loss(logits, labels)
        return loss * float("nan") if self.global_step >= 2 else loss


def test_non_finite_loss_stops_with_the_step(tmp_path, tiny_backbone, data_files):
    module = data(
        tmp_path, train_file=str(data_files["train"]), model_name_or_path=tiny_backbone, batch_size=8
    )
    model = _NaNAfterTwoSteps(tiny_backbone, label_names=module.label_names)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = L.Trainer(
        max_epochs=1, callbacks=[FiniteLossCheck()], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    with pytest.raises(NonFiniteLossError) as err:
        trainer.fit(model, datamodule=module)
    msg = str(err.value)
    assert "the training loss became nan at step 2" in msg and "model.learning_rate" in msg
    assert "precision" not in msg  # in fp32 the precision is not the cause
    # stopped before a NaN reached the weights
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    "precision,advice",
    [
        ("16-mixed", "use trainer.precision bf16-mixed or 32-true (fp16 overflows above 65504)"),
        ("16-true", "trainer.precision 16-true keeps the weights in half precision"),
        ("bf16-mixed", "lower model.learning_rate or set trainer.gradient_clip_val=1.0; the last"),
    ],
)
def test_non_finite_loss_advice_follows_the_precision(precision, advice):
    trainer = SimpleNamespace(
        global_step=1,
        current_epoch=0,
        precision=precision,
        fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_idx=1)),
    )
    with pytest.raises(NonFiniteLossError, match="became nan at step 1") as err:
        FiniteLossCheck().on_before_backward(trainer, None, torch.tensor(float("nan")))
    assert advice in str(err.value)


def test_predictions_are_written_atomically(tmp_path):
    from textcls.callbacks.table_file import TableFile

    target = tmp_path / "out.csv"
    target.write_text("old,complete\n")

    class Boom(pd.DataFrame):
        def to_csv(self, path, **kwargs):
            with open(path, "a") as f:
                f.write("half")
            raise OSError("disk full")

    table = TableFile(target)
    table.append(pd.DataFrame({"a": [1]}))
    with pytest.raises(OSError, match="disk full"):
        table.append(Boom({"a": [2]}))
    table.discard()  # what the writer does when predict stops on an error
    assert target.read_text() == "old,complete\n"  # the old output is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left behind
    table = TableFile(target)
    table.append(pd.DataFrame({"a": [1, 2]}))
    table.close()
    assert pd.read_csv(target)["a"].tolist() == [1, 2]
    jsonl = tmp_path / "out.jsonl"
    table = TableFile(jsonl)
    table.append(pd.DataFrame({"a": ["x"]}))
    table.close()
    assert json.loads(jsonl.read_text()) == {"a": "x"}


# ----------------------------------------------------------------------------- outside fit: checkpoints, configs


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_backbone):
    """A checkpoint of the tiny model after a few steps, with its config and data."""
    tmp = tmp_path_factory.mktemp("errors")
    files = {
        "train": write_jsonl(tmp / "train.jsonl", make_rows(10, seed=1)),
        "test": write_jsonl(tmp / "test.jsonl", make_rows(3, seed=2)),
        "predict": write_jsonl(tmp / "predict.jsonl", make_rows(2, seed=3)),
    }
    config = write_config(tmp, tiny_backbone, files, max_epochs=1)
    run("fit", "--config", str(config), cwd=tmp)
    ckpt = tmp / "logs" / "tiny" / "version_0" / "checkpoints" / "best.ckpt"
    return {"tmp": tmp, "config": config, "ckpt": ckpt, "files": files}


def assert_one_line(proc, *words: str) -> str:
    """A clean failure whose stderr is that one line and nothing else (no usage)."""
    last = assert_clean_failure(proc, "textcls: error:", *words)
    assert proc.stderr.strip() == last
    return last


def edited_checkpoint(trained, path, **hyper_parameters):
    content = torch.load(trained["ckpt"], weights_only=True)
    content["hyper_parameters"].update(hyper_parameters)
    torch.save(content, path)
    return path


def using(command: str, ckpt, trained) -> list[str]:
    """The arguments of `command` with `--ckpt_path ckpt`."""
    if command == "predict":
        out = trained["tmp"] / "preds.csv"
        return ["predict", "--config", str(trained["config"]), "--ckpt_path", str(ckpt),
                "--prediction.output_path", str(out)]  # fmt: skip
    if command == "export":
        return ["export", "--ckpt_path", str(ckpt), "--output_dir", str(trained["tmp"] / "exported")]
    return ["explain", "--ckpt_path", str(ckpt), "--text", "pizza", "--format", "text", "--n_steps", "2"]


@pytest.mark.parametrize("command", ["predict", "export"])
@pytest.mark.parametrize("labels", [["food", "sports", "tech", "music"], ["food", "sports"]])
def test_checkpoint_whose_head_does_not_match_its_labels(trained, tmp_path, command, labels):
    ckpt = edited_checkpoint(trained, tmp_path / "edited.ckpt", label_names=labels)
    proc = run(*using(command, ckpt, trained), cwd=trained["tmp"], check=False)
    last = assert_clean_failure(proc, "checkpoint is inconsistent", "head has 3 outputs")
    assert f"lists {len(labels)} labels" in last


class _OtherModule(L.LightningModule):
    def __init__(self, hidden_dim: int = 4):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(hidden_dim, 2)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize("command", ["predict", "export", "explain"])
def test_checkpoint_of_another_lightning_module(trained, tmp_path, command):
    trainer = L.Trainer(
        max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(2, 4)), batch_size=2)
    trainer.fit(_OtherModule(), data)
    other = tmp_path / "other.ckpt"
    trainer.save_checkpoint(other)
    proc = run(*using(command, other, trained), cwd=trained["tmp"], check=False)
    last = assert_clean_failure(proc, "other.ckpt' is not a textcls checkpoint", "another LightningModule")
    assert "hidden_dim" in last and "does not accept" not in last


def test_checkpoint_with_settings_this_version_does_not_know(trained, tmp_path):
    ckpt = edited_checkpoint(trained, tmp_path / "future.ckpt", new_option=3)
    proc = run(*using("predict", ckpt, trained), cwd=trained["tmp"], check=False)
    assert_clean_failure(proc, "--ckpt_path", "carries settings this textcls cannot use", "model.new_option")


@pytest.mark.parametrize("command", ["predict", "export", "explain"])
def test_ckpt_path_to_a_folder_that_is_not_a_model(trained, tmp_path, command):
    folder = tmp_path / "just-a-folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    proc = run(*using(command, folder, trained), cwd=trained["tmp"], check=False)
    last = assert_clean_failure(
        proc, "just-a-folder' is neither a checkpoint file nor an exported model folder"
    )
    assert "config.json" in last and "does not exist" not in last


@pytest.mark.parametrize(
    "content, where",
    [
        ("model:\n  learning_rate: 0.1\n  model_name_or_path: [a, b\n", "(line 4, column 1)"),
        ("data:\n  batch_size: 8\n   max_length: 16\n", "(line 3, column 14)"),
    ],
)
def test_config_that_is_not_yaml_names_the_file(trained, tmp_path, content, where):
    bad = tmp_path / "broken.yaml"
    bad.write_text(content)
    args = ("fit", "--config", str(trained["config"]), "--config", str(bad))
    last = assert_one_line(run(*args, cwd=tmp_path, check=False), f"config file '{bad}'", "not valid YAML")
    assert last.endswith(where)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--config", "{config}", "--config", "{unknown}"], ["unknown option 'model.learnin_rate'"]),
        (["--config", "{tmp}/nope.yaml"], ["nope.yaml", "does not exist"]),
        (["--config", "{config}", "--data.batch_size", "many"], ["--data.batch_size", "many"]),
        (["--config", "{config}", "--no_such_option", "1"], ["unrecognized arguments: --no_such_option"]),
    ],
)
@pytest.mark.parametrize("command", ["fit", "predict", "check-data"])
def test_parse_errors_are_one_line_without_usage(trained, tmp_path, command, args, words):
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("model:\n  learnin_rate: 0.1\n")
    names = {"config": trained["config"], "unknown": unknown, "tmp": tmp_path}
    proc = run(command, *[a.format(**names) for a in args], cwd=tmp_path, check=False)
    last = assert_one_line(proc, *words)
    assert last.endswith(f"(see `textcls {command} --help`)")
    assert "usage:" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("command", ["export", "explain"])
def test_function_commands_parse_errors_are_one_line(command):
    proc = run(command, "--no_such_option", "1", cwd=ROOT, check=False)
    assert_one_line(proc, "unrecognized arguments: --no_such_option", f"(see `textcls {command} --help`)")
    assert run(command, "--help", cwd=ROOT).stdout.startswith(f"usage: textcls {command}")


@pytest.mark.parametrize("text", ["", "   "])
def test_explain_an_empty_text_is_refused(trained, text):
    args = ["explain", "--ckpt_path", str(trained["ckpt"]), "--text", text, "--format", "text"]
    proc = run(*args, cwd=trained["tmp"], check=False)
    assert_clean_failure(proc, "--text is empty")
    assert proc.stdout == ""


@pytest.fixture(scope="module")
def exported(trained):
    folder = trained["tmp"] / "exported-model"
    run("export", "--ckpt_path", str(trained["ckpt"]), "--output_dir", str(folder), cwd=trained["tmp"])
    return folder


@pytest.mark.parametrize("source", ["checkpoint", "exported folder"])
@pytest.mark.parametrize(
    "args, replaced",
    [
        (
            ["--model.model_name_or_path", "some-org/other-model"],
            "model.model_name_or_path 'some-org/other-model'",
        ),
        (["--data.labels", "[neg, pos]"], "data.labels ['neg', 'pos'] -> ['food', 'sports', 'tech']"),
    ],
)
def test_config_naming_another_model_is_warned_about_and_the_checkpoint_wins(
    request, trained, source, args, replaced
):
    model = trained["ckpt"] if source == "checkpoint" else request.getfixturevalue("exported")
    out = trained["tmp"] / "warned.csv"
    base = ["predict", "--config", str(trained["config"]), "--ckpt_path", str(model)]
    proc = run(*base, *args, "--prediction.output_path", str(out), cwd=trained["tmp"])
    warnings_ = [line for line in proc.stderr.splitlines() if line.startswith("textcls: warning:")]
    assert len(warnings_) == 1 and replaced in warnings_[0] and "keeps its own" in warnings_[0]
    assert set(pd.read_csv(out)["label"]) <= {"food", "sports", "tech"}
    quiet = run(*base, "--prediction.output_path", str(out), cwd=trained["tmp"])
    assert "textcls: warning:" not in quiet.stderr  # the config that trained it: nothing to say


@pytest.mark.parametrize(
    "option, value",
    [("max_epochs", "0"), ("max_steps", "0"), ("limit_train_batches", "0"), ("limit_train_batches", "0.0")],
)
def test_fit_that_would_train_nothing_is_refused(tmp_path, tiny_backbone, data_files, option, value):
    config = write_config(tmp_path, tiny_backbone, data_files)
    proc = run("fit", "--config", str(config), f"--trainer.{option}", value, cwd=tmp_path, check=False)
    assert_clean_failure(proc, f"--trainer.{option} 0 trains nothing")
    assert not (tmp_path / "logs").exists()  # refused before anything ran
