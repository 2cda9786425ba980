"""Tiny ONNX stand-ins for the DWPose files, with their real input/output signatures, whose outputs
are known (so the decoding can be checked): exported with ``torch.onnx.export``.

- pose (``dw-ll_ucoco_384.onnx``): input ``input`` [1, 3, 384, 288] -> ``simcc_x`` [1, 133, 576],
  ``simcc_y`` [1, 133, 768]. :func:`constant_pose_model` peaks at given bins whatever the image;
  :func:`spot_pose_model` peaks, for every keypoint, at the brightest column / row of the red channel of
  its crop (so the decoded point is the red blob's position in the frame).
- detector (``yolox_l.onnx``): input ``images`` [1, 3, 640, 640] -> ``output`` [1, 8400, 85], raw
  YOLOX predictions (cell offsets, log sizes, objectness, 80 class probabilities):
  :func:`constant_detector` encodes given boxes (in letterboxed pixels).

``dynamic_batch=True`` makes the batch dim symbolic (the released files fix it to 1).

torch 2.11's ``torch.onnx.export(dynamo=False)`` (the TorchScript exporter; the dynamo one needs
onnxscript) still imports the ``onnx`` package to splice custom onnxscript functions into the file.
These graphs have none, so without ``onnx`` installed that step is skipped (:func:`export_onnx`).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path

import numpy as np
import torch

POSE_HW = (384, 288)
SIMCC_SPLIT = 2
NUM_WHOLEBODY = 133
DET_HW = (640, 640)
STRIDES = (8, 16, 32)
NUM_ANCHORS = sum((DET_HW[0] // s) * (DET_HW[1] // s) for s in STRIDES)  # 8400


@contextlib.contextmanager
def _without_onnx_package():
    try:
        import onnx  # noqa: F401

        yield
        return
    except ImportError:
        pass
    from torch.onnx._internal.torchscript_exporter import onnx_proto_utils

    original = onnx_proto_utils._add_onnxscript_fn
    onnx_proto_utils._add_onnxscript_fn = lambda model_bytes, custom_opsets: model_bytes
    try:
        yield
    finally:
        onnx_proto_utils._add_onnxscript_fn = original


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path, input_name: str, output_names,
                dynamic_batch: bool = False) -> Path:  # fmt: skip
    """``torch.onnx.export`` (TorchScript exporter, opset 17) of ``module`` on ``example`` -> ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {name: {0: "batch"} for name in [input_name, *output_names]} if dynamic_batch else None
    with _without_onnx_package(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), str(path), input_names=[input_name],
                          output_names=list(output_names), dynamic_axes=axes, opset_version=17,
                          dynamo=False)  # fmt: skip
    return path


class _Constant(torch.nn.Module):
    """Constant outputs broadcast over the input's batch (the input is read, times zero)."""

    def __init__(self, *outputs: np.ndarray):
        super().__init__()
        for i, value in enumerate(outputs):
            self.register_buffer(f"out{i}", torch.as_tensor(np.asarray(value, np.float32))[None])
        self.count = len(outputs)

    def forward(self, x):
        zero = x[:, :1, :1, :1].reshape(-1, 1, 1) * 0.0
        outs = tuple(getattr(self, f"out{i}") + zero for i in range(self.count))
        return outs if self.count > 1 else outs[0]


def simcc_logits(bins_x, bins_y, peaks) -> tuple[np.ndarray, np.ndarray]:
    """SimCC x [133, 576] and y [133, 768]: zero except ``peaks[k]`` at ``bins_x[k]`` / ``bins_y[k]``."""
    x = np.zeros((NUM_WHOLEBODY, POSE_HW[1] * SIMCC_SPLIT), np.float32)
    y = np.zeros((NUM_WHOLEBODY, POSE_HW[0] * SIMCC_SPLIT), np.float32)
    k = np.arange(NUM_WHOLEBODY)
    x[k, np.asarray(bins_x)] = peaks
    y[k, np.asarray(bins_y)] = peaks
    return x, y


def constant_pose_model(path, bins_x, bins_y, peaks, dynamic_batch: bool = False) -> Path:
    """A pose model whose SimCC maxima are ``peaks[k]`` at ``bins_x[k]``, ``bins_y[k]``, for any crop."""
    return export_onnx(_Constant(*simcc_logits(bins_x, bins_y, peaks)), torch.zeros(1, 3, *POSE_HW), path,
                       "input", ["simcc_x", "simcc_y"], dynamic_batch)  # fmt: skip


