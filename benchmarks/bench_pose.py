"""Pose-estimation benchmark: frames/s of the DWPose ONNX backend at the real model sizes.

Prints one JSON line. No DWPose weights are needed (nor downloaded): the two networks are re-built in
PyTorch from their published architectures with random weights and exported to ONNX with the released
files' signatures, so onnxruntime does the same amount of work as with the real files:

- pose: RTMPose-l whole-body (CSPNeXt-l backbone, deepen/widen 1.0, + RTMCC head with its GAU block),
  input 1x3x384x288 -> SimCC x [1, 133, 576], y [1, 133, 768]; the layout of ``dw-ll_ucoco_384.onnx``.
- detector: YOLOX-l (CSPDarknet-l + PAFPN + decoupled head, depth/width 1.0), input 1x3x640x640 ->
  raw [1, 8400, 85]; the layout of ``yolox_l.onnx``. Its objectness is masked so that exactly one
  person box comes out per frame (one speaker per frame: one pose crop), the whole network still runs.

Measured (``--batch-sizes``, default 1,8,32): the pose network alone (crops/s; the released file's batch
dim is fixed to 1, so also a batch-1 graph called crop by crop), the detector alone (frames/s), and the
whole :class:`~csg_lightning.pose.dwpose_onnx.DWPoseONNX` (frames/s, pre/post-processing included): with
the detector on 1280x720 frames (both graphs batch-1, as released) and without it (``detector: null``,
512x512 cropped frames, batched pose graph). On CPU, and on CUDA where onnxruntime has the provider.
An mmpose backend (``csg_lightning/pose/mmpose_backend.py``) is timed too when it and mmpose import
and ``--mmpose-spec`` names its estimator YAML.

    python benchmarks/bench_pose.py [--batch-sizes 1,8,32] [--repeats 1] [--devices cpu,cuda]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pose_onnx_models import encode_boxes, export_onnx  # noqa: E402  (the ONNX export helper)

# ----------------------------------------------------------------------------------------- YOLOX-l


class Conv(nn.Sequential):
    """Conv + (folded) BN + SiLU: a BN after a conv is folded into it by the exporter / onnxruntime."""

    def __init__(self, cin, cout, k=1, s=1, groups=1, act=True):
        super().__init__(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=True))
        if act:
            self.append(nn.SiLU())


class Bottleneck(nn.Module):
    def __init__(self, c, shortcut):
        super().__init__()
        self.conv1, self.conv2, self.add = Conv(c, c, 1), Conv(c, c, 3), shortcut

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return x + y if self.add else y


class CSPLayer(nn.Module):
    """YOLOX's CSP layer (expansion 0.5)."""

    def __init__(self, cin, cout, n, shortcut=True):
        super().__init__()
        hidden = cout // 2
        self.conv1, self.conv2, self.conv3 = Conv(cin, hidden), Conv(cin, hidden), Conv(2 * hidden, cout)
        self.m = nn.Sequential(*[Bottleneck(hidden, shortcut) for _ in range(n)])

    def forward(self, x):
        return self.conv3(torch.cat([self.m(self.conv1(x)), self.conv2(x)], 1))


class SPP(nn.Module):
    def __init__(self, cin, cout, kernels=(5, 9, 13)):
        super().__init__()
        hidden = cin // 2
        self.conv1, self.conv2 = Conv(cin, hidden), Conv(hidden * (len(kernels) + 1), cout)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(torch.cat([x, *[p(x) for p in self.pools]], 1))


