"""LPIPS (learned perceptual image patch similarity) with all weights from one local state-dict file.

Definition (Zhang et al. 2018): deep features of both images from a backbone (AlexNet, VGG16 or
SqueezeNet), unit-normalised per channel, squared differences weighted by learned 1x1 "lin" layers,
averaged spatially and summed over layers. Lower = more similar. Inputs are float images [N, 3, H, W]
in [0, 1]; the metric is the mean over all image pairs.

The network is torchmetrics' LPIPS module built with random weights (so torchvision downloads
nothing) and then loaded, strictly, from ``weights``: a state dict of that module (backbone + lin
layers). :func:`export_lpips_weights` writes such a file from a torchvision backbone state dict
(e.g. ``alexnet-owt-7be5be79.pth``) and the lin weights that ship inside the torchmetrics package.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchmetrics.functional.image.lpips import _NoTrainLpips

from csg_lightning.metrics.running_mean import RunningMean
from csg_lightning.metrics.weights import require_file

LPIPS_WEIGHTS_HINT = (
    "an LPIPS state dict (backbone + lin layers); make one from torchvision backbone weights with "
    "`python -m csg_lightning.metrics.lpips BACKBONE.pth OUT.pth --net alex`"
)
_TV_NAMES = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}


def build_lpips(net_type: str = "alex") -> _NoTrainLpips:
    """The LPIPS module with random weights (no download)."""
    if net_type not in _TV_NAMES:
        raise ValueError(f"LPIPS net_type must be one of {sorted(_TV_NAMES)}, got {net_type!r}")
    return _NoTrainLpips(pretrained=False, net=net_type, pnet_rand=True)


def _backbone_key(key: str) -> str:
    """``net.slice1.0.weight`` / ``net.slices.1.3.squeeze.weight`` -> ``features.0.weight`` / ``features.3...``."""
    parts = key.split(".")[1:]  # drop "net"
    parts = parts[2:] if parts[0] == "slices" else parts[1:]
    return "features." + ".".join(parts)


def export_lpips_weights(backbone: str | Path, out: str | Path, net_type: str = "alex") -> Path:
    """torchvision backbone state dict file + torchmetrics' bundled lin weights -> one LPIPS state dict file."""
    import torchmetrics.functional.image.lpips as tm_lpips

    backbone = require_file(
        backbone, "LPIPS", f"torchvision {_TV_NAMES[net_type]} weights (a state dict .pth)"
    )
    tv_state = torch.load(backbone, map_location="cpu", weights_only=True)
    lin_file = Path(tm_lpips.__file__).parent / "lpips_models" / f"{net_type}.pth"
    lin_state = torch.load(lin_file, map_location="cpu", weights_only=True)
    model = build_lpips(net_type)
    state = model.state_dict()
    for key in state:
        is_lin = key.startswith("lin")
        source, where = (lin_state, lin_file) if is_lin else (tv_state, backbone)
        if key.startswith("lins."):  # the ModuleList aliasing lin0, lin1, ...
            _, k, rest = key.split(".", 2)
            name = f"lin{k}.{rest}"
        else:
            name = key if is_lin else _backbone_key(key)
        if name not in source:
            raise KeyError(f"LPIPS export: {name!r} missing from {where}")
        state[key] = source[name]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    return out


class LPIPS(RunningMean):
    """``update(img1, img2)`` float [N, 3, H, W] in [0, 1]; ``compute()`` -> mean LPIPS."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, weights: str | Path, net_type: str = "alex", **kwargs) -> None:
        super().__init__(**kwargs)
        path = require_file(weights, "LPIPS", LPIPS_WEIGHTS_HINT)
        self.net = build_lpips(net_type)
        try:
            self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        except RuntimeError as err:
            raise ValueError(f"LPIPS: {path} does not hold LPIPS-{net_type} weights: {err}") from err

    def update(self, img1: torch.Tensor, img2: torch.Tensor) -> None:
        if img1.shape != img2.shape or img1.ndim != 4 or img1.shape[1] != 3:
            raise ValueError(
                f"LPIPS: expected two [N, 3, H, W] images, got {tuple(img1.shape)}, {tuple(img2.shape)}"
            )
        with torch.no_grad():
            d = self.net(img1.float(), img2.float(), normalize=True).reshape(-1)
        self.total += d.double().sum()
        self.count += d.numel()


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        description="Write an LPIPS weight file from torchvision backbone weights"
    )
    parser.add_argument("backbone", help="torchvision state dict, e.g. alexnet-owt-7be5be79.pth")
    parser.add_argument("out", help="output LPIPS state dict (.pth)")
    parser.add_argument("--net", default="alex", choices=sorted(_TV_NAMES))
    args = parser.parse_args(argv)
    print(export_lpips_weights(args.backbone, args.out, args.net))


if __name__ == "__main__":
    main()
