"""Dtype names of the video stage's YAML fields (``frozen_dtype``, the FSDP precision policy)."""

from __future__ import annotations

import torch

DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32,
          "float16": torch.float16}  # fmt: skip


def resolve_dtype(name: str, field: str = "frozen_dtype") -> torch.dtype:
    """A dtype name -> torch dtype; "auto" -> bfloat16 when CUDA is available, else float32 (bf16
    convolutions are slow on CPU)."""
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    if name not in DTYPES:
        raise ValueError(f"VideoGenerator: {field} must be 'auto' or one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name]