class YOLOXL(nn.Module):
    """YOLOX-l (Megvii's layout, depth 1.0 / width 1.0), raw output [N, 8400, 85] (no grid decoding)."""

    def __init__(self, mask: np.ndarray, constant: np.ndarray):
        super().__init__()
        self.stem = Conv(12, 64, 3)  # Focus: space-to-depth, then a 3x3 conv
        self.dark2 = nn.Sequential(Conv(64, 128, 3, 2), CSPLayer(128, 128, 3))
        self.dark3 = nn.Sequential(Conv(128, 256, 3, 2), CSPLayer(256, 256, 9))
        self.dark4 = nn.Sequential(Conv(256, 512, 3, 2), CSPLayer(512, 512, 9))
        self.dark5 = nn.Sequential(Conv(512, 1024, 3, 2), SPP(1024, 1024), CSPLayer(1024, 1024, 3, False))
        self.lateral_conv0, self.c3_p4 = Conv(1024, 512), CSPLayer(1024, 512, 3, False)
        self.reduce_conv1, self.c3_p3 = Conv(512, 256), CSPLayer(512, 256, 3, False)
        self.bu_conv2, self.c3_n3 = Conv(256, 256, 3, 2), CSPLayer(512, 512, 3, False)
        self.bu_conv1, self.c3_n4 = Conv(512, 512, 3, 2), CSPLayer(1024, 1024, 3, False)
        self.stems = nn.ModuleList(Conv(c, 256) for c in (256, 512, 1024))
        self.cls_convs = nn.ModuleList(nn.Sequential(Conv(256, 256, 3), Conv(256, 256, 3)) for _ in range(3))
        self.reg_convs = nn.ModuleList(nn.Sequential(Conv(256, 256, 3), Conv(256, 256, 3)) for _ in range(3))
        self.cls_preds = nn.ModuleList(nn.Conv2d(256, 80, 1) for _ in range(3))
        self.reg_preds = nn.ModuleList(nn.Conv2d(256, 4, 1) for _ in range(3))
        self.obj_preds = nn.ModuleList(nn.Conv2d(256, 1, 1) for _ in range(3))
        self.register_buffer("mask", torch.as_tensor(mask)[None])
        self.register_buffer("constant", torch.as_tensor(constant)[None])

    def forward(self, x):
        x = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)
        x = self.dark2(self.stem(x))
        x2 = self.dark3(x)
        x1 = self.dark4(x2)
        x0 = self.dark5(x1)
        up = nn.functional.interpolate
        fpn_out0 = self.lateral_conv0(x0)
        f_out0 = self.c3_p4(torch.cat([up(fpn_out0, scale_factor=2.0), x1], 1))
        fpn_out1 = self.reduce_conv1(f_out0)
        pan_out2 = self.c3_p3(torch.cat([up(fpn_out1, scale_factor=2.0), x2], 1))
        pan_out1 = self.c3_n3(torch.cat([self.bu_conv2(pan_out2), fpn_out1], 1))
        pan_out0 = self.c3_n4(torch.cat([self.bu_conv1(pan_out1), fpn_out0], 1))
        outs = []
        for i, feat in enumerate((pan_out2, pan_out1, pan_out0)):
            feat = self.stems[i](feat)
            cls, reg = self.cls_convs[i](feat), self.reg_convs[i](feat)
            out = torch.cat(
                [self.reg_preds[i](reg), self.obj_preds[i](reg).sigmoid(), self.cls_preds[i](cls).sigmoid()],
                1,
            )
            outs.append(out.flatten(2))
        raw = torch.cat(outs, 2).permute(0, 2, 1)
        return raw * self.mask + self.constant  # exactly one person box (see the module docstring)


def one_person_mask(box=(192.0, 64.0, 448.0, 576.0)) -> tuple[np.ndarray, np.ndarray]:
    """(mask, constant) [8400, 85] that replace the objectness by 0 but at one anchor, which holds
    ``box`` (letterboxed pixels) with person score 0.9."""
    constant = encode_boxes([(*box, 1.0, 0, 0.9)])
    mask = np.ones_like(constant)
    mask[:, 4] = 0.0
    mask[np.abs(constant).sum(1) > 0] = 0.0
    return mask, constant


# --------------------------------------------------------------------------------------- RTMPose-l


class ConvModule(nn.Sequential):
    def __init__(self, cin, cout, k=1, s=1, groups=1):
        super().__init__(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=True), nn.SiLU())


class CSPNeXtBlock(nn.Module):
    def __init__(self, c, add_identity, kernel=5):
        super().__init__()
        self.conv1 = ConvModule(c, c, 3)
        self.dw, self.pw = ConvModule(c, c, kernel, groups=c), ConvModule(c, c, 1)
        self.add = add_identity

    def forward(self, x):
        y = self.pw(self.dw(self.conv1(x)))
        return x + y if self.add else y


class ChannelAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc = nn.Conv2d(c, c, 1, bias=True)

    def forward(self, x):
        return x * nn.functional.hardsigmoid(self.fc(x.mean((2, 3), keepdim=True)))


class CSPNeXtLayer(nn.Module):
    def __init__(self, cin, cout, n, add_identity):
        super().__init__()
        mid = cout // 2
        self.main_conv, self.short_conv, self.final_conv = (
            ConvModule(cin, mid),
            ConvModule(cin, mid),
            ConvModule(2 * mid, cout),
        )
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, add_identity) for _ in range(n)])
        self.attention = ChannelAttention(2 * mid)

    def forward(self, x):
        return self.final_conv(
            self.attention(torch.cat([self.blocks(self.main_conv(x)), self.short_conv(x)], 1))
        )


class SPPNeXt(SPP):
    def __init__(self, cin, cout):
        super().__init__(cin, cout)
        hidden = cin // 2
        self.conv1, self.conv2 = ConvModule(cin, hidden), ConvModule(hidden * 4, cout)


class ScaleNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.scale, self.g = dim**-0.5, nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x / (torch.linalg.norm(x, dim=-1, keepdim=True) * self.scale).clamp(min=1e-5) * self.g


class GAU(nn.Module):
    """RTMCC block: gated attention unit (self-attention, s = 128, expansion 2), with a scaled shortcut."""

    def __init__(self, dim=256, s=128, expansion=2):
        super().__init__()
        self.e, self.s = dim * expansion, s
        self.ln, self.uv, self.o = (
            ScaleNorm(dim),
            nn.Linear(dim, 2 * self.e + s, bias=False),
            nn.Linear(self.e, dim),
        )
        self.gamma, self.beta = nn.Parameter(torch.rand(2, s)), nn.Parameter(torch.zeros(2, s))
        self.res_scale = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        u, v, base = nn.functional.silu(self.uv(self.ln(x))).split([self.e, self.e, self.s], -1)
        base = base.unsqueeze(2) * self.gamma + self.beta
        q, k = base[:, :, 0], base[:, :, 1]
        kernel = torch.relu(q @ k.transpose(1, 2) / math.sqrt(self.s)) ** 2
        return x * self.res_scale + self.o(u * (kernel @ v))


class RTMPoseL(nn.Module):
    """RTMPose-l whole-body at 384x288: CSPNeXt-l (P5, deepen/widen 1.0) + RTMCC head -> SimCC x, y."""

    def __init__(self, keypoints=133, input_hw=(384, 288), split=2):
        super().__init__()
        self.stem = nn.Sequential(ConvModule(3, 32, 3, 2), ConvModule(32, 32, 3), ConvModule(32, 64, 3))
        stages = []
        for cin, cout, n, add, spp in [(64, 128, 3, True, False), (128, 256, 6, True, False),
                                       (256, 512, 6, True, False), (512, 1024, 3, False, True)]:  # fmt: skip
            layers = [ConvModule(cin, cout, 3, 2)] + ([SPPNeXt(cout, cout)] if spp else [])
            stages.append(nn.Sequential(*layers, CSPNeXtLayer(cout, cout, n, add)))
        self.stages = nn.Sequential(*stages)
        self.final_layer = nn.Conv2d(1024, keypoints, 7, padding=3)
        tokens = (input_hw[0] // 32) * (input_hw[1] // 32)
        self.mlp = nn.Sequential(ScaleNorm(tokens), nn.Linear(tokens, 256, bias=False))
        self.gau = GAU(256)
        self.cls_x = nn.Linear(256, input_hw[1] * split, bias=False)
        self.cls_y = nn.Linear(256, input_hw[0] * split, bias=False)

    def forward(self, x):
        feats = self.final_layer(self.stages(self.stem(x))).flatten(2)
        feats = self.gau(self.mlp(feats))
        return self.cls_x(feats), self.cls_y(feats)


# ----------------------------------------------------------------------------------------- timing


def graph_size(module: nn.Module, example: torch.Tensor) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(example)
    return {
        "params_M": round(sum(p.numel() for p in module.parameters()) / 1e6, 2),
        "GMACs": round(counter.get_total_flops() / 2e9, 2),  # FlopCounterMode counts 2 FLOPs per MAC
    }


def _time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def _session(path, device):
    import onnxruntime as ort

    from csg_lightning.pose.dwpose_onnx import onnx_providers

    return ort.InferenceSession(str(path), providers=onnx_providers(device))


def bench_device(device: str, files: dict, batch_sizes: list[int], repeats: int) -> dict:
    from csg_lightning.pose.dwpose_onnx import DWPoseONNX

    rng = np.random.default_rng(0)
    out: dict = {}
    pose = _session(files["pose_dynamic"], device)
    rates = {}
    for b in batch_sizes:
        crops = rng.standard_normal((b, 3, 384, 288)).astype(np.float32)
        rates[str(b)] = round(b / _time(partial(pose.run, None, {"input": crops}), repeats), 2)
    out["pose_model_crops_per_s"] = rates
    fixed = _session(files["pose_fixed"], device)
    crop = rng.standard_normal((1, 3, 384, 288)).astype(np.float32)
    out["pose_model_batch1_graph_crops_per_s"] = round(
        1 / _time(partial(fixed.run, None, {"input": crop}), repeats), 2
    )
    det = _session(files["det_fixed"], device)
    image = rng.uniform(0, 255, (1, 3, 640, 640)).astype(np.float32)
    out["detector_model_frames_per_s"] = round(
        1 / _time(partial(det.run, None, {"images": image}), repeats), 2
    )
    del pose, fixed, det

    pipelines = {
        "with_detector_1280x720": (DWPoseONNX(str(files["det_fixed"]), str(files["pose_fixed"]), device=device), (720, 1280)),
        "whole_frame_512x512": (DWPoseONNX(None, str(files["pose_dynamic"]), device=device, batch_size=max(batch_sizes)), (512, 512)),
    }  # fmt: skip
    for name, (estimator, (h, w)) in pipelines.items():
        rates = {}
        for b in batch_sizes:
            frames = rng.integers(0, 255, (b, h, w, 3), dtype=np.uint8)
            people = estimator(frames)
            assert all(len(p) == 1 for p in people), "the stand-in detector should give one person per frame"
            rates[str(b)] = round(b / _time(partial(estimator, frames), repeats, warmup=0), 2)
        out[f"pipeline_{name}_frames_per_s"] = rates
    return out


def bench_mmpose(spec_path: str | None, batch_sizes: list[int], repeats: int) -> dict | str:
    backend = Path(__file__).resolve().parents[1] / "csg_lightning" / "pose" / "mmpose_backend.py"
    if not backend.exists():
        return "mmpose: no backend (csg_lightning/pose/mmpose_backend.py absent)"
    try:
        import mmpose  # noqa: F401
    except Exception as err:  # ImportError, or mmcv/mmengine failing to import
        return f"mmpose: not installed ({type(err).__name__}: {err})"
    if not spec_path:
        return "mmpose: installed; pass --mmpose-spec estimator.yaml (class_path + init_args) to time it"
    import yaml

    from csg_lightning.pose.estimator import build_estimator

    estimator = build_estimator(yaml.safe_load(Path(spec_path).read_text()))
    rng = np.random.default_rng(0)
    rates = {}
    for b in batch_sizes:
        frames = rng.integers(0, 255, (b, 512, 512, 3), dtype=np.uint8)
        rates[str(b)] = round(b / _time(partial(estimator, frames), repeats), 2)
    return {"spec": spec_path, "frames_per_s": rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="1,8,32", help="comma list")
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed calls per measurement (after a warm-up)"
    )
    parser.add_argument(
        "--devices", default="cpu,cuda", help="comma list of cpu, cuda (cuda only where available)"
    )
    parser.add_argument(
        "--mmpose-spec", default=None, help="estimator YAML of the mmpose backend, to time it"
    )
    args = parser.parse_args()
    import onnxruntime as ort

    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    torch.manual_seed(0)
    pose_net, det_net = RTMPoseL().eval(), YOLOXL(*one_person_mask()).eval()
    result = {
        "benchmark": "pose",
        "backend": f"DWPoseONNX (rtmlib pre/post-processing, onnxruntime {ort.__version__})",
        "loadavg": [round(v, 2) for v in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "batch_sizes": batch_sizes,
        "repeats": args.repeats,
        "graphs": {
            "pose": {
                "what": "RTMPose-l whole-body re-built from mmpose's config (CSPNeXt-l + RTMCC/GAU head), random "
                "weights, BN folded, 1x3x384x288 -> SimCC [133, 576] / [133, 768]",
                **graph_size(pose_net, torch.zeros(1, 3, 384, 288)),
            },
            "detector": {
                "what": "YOLOX-l re-built from Megvii's layout (CSPDarknet-l + PAFPN + decoupled head), random "
                "weights, BN folded, 1x3x640x640 -> raw [8400, 85], objectness masked to one person box",
                **graph_size(det_net, torch.zeros(1, 3, 640, 640)),
            },
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "pose_fixed": export_onnx(pose_net, torch.zeros(1, 3, 384, 288), Path(tmp) / "pose.onnx", "input", ["simcc_x", "simcc_y"]),
            "pose_dynamic": export_onnx(pose_net, torch.zeros(1, 3, 384, 288), Path(tmp) / "pose_dyn.onnx", "input",
                                        ["simcc_x", "simcc_y"], dynamic_batch=True),
            "det_fixed": export_onnx(det_net, torch.zeros(1, 3, 640, 640), Path(tmp) / "det.onnx", "images", ["output"]),
        }  # fmt: skip
        result["graphs"]["pose"]["onnx_MB"] = round(files["pose_fixed"].stat().st_size / 1e6, 1)
        result["graphs"]["detector"]["onnx_MB"] = round(files["det_fixed"].stat().st_size / 1e6, 1)
        for device in [d.strip() for d in args.devices.split(",") if d.strip()]:
            if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
                result["cuda"] = (
                    f"not run: onnxruntime has no CUDAExecutionProvider (providers: {ort.get_available_providers()})"
                )
                continue
            start = time.perf_counter()
            result[device] = bench_device(device, files, batch_sizes, args.repeats)
            result[device]["seconds"] = round(time.perf_counter() - start, 1)
    result["mmpose"] = bench_mmpose(args.mmpose_spec, batch_sizes, args.repeats)
    result["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
