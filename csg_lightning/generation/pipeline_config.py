"""The pipeline YAML of ``csg generate``: which estimator and checkpoints chain audio + photo -> video.

A pipeline YAML (``experiments/pipeline/*.yaml``) names every part of the chain; unset numbers take
the checkpoint's own settings::

    pipeline: demo                 # a name (the output's config.yaml records it)
    device: auto                   # auto (cuda if available) | cpu | cuda | cuda:N
    estimator: null                # photo -> reference skeleton: {class_path, init_args}, a YAML file
                                   # (experiments/pose/dwpose_onnx.yaml), or null (then --reference-pose)
    person: null                   # which person of the photo (0 = largest); null refuses two of similar size
    align: true                    # align the generated skeletons to the photo's body (scale + offset)
    skeleton:                      # Stage 1 (SkeletonDiffusion)
      checkpoint: runs/skeleton-demo/latest/checkpoints/last.ckpt
      steps: null                  # sampler steps (null: the checkpoint's)
      guidance: null               # CFG scale (null: the checkpoint's)
      seed: 0
      crop_scale: 1.3              # Stage-1 frame side = crop_scale x the photo's upper-body extent
      anchor_seconds: null         # start exactly at the photo's pose, the correction fading over this
                                   # time constant (skeleton.anchoring.anchor_start; null: off)
    video:                         # Stage 2 (VideoGenerator)
      checkpoint: runs/video-demo/latest/checkpoints/last.ckpt
      steps: null
      min_guidance: null           # per-frame CFG ramp (null: the checkpoint's guider)
      max_guidance: null
      tile_size: null              # frames per denoising tile (null: the checkpoint's; 0: no tiling)
      tile_overlap: null
      segment_frames: 64           # frames generated, decoded and written at a time (long audio streams)
      segment_overlap: 4           # frames cross-faded between segments
      frame_stride: null           # Stage-1 frames per video frame (null: Stage 2's training stride)
      seed: 0
    skeleton_video_size: 512       # height of out.skeleton.mp4

Paths are relative to the folder the command runs in (``runs/<exp>/latest/...`` works). Overrides are
dotted keys (``skeleton.steps=10``). Every error names the YAML file and the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from csg_lightning.io.validation import InputError, MissingInputError, check_config_file


@dataclass
class SkeletonStage:
    checkpoint: str = "runs/skeleton-demo/latest/checkpoints/last.ckpt"
    steps: int | None = None
    guidance: float | None = None
    seed: int = 0
    crop_scale: float = 1.3
    anchor_seconds: float | None = None


@dataclass
class VideoStage:
    checkpoint: str = "runs/video-demo/latest/checkpoints/last.ckpt"
    steps: int | None = None
    min_guidance: float | None = None
    max_guidance: float | None = None
    tile_size: int | None = None
    tile_overlap: int | None = None
    segment_frames: int = 64
    segment_overlap: int = 4
    frame_stride: int | None = None
    seed: int = 0


@dataclass
class PipelineConfig:
    pipeline: str = "pipeline"
    device: str = "auto"
    estimator: Any = None
    person: int | None = None
    align: bool = True
    skeleton: SkeletonStage = field(default_factory=SkeletonStage)
    video: VideoStage = field(default_factory=VideoStage)
    skeleton_video_size: int = 512
    source: str = "<pipeline>"  # the YAML file (for messages; not part of the file itself)

    def error(self, key: str, problem: str) -> InputError:
        return InputError(f"pipeline {self.source}: field '{key}': {problem}")

    def to_yaml(self) -> str:
        """The resolved config as YAML (what ``out.config.yaml`` holds)."""
        import dataclasses

        import yaml

        values = dataclasses.asdict(self)
        del values["source"]
        return yaml.safe_dump(values, sort_keys=False)

    @property
    def torch_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


_AT_LEAST = {  # field -> (minimum, inclusive) for numbers that must be positive
    "skeleton.steps": 1, "skeleton.guidance": 0, "skeleton.crop_scale": 1,
    "skeleton.anchor_seconds": 0.04,
    "video.steps": 1, "video.min_guidance": 0, "video.max_guidance": 0, "video.tile_size": 0,
    "video.tile_overlap": 1, "video.segment_frames": 2, "video.segment_overlap": 0, "video.frame_stride": 1,
    "skeleton_video_size": 16, "person": 0,
}  # fmt: skip


def normalise_overrides(items: list[str]) -> list[str]:
    """``["--skeleton.steps", "10", "--video.seed=3"]`` -> ``["skeleton.steps=10", "video.seed=3"]``."""
    out, i = [], 0
    while i < len(items):
        item = items[i].removeprefix("--")
        if "=" not in item:
            if i + 1 >= len(items):
                raise InputError(f"--{item}: expected a value (--{item} VALUE or --{item}=VALUE)")
            item, i = f"{item}={items[i + 1]}", i + 1
        out.append(item)
        i += 1
    return out


def load_pipeline_config(path: str | os.PathLike, overrides: list[str] = ()) -> PipelineConfig:
    """Read a pipeline YAML (+ ``key=value`` overrides) into a checked :class:`PipelineConfig`."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = check_config_file(path, "--pipeline")
    schema = OmegaConf.structured(PipelineConfig)
    try:
        loaded = OmegaConf.load(path)
    except OmegaConfBaseException as err:
        raise InputError(f"pipeline {path}: {err}") from err
    for layer, where in ((loaded, str(path)), (OmegaConf.from_dotlist(list(overrides)), "override")):
        try:
            schema = OmegaConf.merge(schema, layer)
        except OmegaConfBaseException as err:
            key = getattr(err, "full_key", None) or "?"
            problem = str(err).splitlines()[0]
            raise InputError(f"pipeline {path} ({where}): field '{key}': {problem}") from None
    config: PipelineConfig = OmegaConf.to_object(schema)
    config.source = str(path)
    _check(config)
    return config