class _Spot(torch.nn.Module):
    """Every keypoint at the brightest column / row of channel 0 (red) of the crop, score 1."""

    def forward(self, x):
        red = x[:, 0]

        def logits(profile):  # [N, L] -> [N, 133, 2L], max 1 at the brightest position
            low = profile.amin(-1, keepdim=True)
            high = profile.amax(-1, keepdim=True)
            norm = (profile - low) / (high - low + 1e-6)
            fine = norm.unsqueeze(-1).expand(-1, -1, SIMCC_SPLIT).flatten(1)
            return fine.unsqueeze(1).expand(-1, NUM_WHOLEBODY, -1)

        return logits(red.sum(1)), logits(red.sum(2))


def spot_pose_model(path, dynamic_batch: bool = False) -> Path:
    return export_onnx(_Spot(), torch.zeros(1, 3, *POSE_HW), path, "input", ["simcc_x", "simcc_y"],
                       dynamic_batch)  # fmt: skip


def anchor_index(stride: int, gx: int, gy: int) -> int:
    """Row of the YOLOX output for grid cell (gx, gy) of ``stride`` (stride 8 first, row-major)."""
    start = 0
    for s in STRIDES:
        if s == stride:
            return start + gy * (DET_HW[1] // s) + gx
        start += (DET_HW[0] // s) * (DET_HW[1] // s)
    raise ValueError(stride)


def encode_boxes(boxes) -> np.ndarray:
    """Raw YOLOX output [8400, 85] holding ``boxes``: (x1, y1, x2, y2, objectness, class, class prob) in
    letterboxed pixels; each box goes to the cell of its centre at the coarsest free stride."""
    raw = np.zeros((NUM_ANCHORS, 85), np.float32)
    used = set()
    for x1, y1, x2, y2, objectness, cls, prob in boxes:
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        for stride in reversed(STRIDES):
            gx, gy = int(cx // stride), int(cy // stride)
            row = anchor_index(stride, gx, gy)
            if row not in used:
                break
        else:
            raise ValueError(f"no free anchor cell for box {(x1, y1, x2, y2)}")
        used.add(row)
        raw[row, :4] = [cx / stride - gx, cy / stride - gy, math.log(w / stride), math.log(h / stride)]
        raw[row, 4] = objectness
        raw[row, 5 + int(cls)] = prob
    return raw


def constant_detector(path, boxes, dynamic_batch: bool = False) -> Path:
    """A YOLOX model that detects ``boxes`` (see :func:`encode_boxes`) in any image."""
    return export_onnx(_Constant(encode_boxes(boxes)), torch.zeros(1, 3, *DET_HW), path, "images", ["output"],
                       dynamic_batch)  # fmt: skip


def letterbox_ratio(height: int, width: int) -> float:
    """The scale rtmlib's YOLOX letterbox applies to a ``width`` x ``height`` frame."""
    return min(DET_HW[0] / height, DET_HW[1] / width)


def to_letterbox(frame_boxes, height: int, width: int):
    """Boxes (x1, y1, x2, y2, *rest) in frame pixels -> the same in letterboxed pixels."""
    r = letterbox_ratio(height, width)
    return [(x1 * r, y1 * r, x2 * r, y2 * r, *rest) for x1, y1, x2, y2, *rest in frame_boxes]


def expected_pixels(box, bins_x, bins_y) -> np.ndarray:
    """SimCC bins -> frame pixels, by hand: the crop is the box's centre and size x 1.25, widened to
    the 288:384 aspect ratio; pixel = bin / 2 scaled from the 288 x 384 crop. [133, 2]."""
    x1, y1, x2, y2 = box
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * 1.25, (y2 - y1) * 1.25
    w, h = (w, w / 0.75) if w > h * 0.75 else (h * 0.75, h)
    crop_h, crop_w = POSE_HW
    bins_x, bins_y = np.asarray(bins_x, np.float64), np.asarray(bins_y, np.float64)
    return np.stack(
        [bins_x / SIMCC_SPLIT / crop_w * w + cx - w / 2, bins_y / SIMCC_SPLIT / crop_h * h + cy - h / 2], -1
    )
