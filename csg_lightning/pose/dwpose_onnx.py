"""DWPose through onnxruntime: YOLOX-l person boxes + RTMPose-l whole-body (133 points) -> 134-point poses.

Weights (not downloaded by this module; put them where the YAML says, e.g. ``weights/dwpose/``):
``yolox_l.onnx`` and ``dw-ll_ucoco_384.onnx`` from https://huggingface.co/yzd-v/DWPose (see README,
"Pose estimation"). ``detector: null`` skips detection: the whole frame is the person box (already
cropped speaker videos).

What runs where:

- rtmlib (``rtmlib.YOLOX``, ``rtmlib.RTMPose``) opens the onnxruntime sessions (it downloads only when
  the path does not exist, so the paths are checked here first) and does the pre-processing: the
  detector's letterbox (resize to fit 640x640, padded with 114 at the bottom/right, no normalisation)
  and the pose crop (box centre and size x 1.25, widened to the 288:384 aspect ratio, affine warp,
  ImageNet mean/std in 0-255), and the SimCC decoding (argmax per axis / split ratio, score = the
  mean of the two maxima, back through the crop's affine).
- Written here: the YOLOX grid decoding and person-only NMS (:func:`decode_yolox`: rtmlib's YOLOX
  post-processing returns no scores, and in its "human" mode keeps boxes of every class), batching
  of crops across frames and people (a model whose batch dim is fixed to 1, as in the released files,
  runs crop by crop), score clipping and the 134-point conversion.

Channel order: frames arrive RGB. The pose model gets RGB (mmpose trains RTMPose with
``bgr_to_rgb=True``, and DWPose's own annotator feeds RGB); the detector gets BGR (YOLOX is trained on
``cv2.imread`` images). rtmlib's examples feed BGR to both.

Scores: DWPose's SimCC maxima are not probabilities (hand points can exceed 1, and a point whose
maxima are <= 0 is placed at bin -1): scores are clipped to [0, 1], as every file of the project
stores them. Boxes are clipped to the frame (the crop uses the detected box, as DWPose does).
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from csg_lightning.io.validation import InputError, MissingInputError
from csg_lightning.pose.estimator import PersonPose, PoseEstimator, top_down_people

log = logging.getLogger(__name__)

WEIGHTS_URL = "https://huggingface.co/yzd-v/DWPose"
POSE_FILE, DETECTOR_FILE = "dw-ll_ucoco_384.onnx", "yolox_l.onnx"
NUM_WHOLEBODY = 133
PERSON_CLASS = 0
YOLOX_STRIDES = (8, 16, 32)
BBOX_PADDING = 1.25
DEFAULT_POSE_SIZE = (288, 384)  # (width, height) of dw-ll_ucoco_384.onnx
DEFAULT_DETECTOR_SIZE = (640, 640)  # (height, width) of yolox_l.onnx
IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, 0-255
IMAGENET_STD = (58.395, 57.12, 57.375)


def _check_models(models: list[tuple[str | None, str, str]]) -> None:
    """Each (path, what, release name) must be an existing file; one error lists every missing one."""
    problems = []
    for path, what, release_name in models:
        if path is None or str(path) == "":
            raise InputError(f"DWPoseONNX: no {what} model path given (DWPose's is {release_name})")
        if not Path(path).is_file():
            problems.append(
                f"DWPoseONNX {what} model {path}: file not found (absolute: {Path(path).absolute()}); "
                f"download {release_name} from {WEIGHTS_URL}"
            )
    if problems:
        where = "put it there" if len(problems) == 1 else "put them there"
        raise MissingInputError(
            "; ".join(problems)
            + f" (see README, 'Pose estimation') and {where}, or point the estimator YAML "
            "at the files"
        )


def onnx_providers(device: str) -> list:
    """``cpu`` / ``cuda`` / ``cuda:N`` -> the onnxruntime provider (rtmlib's ``device``), checked."""
    import onnxruntime as ort

    device = str(device)
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda" or device.startswith("cuda:"):
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise InputError(
                f"DWPoseONNX device {device!r}: this onnxruntime has no CUDAExecutionProvider "
                f"(available: {available}); install onnxruntime-gpu or use device: cpu"
            )
        if device == "cuda":
            return ["CUDAExecutionProvider"]
        try:
            index = int(device.split(":", 1)[1])
        except ValueError:
            raise InputError(f"DWPoseONNX device {device!r}: expected cpu, cuda or cuda:N") from None
        return [("CUDAExecutionProvider", {"device_id": index})]
    raise InputError(f"DWPoseONNX device {device!r}: expected cpu, cuda or cuda:N")


def _spatial(tool, default: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of an rtmlib tool's NCHW model input, ``default`` where they are not numbers."""
    shape = tool.session.get_inputs()[0].shape
    if len(shape) != 4 or shape[1] != 3:
        raise InputError(f"DWPoseONNX model {tool.onnx_model}: input of shape {shape}, expected [N, 3, H, W]")
    return (shape[2], shape[3]) if all(isinstance(d, int) for d in shape[2:]) else default


def _fixed_batch(session) -> bool:
    """True when the model's input batch dim is a fixed 1 (the released DWPose files)."""
    dim = session.get_inputs()[0].shape[0]
    return isinstance(dim, int) and dim == 1


def _run(session, batch: np.ndarray, fixed: bool, batch_size: int) -> list[np.ndarray]:
    """Run ``session`` on ``batch`` [N, 3, H, W] in chunks (one by one when its batch dim is fixed)."""
    name = session.get_inputs()[0].name
    step = 1 if fixed else max(1, batch_size)
    parts = [
        session.run(None, {name: np.ascontiguousarray(batch[i : i + step], dtype=np.float32)})
        for i in range(0, len(batch), step)
    ]
    return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]


def yolox_grid(input_hw: tuple[int, int], strides=YOLOX_STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """YOLOX anchor points: grid [A, 2] (x, y cell) and stride [A, 1], stride 8 first (A = 8400 at 640)."""
    grids, steps = [], []
    for stride in strides:
        h, w = input_hw[0] // stride, input_hw[1] // stride
        xv, yv = np.meshgrid(np.arange(w), np.arange(h))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        steps.append(np.full((h * w, 1), stride))
    return np.concatenate(grids).astype(np.float64), np.concatenate(steps).astype(np.float64)


def decode_yolox(
    output: np.ndarray,
    input_hw: tuple[int, int],
    ratio: float,
    score_threshold: float = 0.3,
    nms_threshold: float = 0.45,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw YOLOX output [A, 85] or [1, A, 85] (x, y, log w, log h per anchor cell, objectness and 80
    class probabilities) -> person boxes [M, 4] (x1, y1, x2, y2 in pixels of the frame letterboxed
    with ``ratio``) and scores [M] (objectness x person probability > ``score_threshold``), after NMS
    at IoU ``nms_threshold``, best first. The decoding of DWPose's ``cv_ox_det.py`` / rtmlib."""
    from rtmlib.tools.object_detection.post_processings import multiclass_nms

    pred = np.asarray(output, dtype=np.float64).reshape(-1, output.shape[-1])
    grid, stride = yolox_grid(input_hw)
    if pred.shape[1] < 6 or len(pred) != len(grid):
        raise ValueError(
            f"YOLOX output of shape {tuple(output.shape)}: expected [1, {len(grid)}, 85] (raw, without NMS) "
            f"for a {input_hw[1]}x{input_hw[0]} input"
        )
    centre = (pred[:, :2] + grid) * stride
    size = np.exp(np.minimum(pred[:, 2:4], 30.0)) * stride
    boxes = np.concatenate([centre - size / 2, centre + size / 2], 1) / ratio
    scores = pred[:, 4:5] * pred[:, 5 + PERSON_CLASS : 6 + PERSON_CLASS]
    dets, _ = multiclass_nms(boxes, scores, nms_thr=nms_threshold, score_thr=score_threshold)
    if dets is None:
        return np.zeros((0, 4)), np.zeros((0,))
    return dets[:, :4], dets[:, 4]


class DWPoseONNX(PoseEstimator):
    """DWPose (YOLOX-l + RTMPose-l whole-body, ONNX) on onnxruntime.

    detector: path to ``yolox_l.onnx``, or None (the whole frame is the person box; in YAML, null or
    left out);
    pose: path to ``dw-ll_ucoco_384.onnx``; device: ``cpu``, ``cuda`` or ``cuda:N``;
    det_score_threshold: objectness x person probability a box must exceed; nms_threshold: IoU;
    batch_size: crops (and letterboxed frames) per model call when the model's batch dim is dynamic.
    """

    def __init__(
        self,
        detector: str | None,
        pose: str,
        device: str = "cpu",
        det_score_threshold: float = 0.3,
        nms_threshold: float = 0.45,
        batch_size: int = 16,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"DWPoseONNX batch_size: expected >= 1, got {batch_size}")
        _check_models(
            [(pose, "pose", POSE_FILE)]
            + ([] if detector is None else [(detector, "detector", DETECTOR_FILE)])
        )
        pose_path, det_path = str(pose), None if detector is None else str(detector)
        providers = onnx_providers(device)
        from rtmlib import YOLOX, RTMPose

        def load(tool, path, what, **kwargs):
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):  # rtmlib prints "load <path> with ..."
                    return tool(path, backend="onnxruntime", device=device, **kwargs)
            except Exception as err:  # onnxruntime: not an ONNX file, truncated download, unknown op
                raise InputError(
                    f"DWPoseONNX {what} model {path}: onnxruntime cannot load it ({type(err).__name__}: "
                    f"{str(err).strip()[:300]}); a partial download? Get it again from {WEIGHTS_URL}"
                ) from err
            finally:
                log.debug(printed.getvalue().strip())

        self._pose = load(RTMPose, pose_path, "pose", mean=IMAGENET_MEAN, std=IMAGENET_STD)
        self._det = None
        if det_path is not None:
            self._det = load(YOLOX, det_path, "detector", nms_thr=nms_threshold, score_thr=det_score_threshold,
                             det_mode="multiclass")  # fmt: skip
        # the input sizes the models declare (rtmlib takes them as arguments): pose (w, h), detector (h, w)
        width, height = _spatial(self._pose, DEFAULT_POSE_SIZE[::-1])[::-1]
        self._pose.model_input_size = (width, height)
        if self._det is not None:
            self._det.model_input_size = _spatial(self._det, DEFAULT_DETECTOR_SIZE)
        for tool in (self._pose, self._det):
            if (
                tool is not None
                and device != "cpu"
                and tool.session.get_providers()[0] != "CUDAExecutionProvider"
            ):
                raise InputError(
                    f"DWPoseONNX device {device!r}: onnxruntime did not start CUDA for {tool.onnx_model} "
                    f"(got {tool.session.get_providers()}); check the CUDA/cuDNN libraries or use device: cpu"
                )
        self.pose_input_size = (width, height)
        outputs = self._pose.session.get_outputs()
        if len(outputs) != 2:
            raise InputError(
                f"DWPoseONNX pose model {pose_path}: {len(outputs)} outputs, expected 2 (SimCC x and y)"
            )
        self.simcc_split_ratio = self._split_ratio(outputs, pose_path)
        self.providers = providers
        self.device = device
        self.det_score_threshold = float(det_score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.batch_size = int(batch_size)
        self._pose_fixed = _fixed_batch(self._pose.session)
        self._det_fixed = self._det is not None and _fixed_batch(self._det.session)

    def _split_ratio(self, outputs, path) -> float:
        """SimCC bins per input pixel (2.0 for DWPose: 576 = 2 x 288, 768 = 2 x 384), from the model."""
        bins_x, bins_y = outputs[0].shape[-1], outputs[1].shape[-1]
        width, height = self.pose_input_size
        if not (isinstance(bins_x, int) and isinstance(bins_y, int)):
            return 2.0
        ratio = bins_x / width
        if abs(bins_y / height - ratio) > 1e-6:
            raise InputError(
                f"DWPoseONNX pose model {path}: SimCC outputs of {bins_x} and {bins_y} bins do not match its "
                f"{width}x{height} input with one split ratio (DWPose: 576 and 768 for 288x384)"
            )
        return ratio

    # ------------------------------------------------------------------------------------- detection

    def detect(self, frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per frame: person boxes [M, 4] (x1, y1, x2, y2 pixels, as detected) and their scores [M]."""
        if self._det is None:
            return [(np.array([[0.0, 0.0, f.shape[1], f.shape[0]]]), np.ones(1)) for f in frames]
        inputs, ratios = [], []
        for frame in frames:
            letterboxed, ratio = self._det.preprocess(np.ascontiguousarray(frame[..., ::-1]))  # BGR
            inputs.append(letterboxed.transpose(2, 0, 1))
            ratios.append(ratio)
        raw = _run(self._det.session, np.stack(inputs), self._det_fixed, self.batch_size)[0]
        input_hw = tuple(self._det.model_input_size[:2])
        return [
            decode_yolox(raw[i], input_hw, ratios[i], self.det_score_threshold, self.nms_threshold)
            for i in range(len(frames))
        ]

    # ------------------------------------------------------------------------------------------ pose

    def _pose_chunk(self, frames, jobs) -> list[tuple[np.ndarray, np.ndarray]]:
        crops, geometry = [], []
        for frame_index, box in jobs:
            crop, center, scale = self._pose.preprocess(frames[frame_index], box)
            crops.append(crop.transpose(2, 0, 1))
            geometry.append((center, scale))
        simcc_x, simcc_y = _run(self._pose.session, np.stack(crops), self._pose_fixed, self.batch_size)
        if simcc_x.shape[1] != NUM_WHOLEBODY or simcc_y.shape[1] != NUM_WHOLEBODY:
            raise RuntimeError(
                f"DWPoseONNX pose model {self._pose.onnx_model}: SimCC outputs {simcc_x.shape} and "
                f"{simcc_y.shape}, expected {NUM_WHOLEBODY} keypoints (COCO-WholeBody)"
            )
        out = []
        for i, (center, scale) in enumerate(geometry):
            keypoints, scores = self._pose.postprocess(
                [simcc_x[i : i + 1], simcc_y[i : i + 1]], center, scale, self.simcc_split_ratio
            )
            out.append((keypoints[0], np.clip(scores[0], 0.0, 1.0)))
        return out

    def estimate(self, frames: list[np.ndarray]) -> list[list[PersonPose]]:
        detections = []
        for start in range(0, len(frames), self.batch_size):
            detections += self.detect(frames[start : start + self.batch_size])
        return top_down_people(frames, detections, self._pose_chunk, self.batch_size)
