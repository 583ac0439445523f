"""The precision a run gets when its config sets none (`trainer.precision` set by the user always wins).

GPUs: bf16 where supported, else fp16 with loss scaling. CPUs: bf16 autocast only where the CPU does
bf16 arithmetic itself (AVX-512 BF16 or AMX tiles), where it trains about 1.3x faster than fp32; a CPU
without it emulates bf16 and runs many times slower, so it keeps fp32.
"""

import torch


def auto_precision(accelerator) -> str:
    """bf16 where the GPU supports it, fp16 on older GPUs; on CPU bf16-mixed where it runs natively
    (AVX-512 BF16 or AMX: about 1.3x faster training), else full precision (emulated bf16 is slower)."""
    wants_gpu = accelerator in (None, "auto", "gpu", "cuda")
    if wants_gpu and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if accelerator in (None, "auto", "cpu") and cpu_runs_bf16():
        return "bf16-mixed"
    return "32-true"


def cpu_runs_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic of its own (AVX-512 BF16 or AMX tiles)."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