def _value(config: PipelineConfig, key: str):
    node = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _check(config: PipelineConfig) -> None:
    for key, minimum in _AT_LEAST.items():
        value = _value(config, key)
        if value is not None and not value >= minimum:
            raise config.error(key, f"expected a number >= {minimum}, got {value}")
    v = config.video
    if v.segment_overlap >= v.segment_frames:
        raise config.error("video.segment_overlap", f"expected < video.segment_frames ({v.segment_frames}), "
                                                    f"got {v.segment_overlap}")  # fmt: skip
    if v.tile_size and v.tile_overlap is not None and v.tile_overlap >= v.tile_size:
        raise config.error("video.tile_overlap", f"expected < video.tile_size ({v.tile_size}): the frames two "
                                                 f"tiles share, frame 0 included, got {v.tile_overlap}")  # fmt: skip
    if config.estimator is not None and not isinstance(config.estimator, (str, dict)):
        raise config.error("estimator", "expected null, a YAML file or {class_path, init_args}")
    if isinstance(config.estimator, str):
        config.estimator = _estimator_file(config, config.estimator)


def _estimator_file(config: PipelineConfig, value: str) -> dict:
    import yaml

    try:
        file = check_config_file(value, f"pipeline {config.source}: field 'estimator':")
    except MissingInputError:
        raise config.error("estimator", f"{value}: file not found (an estimator YAML, e.g. "
                                        "experiments/pose/dwpose_onnx.yaml)") from None  # fmt: skip
    spec = yaml.safe_load(Path(file).read_text())
    spec = spec.get("estimator", spec) if isinstance(spec, dict) else spec
    if not isinstance(spec, dict) or not isinstance(spec.get("class_path"), str):
        raise config.error("estimator", f"{value}: expected class_path and init_args")
    return spec


def checkpoint_path(config: PipelineConfig, stage: str) -> Path:
    """``skeleton.checkpoint`` / ``video.checkpoint`` as an existing file, or an error naming the field."""
    value = getattr(config, stage).checkpoint
    path = Path(value)
    if not path.is_file():
        hint = {"skeleton": "make train-skeleton", "video": "make train-video"}[stage]
        raise config.error(f"{stage}.checkpoint", f"{value}: file not found (train one: {hint}, or set "
                                                  f"--{stage}.checkpoint PATH)")  # fmt: skip
    return path


FIELDS = [f.name for f in fields(PipelineConfig) if f.name != "source"]
