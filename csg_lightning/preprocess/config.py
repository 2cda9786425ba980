"""The configuration of ``csg-data preprocess``: every threshold a named, typed field.

Loaded from YAML (``experiments/data/preprocess.yaml``) onto these dataclasses with OmegaConf, so an
unknown key or a wrong type is an error naming the field. The pose estimator is a ``class_path`` /
``init_args`` mapping (:func:`csg_lightning.pose.estimator.build_estimator`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from csg_lightning.io.validation import InputError, check_config_file
from csg_lightning.preprocess.crop import CropConfig
from csg_lightning.preprocess.qc import QCConfig
from csg_lightning.skeleton.smoothing import SmoothingConfig


@dataclass
class ShotConfig:
    """Shot boundaries (PySceneDetect's ContentDetector on the 25 fps frames).

    threshold: content-change score that starts a new shot (PySceneDetect's default 27).
    min_shot_frames: shortest shot, in 25 fps frames; closer cuts are merged.
    downscale_width: frames are shrunk to this width before detection (speed; cuts are not fine detail).
    """

    threshold: float = 27.0
    min_shot_frames: int = 15
    downscale_width: int = 320


@dataclass
class PreprocessConfig:
    """Everything ``csg-data preprocess`` does to a video.

    estimator: the pose estimator (class_path + init_args).
    batch_frames: frames per estimator call; chunk_frames: frames decoded at a time (memory).
    speaker_from: "video" (each video is its own speaker: its file stem) or "folder" (the name of
        the folder holding the video, for ``VIDEOS/<speaker>/*.mp4``).
    crf: H.264 quality of the clip videos; thumbnails: write the contact-sheet thumbnails.
    """

    estimator: dict[str, Any] = field(
        default_factory=lambda: {"class_path": "csg_lightning.pose.dwpose_onnx.DWPoseONNX",
                                 "init_args": {"detector": "weights/dwpose/yolox_l.onnx",
                                               "pose": "weights/dwpose/dw-ll_ucoco_384.onnx"}}
    )  # fmt: skip
    batch_frames: int = 16
    chunk_frames: int = 64
    speaker_from: str = "video"
    crf: int = 18
    thumbnails: bool = True
    shots: ShotConfig = field(default_factory=ShotConfig)
    qc: QCConfig = field(default_factory=QCConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)

    def __post_init__(self) -> None:
        if self.speaker_from not in ("video", "folder"):
            raise InputError(
                f"preprocess config: field 'speaker_from' must be 'video' or 'folder', got {self.speaker_from!r}"
            )
        for name in ("batch_frames", "chunk_frames"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"preprocess config: field '{name}' must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)

    def processing_hash(self) -> str:
        """A short hash of the fields that change the clips (not the estimator's device or batch sizes)."""
        d = self.to_dict()
        init = dict(d["estimator"].get("init_args") or {})
        for key in ("device", "batch_size"):
            init.pop(key, None)
        d["estimator"] = {"class_path": d["estimator"].get("class_path"), "init_args": init}
        for key in ("batch_frames", "chunk_frames", "thumbnails"):
            d.pop(key)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def load_config(path: str | os.PathLike | None, overrides: dict | None = None) -> PreprocessConfig:
    """The YAML at ``path`` (None: the defaults) merged onto :class:`PreprocessConfig`, then ``overrides``."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    schema = OmegaConf.structured(PreprocessConfig)
    what = "preprocess defaults"
    estimator = None  # replaced whole, never merged key by key into the default estimator's arguments
    try:
        merged = schema
        layers = []
        if path is not None:
            path = check_config_file(path, "--config")
            what = f"--config {path}"
            layers.append(OmegaConf.load(Path(path)))
        if overrides:
            layers.append(OmegaConf.create(overrides))
        for layer in layers:
            if not isinstance(layer, DictConfig):
                raise InputError(f"{what}: expected a mapping of preprocess settings")
            for key in layer:
                if (
                    key in schema
                    and OmegaConf.is_dict(schema[key])
                    and key != "estimator"
                    and not OmegaConf.is_dict(layer[key])
                ):
                    raise InputError(
                        f"{what}: field '{key}' must be a mapping of settings, got {layer[key]!r}"
                    )
            if "estimator" in layer:
                estimator = OmegaConf.to_container(layer.estimator, resolve=True)
                if not isinstance(estimator, dict) or not isinstance(estimator.get("class_path"), str):
                    raise InputError(
                        f"{what}: field 'estimator' must be a mapping with 'class_path' and 'init_args'"
                    )
                layer = OmegaConf.masked_copy(layer, [k for k in layer if k != "estimator"])
            merged = OmegaConf.merge(merged, layer)
        try:
            config = OmegaConf.to_object(merged)
        except InputError as err:  # a range check of a dataclass (__post_init__)
            raise InputError(f"{what}: {err}") from err
    except OmegaConfBaseException as err:
        raise InputError(
            f"{what}: {str(err).splitlines()[0]} (full key: {getattr(err, 'full_key', '?')})"
        ) from err
    if estimator is not None:
        config.estimator = estimator
    return config
