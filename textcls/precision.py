"""The precision each command runs in: one rule, applied by the CLI before the Trainer is built.

When `trainer.precision` is not set:
- GPUs, every command: bf16-mixed where supported, else 16-mixed (fp16 with loss scaling).
- CPUs, `fit`: bf16-mixed where the CPU does bf16 arithmetic itself (AVX-512 BF16 or AMX tiles), where it
  trains faster than fp32; a CPU without it emulates bf16 and runs many times slower: 32-true.
- CPUs, `validate`, `test` and `predict`: 32-true, as the Predictor, the app, the exported folder and ONNX
  (all fp32 on CPU): one text gets one probability whichever path reads it. bf16 is faster there, but
  moves probabilities (8 bits of mantissa): `--trainer.precision bf16-mixed` asks for it.
- `--prediction.quantize int8` (test, predict): 32-true, which int8 dynamic quantization needs.
- The validations inside `fit` on CPU run in fp32 whatever `fit` trains in (`full_precision_on_cpu`): the
  temperature, thresholds and best checkpoint they choose are then chosen on the probabilities that
  `test` and `predict` will compute.

A precision the user sets wins, except where it cannot work: `fit` refuses pure half precision
(16-true, bf16-true), and int8 refuses anything but full precision, each in one line.
"""

import contextlib

import torch

QUANTIZING = ("test", "predict")  # the commands that apply prediction.quantize
FULL_PRECISION = ("32-true", "32", 32)
HALF_WEIGHTS = ("16-true", "bf16-true")
HALF_WEIGHTS_MESSAGE = (
    "trainer.precision {precision} keeps the weights in half precision, where AdamW's updates are lost: in "
    "fp16 its epsilon (1e-8) is 0 and the first step makes the weights infinite or NaN; in bf16 updates of a "
    "fine-tuning learning rate are rounded to the weights' 8-bit resolution (lost or enlarged), which trains "
    "worse; use bf16-mixed or 16-mixed (half-precision arithmetic, fp32 weights)"
)


class PrecisionError(ValueError):
    """A trainer.precision the command cannot run in."""


def run_precision(command: str, accelerator, precision, quantize: str | None = None) -> str:
    """The precision `command` runs in: `precision` as set (checked), or the automatic choice when None."""
    int8 = quantize == "int8" and command in QUANTIZING
    if precision is None:
        return "32-true" if int8 else auto_precision(accelerator, training=command == "fit")
    if command == "fit" and str(precision) in HALF_WEIGHTS:
        raise PrecisionError(HALF_WEIGHTS_MESSAGE.format(precision=precision))
    if int8:
        check_int8_precision(precision)
    return precision


def check_int8_precision(precision) -> None:
    """int8 dynamic quantization runs in full precision only."""
    if precision not in FULL_PRECISION:
        raise PrecisionError(
            f"prediction.quantize int8 runs in full precision: leave trainer.precision unset or pass "
            f"32-true (not {precision})"
        )


def auto_precision(accelerator, training: bool = True) -> str:
    """bf16 where the GPU supports it, fp16 on older GPUs; on CPU bf16-mixed for training where it runs
    natively (AVX-512 BF16 or AMX), else full precision (emulated bf16 is slower,
    and evaluation keeps fp32 so that every prediction path gives the same probabilities)."""
    wants_gpu = accelerator in (None, "auto", "gpu", "cuda")
    if wants_gpu and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if training and accelerator in (None, "auto", "cpu") and cpu_runs_bf16():
        return "bf16-mixed"
    return "32-true"


def cpu_runs_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic of its own (AVX-512 BF16 or AMX tiles)."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def full_precision_on_cpu(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """fp32 arithmetic on CPU inside a bf16 autocast region (nothing changes on other devices, or when
    not `enabled`)."""
    if enabled and device.type == "cpu":
        return torch.autocast("cpu", enabled=False)
    return contextlib.nullcontext()
