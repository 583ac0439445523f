"""Dynamic int8 quantization for prediction on CPU: the Linear layers' weights stored as int8 and their
inputs quantized on the fly (`torch.ao.quantization.quantize_dynamic`).

On CPU, long texts make inference compute-bound; int8 matrix products do the same work with cheaper
arithmetic. Accuracy can move a little: `textcls test --prediction.quantize int8` measures it on the
test split, and an int8 ONNX export is checked against the fp32 model before it is written.
"""

import torch
from torch import nn

QUANTIZE = ("none", "int8")


class QuantizeError(ValueError):
    """A quantization that cannot be done as asked."""


def check_quantize(quantize: str | None, option: str = "prediction.quantize") -> str | None:
    """`quantize` as given ('int8'), or None for none; a one-line error for anything else."""
    if quantize in (None, "none"):
        return None
    if quantize not in QUANTIZE:
        raise QuantizeError(f"{option} must be one of {', '.join(QUANTIZE)}, got '{quantize}'")
    return quantize


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of `model` with dynamically quantized int8 Linear layers, for CPU inference."""
    device = next(model.parameters()).device
    if device.type != "cpu":
        raise QuantizeError(
            f"int8 quantization is for prediction on CPU; the model is on {device.type}: "
            "pass --trainer.accelerator cpu, or leave quantization off"
        )
    return torch.ao.quantization.quantize_dynamic(model.eval(), {nn.Linear}, dtype=torch.qint8)
