"""mmpose whole-body top-down estimation (RTMPose / RTMW / DWPose weights) -> 134-point poses.

Needs the ``pose`` extra (``make setup-pose``: mmcv 2.1.0 built from source, mmengine, mmdet 3.3,
mmpose 1.3.2); without it, importing this module works and building :class:`MMPoseWholeBody` raises
an :class:`ImportError` that says so.

- Pose model: a top-down whole-body config (133 COCO-WholeBody points) that ships inside the mmpose
  wheel, named relative to its packaged configs (``mmpose/.mim/configs``), as ``mmpose::<name>`` or
  ``mmdet::<name>``, or given as a path; weights from a local ``.pth`` (DWPose's ``dw-ll_ucoco_384.pth``
  is a plain RTMPose-l 384x288 checkpoint: :data:`DEFAULT_POSE_CONFIG`), or ``None`` for random
  weights (tests only).
- Person boxes: an mmdet detector (:class:`Detector`: config + local weights, person class only, then
  NMS across the kept boxes), or ``detector: null``: the whole frame is the person box (already-cropped
  speaker videos).
- Weights are read with ``torch.load(weights_only=True)`` through
  :func:`csg_lightning.checkpoints.safe_load.load_checkpoint_file` (plus numpy's array types, which
  mmpose checkpoints keep in ``meta.dataset_meta``) and ``load_state_dict(strict=True)``; mmengine's
  ``load_checkpoint`` (which unpickles anything) is never called. A file that references other Python
  objects is refused before any of it runs.
- Batching: frames go through the detector ``batch_size`` at a time, and the crops of all the
  people of all the frames through the pose model ``batch_size`` at a time (what
  ``mmpose.apis.inference_topdown`` does for the boxes of one image, across images).

Channel order: frames arrive RGB; both models get BGR, as mmpose / mmdet load images with OpenCV:
the pose model's data preprocessor turns it into RGB (``bgr_to_rgb=True``), RTMDet is trained on BGR.

Scores: RTMPose's SimCC scores are the maxima of the x/y distributions, not probabilities; with
``normalize=False`` (every RTMPose/RTMW/DWPose config) hand and face scores often exceed 1. They are
clipped to [0, 1], as every file of the project stores them (:class:`PersonPose`).

The mmcv this project builds has CPU ops only (the compile runs with CUDA hidden, so that machines
without nvcc build it). The pose model calls no compiled mmcv op and runs on ``device``; the
detector's NMS is a compiled op, so on a GPU the detector runs on the CPU unless ``detector.device``
says otherwise (it then needs an mmcv built with CUDA ops).
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csg_lightning.checkpoints.safe_load import CheckpointError, load_checkpoint_file
from csg_lightning.io.validation import InputError, MissingInputError
from csg_lightning.pose.estimator import PersonPose, PoseEstimator, top_down_people

log = logging.getLogger(__name__)

NUM_WHOLEBODY = 133
# DWPose-L (dw-ll_ucoco_384.pth) and RTMPose-l whole-body trained on COCO-WholeBody + UBody, 384x288.
DEFAULT_POSE_CONFIG = (
    "mmpose::wholebody_2d_keypoint/rtmpose/ubody/rtmpose-l_8xb32-270e_coco-ubody-wholebody-384x288.py"
)
# mmpose's person detector: RTMDet-m, one class (weights rtmdet_m_8xb32-100e_coco-obj365-person-*.pth).
DEFAULT_DETECTOR_CONFIG = "mmpose::demo/mmdetection_cfg/rtmdet_m_640-8xb32_coco-person.py"
CONFIG_PACKAGES = ("mmpose", "mmdet")
INSTALL_HINT = "the mmpose backend needs the 'pose' extra: run `make setup-pose` (builds mmcv once, minutes)"


def _require_mmpose() -> None:
    missing = [
        name for name in ("mmcv", "mmengine", "mmdet", "mmpose") if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise ImportError(f"{', '.join(missing)} not installed: {INSTALL_HINT}")


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{package} not installed: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


def resolve_config(name: str | Path, what: str = "pose config") -> Path:
    """A config path, or a name inside an installed OpenMMLab wheel -> the file.

    ``mmpose::<rel>`` / ``mmdet::<rel>``: ``<package>/.mim/configs/<rel>`` (mmengine's ``_base_``
    convention), else ``<package>/.mim/<rel>`` (e.g. ``mmpose::demo/mmdetection_cfg/...``). A plain
    name that is not a file is looked up the same way in mmpose's packaged configs.
    """
    text = str(name)
    if not text.strip():
        raise InputError(f"{what}: empty name")
    if "::" in text:
        package, rel = text.split("::", 1)
        if package not in CONFIG_PACKAGES:
            raise InputError(
                f"{what} {text!r}: unknown package {package!r} (expected one of {CONFIG_PACKAGES})"
            )
    else:
        path = Path(text).expanduser()
        if path.is_file():
            return path
        if path.is_absolute() or text.startswith("."):
            raise MissingInputError(f"{what} {path}: file not found (absolute: {path.absolute()})")
        package, rel = "mmpose", text
    root = _package_dir(package) / ".mim"
    tried = [root / "configs" / rel, root / rel]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise MissingInputError(
        f"{what} {text!r}: not a file, and not among {package}'s packaged configs (tried "
        f"{', '.join(str(p) for p in tried)})"
    )


def _torch_device(device: str, what: str) -> torch.device:
    try:
        dev = torch.device(str(device))
    except (RuntimeError, TypeError):
        raise InputError(f"{what} {device!r}: expected cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"{what} {device!r}: expected cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{what} {device!r}: CUDA is not available here (use device: cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"{what} {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return dev


def mmcv_has_cuda_ops() -> bool:
    """Whether the installed mmcv's compiled ops (NMS, RoIAlign, ...) were built with CUDA."""
    try:
        from mmcv.ops import get_compiling_cuda_version
    except ImportError:
        return False
    version = str(get_compiling_cuda_version())
    return bool(version) and version != "not available"


