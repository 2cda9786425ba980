"""Loading the pretrained networks of the video metrics from local files, with errors that say what to do.

Nothing is ever downloaded: a metric network is a local file named in the config / command line.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class MissingWeightsError(FileNotFoundError):
    """A metric's weight file is absent; the message names the file, the metric and where to get it."""


def require_file(path: str | Path | None, metric: str, expected: str) -> Path:
    """``path`` as a Path if it is an existing file; else MissingWeightsError naming metric and content."""
    if path is None or str(path) == "":
        raise MissingWeightsError(f"{metric}: no weight file given; expected {expected}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingWeightsError(
            f"{metric}: weight file not found: {path.resolve()}. Put {expected} there (nothing is downloaded "
            f"automatically), or pass another path."
        )
    return path


def load_torchscript(path: str | Path | None, metric: str, expected: str) -> torch.jit.ScriptModule:
    """A TorchScript file (``torch.jit.save``) on the CPU, in eval mode."""
    path = require_file(path, metric, expected)
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as err:
        raise ValueError(f"{metric}: {path} is not a TorchScript file ({expected}): {err}") from err
    return module.eval()


class ScriptedFeatures(nn.Module):
    """Calls a TorchScript feature network with fixed keyword arguments; output [N, D] floats.

    ``num_features`` is found by one probe call on ``probe`` (an input of the expected shape/dtype).
    """

    def __init__(self, module: nn.Module, probe: torch.Tensor, forward_kwargs: dict | None = None) -> None:
        super().__init__()
        self.module = module
        self.forward_kwargs = dict(forward_kwargs or {})
        with torch.no_grad():
            out = self(probe)
        if out.ndim != 2 or out.shape[0] != probe.shape[0]:
            raise ValueError(f"feature network must return [N, D] features, got shape {tuple(out.shape)}")
        self.num_features = int(out.shape[1])

    def train(self, mode: bool = True) -> ScriptedFeatures:
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x, **self.forward_kwargs)
        return out.reshape(out.shape[0], -1).float()