def _numpy_safe_globals() -> list:
    """numpy's array/dtype reconstructors (data only): mmpose/mmdet checkpoints keep numpy arrays in
    ``meta`` (``dataset_meta`` sigmas, weights). Both module names: files written under numpy 1
    (``numpy.core``) and numpy 2 (``numpy._core``)."""
    core = np._core if hasattr(np, "_core") else np.core
    out: list = [np.ndarray, np.dtype]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out += [
            (core.multiarray._reconstruct, f"{module}._reconstruct"),
            (core.multiarray.scalar, f"{module}.scalar"),
        ]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        out += [
            getattr(dtypes, n)
            for n in dir(dtypes)
            if n.endswith("DType") and isinstance(getattr(dtypes, n), type)
        ]
    return out


def load_weights(model: torch.nn.Module, path: str | Path, what: str) -> dict:
    """Load a local mmpose/mmdet ``.pth`` into ``model`` (strict) without unpickling code -> its ``meta``.

    Accepts ``{"state_dict": ...}`` (mmengine checkpoints) or a bare state dict; strips a ``module.``
    (DataParallel) prefix, and a ``student.`` prefix (distillation checkpoints such as DWPose's before
    its ``pth_transfer``). Raises :class:`MissingInputError` / :class:`CheckpointError` naming the file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingInputError(f"{what} {path}: file not found (absolute: {path.absolute()})")
    with torch.serialization.safe_globals(_numpy_safe_globals()):
        checkpoint = load_checkpoint_file(path, map_location="cpu", what=what)
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(
            f"{path}: no state dict of tensors in this {what} (keys: {sorted(checkpoint)[:8]})"
        )
    own = set(model.state_dict())
    for prefix in ("module.", "student."):
        if not (set(state) & own) and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    missing = sorted(own - set(state))
    unexpected = sorted(set(state) - own)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: this {what} does not match the model of the config: {len(missing)} missing keys "
            f"{missing[:4]}, {len(unexpected)} unexpected keys {unexpected[:4]} (another config, or "
            "another input size?)"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # shape mismatches
        first = str(err).strip().splitlines()
        raise CheckpointError(
            f"{path}: this {what} does not fit the model of the config: {first[-1] if first else err}"
        ) from err
    meta = checkpoint.get("meta", {})
    return meta if isinstance(meta, dict) else {}


@dataclass
class Detector:
    """The mmdet person detector of :class:`MMPoseWholeBody`.

    config: a config path or packaged name (see :func:`resolve_config`); weights: a local ``.pth`` or
    None (random weights: tests only); person_class: the label of "person" (0 in COCO's 80 classes and
    in one-class person detectors); score_threshold: a box must score above it; nms_threshold: IoU of
    the NMS across the kept person boxes (on top of the config's own NMS); device: None = the pose
    device, except the CPU when mmcv has no CUDA ops (see the module doc); cfg_options: mmengine dotted
    overrides of the config (e.g. a smaller ``test_dataloader.dataset.pipeline.1.scale``).
    """

    config: str = DEFAULT_DETECTOR_CONFIG
    weights: str | None = None
    person_class: int = 0
    score_threshold: float = 0.3
    nms_threshold: float = 0.45
    device: str | None = None
    cfg_options: dict[str, Any] | None = None


def _scope(name: str):
    from mmengine.registry import DefaultScope

    return DefaultScope.overwrite_default_scope(name)


class MMPoseWholeBody(PoseEstimator):
    """Whole-body top-down pose estimation with mmpose (RTMPose / RTMW / DWPose-L weights).

    pose_config: a top-down COCO-WholeBody config (133 points), a path or a packaged name (default:
    RTMPose-l 384x288 COCO+UBody, the architecture of DWPose-L); pose_weights: a local ``.pth``, or
    None for random weights (tests only; logged as a warning); detector: a :class:`Detector`, or None:
    the whole frame is the person box; device: cpu, cuda or cuda:N; batch_size: frames per detector call
    and crops per pose-model call; flip_test: average with the horizontally flipped crop (the configs'
    evaluation setting: twice the compute; DWPose's own inference does not flip); cfg_options: mmengine
    dotted overrides of the pose config.
    """

    def __init__(
        self,
        pose_config: str = DEFAULT_POSE_CONFIG,
        pose_weights: str | None = None,
        detector: Detector | None = None,
        device: str = "cpu",
        batch_size: int = 16,
        flip_test: bool = False,
        cfg_options: dict[str, Any] | None = None,
    ) -> None:
        if int(batch_size) < 1:
            raise InputError(f"MMPoseWholeBody batch_size: expected >= 1, got {batch_size}")
        if isinstance(detector, dict):
            detector = Detector(**detector)
        self.device = _torch_device(device, "MMPoseWholeBody device")
        _require_mmpose()
        self.batch_size = int(batch_size)
        self.detector = detector
        self.pose_config = resolve_config(pose_config, "MMPoseWholeBody pose_config")
        if pose_weights is not None:
            pose_weights = str(pose_weights)
            if not Path(pose_weights).expanduser().is_file():
                raise MissingInputError(
                    f"MMPoseWholeBody pose_weights {pose_weights}: file not found (absolute: "
                    f"{Path(pose_weights).absolute()}); see the estimator YAML for where the weights go"
                )
        if detector is not None:
            if detector.weights is not None and not Path(detector.weights).expanduser().is_file():
                raise MissingInputError(
                    f"MMPoseWholeBody detector.weights {detector.weights}: file not found (absolute: "
                    f"{Path(detector.weights).absolute()})"
                )
            self.detector_config = resolve_config(detector.config, "MMPoseWholeBody detector.config")
        self._pose, self._pose_pipeline = self._build_pose(pose_weights, flip_test, cfg_options)
        self._det = self._det_pipeline = None
        if detector is not None:
            self.detector_device = self._detector_device(detector.device)
            self._det, self._det_pipeline = self._build_detector(detector)

    # ------------------------------------------------------------------------------------- building

    def _build_pose(self, weights, flip_test: bool, cfg_options):
        from mmengine.config import Config
        from mmengine.dataset import Compose
        from mmpose.apis import init_model

        cfg = Config.fromfile(str(self.pose_config))
        if cfg_options:
            cfg.merge_from_dict(dict(cfg_options))
        if cfg.model.get("type") != "TopdownPoseEstimator":
            raise InputError(
                f"MMPoseWholeBody pose_config {self.pose_config}: a {cfg.model.get('type')} model, expected a "
                "TopdownPoseEstimator (top-down whole-body config)"
            )
        cfg.model.setdefault("test_cfg", {})["flip_test"] = bool(flip_test)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = init_model(
                cfg, checkpoint=None, device="cpu"
            )  # no download: the backbone's init_cfg is dropped
        if weights is None:
            log.warning("MMPoseWholeBody: random pose weights (pose_weights: null): for tests only")
        else:
            meta = load_weights(model, weights, "mmpose pose checkpoint")
            if isinstance(meta.get("dataset_meta"), dict) and "num_keypoints" in meta["dataset_meta"]:
                model.dataset_meta = meta["dataset_meta"]
        num_keypoints = model.dataset_meta.get("num_keypoints")
        if num_keypoints != NUM_WHOLEBODY:
            raise InputError(
                f"MMPoseWholeBody pose_config {self.pose_config}: {num_keypoints} keypoints, expected "
                f"{NUM_WHOLEBODY} (a COCO-WholeBody config)"
            )
        model.to(self.device).eval()
        with _scope(cfg.get("default_scope", "mmpose")):
            pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
        return model, pipeline

    def _detector_device(self, requested: str | None) -> torch.device:
        if requested is not None:
            return _torch_device(requested, "MMPoseWholeBody detector.device")
        if self.device.type == "cuda" and not mmcv_has_cuda_ops():
            log.warning(
                "MMPoseWholeBody: the installed mmcv has CPU ops only (its NMS cannot run on CUDA): the "
                "detector runs on the CPU, the pose model on %s", self.device,
            )  # fmt: skip
            return torch.device("cpu")
        return self.device

    def _build_detector(self, spec: Detector):
        from mmdet.apis import init_detector
        from mmdet.utils import get_test_pipeline_cfg
        from mmengine.config import Config
        from mmengine.dataset import Compose

        cfg = Config.fromfile(str(self.detector_config))
        if spec.cfg_options:
            cfg.merge_from_dict(dict(spec.cfg_options))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = init_detector(cfg, checkpoint=None, device="cpu")
        if spec.weights is None:
            log.warning("MMPoseWholeBody: random detector weights (detector.weights: null): for tests only")
        else:
            meta = load_weights(model, spec.weights, "mmdet detector checkpoint")
            if isinstance(meta.get("dataset_meta"), dict) and meta["dataset_meta"].get("classes"):
                model.dataset_meta = {k.lower(): v for k, v in meta["dataset_meta"].items()}
        classes = model.dataset_meta.get("classes") or ()
        if not 0 <= spec.person_class < max(1, len(classes)):
            raise InputError(
                f"MMPoseWholeBody detector.person_class {spec.person_class}: the detector has "
                f"{len(classes)} classes {tuple(classes)[:4]}"
            )
        model.to(self.detector_device).eval()
        steps = [dict(step) for step in get_test_pipeline_cfg(cfg) if step.get("type") != "LoadAnnotations"]
        steps[0]["type"] = "mmdet.LoadImageFromNDArray"
        with _scope(cfg.get("default_scope", "mmdet")):
            pipeline = Compose(steps)
        return model, pipeline

    # ---------------------------------------------------------------------------------------- running

    def detect(self, frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per frame: person boxes [M, 4] (x1, y1, x2, y2 pixels) and scores [M], best first."""
        if self._det is None:
            return [
                (np.array([[0.0, 0.0, f.shape[1], f.shape[0]]], np.float32), np.ones(1, np.float32))
                for f in frames
            ]
        from mmengine.dataset import pseudo_collate
        from torchvision.ops import nms

        spec = self.detector
        out = []
        for start in range(0, len(frames), self.batch_size):
            chunk = frames[start : start + self.batch_size]
            with _scope(self._det.cfg.get("default_scope", "mmdet")), torch.no_grad():
                batch = pseudo_collate(
                    [
                        self._det_pipeline(dict(img=np.ascontiguousarray(f[..., ::-1]), img_id=i))
                        for i, f in enumerate(chunk)
                    ]
                )
                results = self._det.test_step(batch)
            for result in results:
                inst = result.pred_instances
                keep = (inst.labels == spec.person_class) & (inst.scores > spec.score_threshold)
                boxes, scores = inst.bboxes[keep].float().cpu(), inst.scores[keep].float().cpu()
                order = nms(boxes, scores, spec.nms_threshold)  # best first
                out.append((boxes[order].numpy(), scores[order].numpy()))
        return out

    def _pose_chunk(self, frames, jobs) -> list[tuple[np.ndarray, np.ndarray]]:
        from mmengine.dataset import pseudo_collate

        data = []
        for frame_index, box in jobs:
            info = dict(img=frames[frame_index], bbox=np.asarray(box, np.float32)[None],
                        bbox_score=np.ones(1, np.float32))  # fmt: skip
            info.update(self._pose.dataset_meta)
            data.append(self._pose_pipeline(info))
        with _scope(self._pose.cfg.get("default_scope", "mmpose")), torch.no_grad():
            results = self._pose.test_step(pseudo_collate(data))
        out = []
        for result in results:
            keypoints = np.asarray(result.pred_instances.keypoints, np.float32)
            scores = np.asarray(result.pred_instances.keypoint_scores, np.float32)
            if keypoints.shape != (1, NUM_WHOLEBODY, 2) or scores.shape != (1, NUM_WHOLEBODY):
                raise RuntimeError(
                    f"MMPoseWholeBody: the pose model returned keypoints {keypoints.shape} and scores "
                    f"{scores.shape} per box, expected (1, {NUM_WHOLEBODY}, 2) and (1, {NUM_WHOLEBODY})"
                )
            out.append((keypoints[0], np.clip(scores[0], 0.0, 1.0)))
        return out

    def estimate(self, frames: list[np.ndarray]) -> list[list[PersonPose]]:
        bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames]
        return top_down_people(frames, self.detect(frames), self._pose_chunk, self.batch_size, pose_inputs=bgr)
