"""``TalkingVideo``: speech + one photo -> a video of that person talking (the whole chain, one object).

The chain (each stage with its progress bar):

1. **pose**: the photo's skeleton from the pipeline's estimator (the largest confident person,
   :func:`~csg_lightning.pose.photo_reference.choose_person`: no person or two of similar size is an
   error), or the given reference pose;
2. **Stage-1 frame**: a ``frame_size`` (512) square around the person's upper body, as preprocessing
   crops training clips (:meth:`PoseFrame.around_person <csg_lightning.video.pose_frame.PoseFrame>`);
   the reference skeleton goes into it;
3. **skeleton** (Stage 1, ``SkeletonPipeline``): skeletons for the whole audio, window by window, in
   that frame, then taken back to the photo's pixels and (``align``) aligned to the photo's body;
4. **video** (Stage 2): every ``frame_stride``-th skeleton (the Stage-2 training rate,
   :mod:`~csg_lightning.generation.stage_match`) drives the video model on the photo, in segments
   that are decoded and appended to the mp4 as they come (:mod:`~csg_lightning.video.frame_stream`).

Outputs, each written atomically (the mp4 last, so its presence means the row is done):
``out.config.yaml`` (the resolved pipeline, checkpoint paths resolved), ``out.npz`` (``keypoints``
[T, 134, 2] in the photo's pixels, ``scores`` [T, 134], ``fps`` 25), ``out.skeleton.mp4`` (the
skeletons on the photo's frame, audio muxed) and ``out.mp4`` (the video, audio muxed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from csg_lightning.generation.pipeline_config import PipelineConfig, checkpoint_path
from csg_lightning.generation.stage_match import chain_stride, read_spec
from csg_lightning.generation.talking_inputs import Inputs, Request, check_request
from csg_lightning.io.atomic import atomic_path
from csg_lightning.io.validation import InputError
from csg_lightning.timing import FPS, SAMPLE_RATE

log = logging.getLogger(__name__)


@dataclass
class Generated:
    """One generated row: skeletons (photo pixels, 25 fps), the video frames (lazy) and their rate."""

    inputs: Inputs
    keypoints: np.ndarray
    scores: np.ndarray
    frames: Iterator[np.ndarray]
    num_frames: int
    fps: float


def _bar(enabled: bool, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(disable=not enabled, dynamic_ncols=True, **kwargs)


class TalkingVideo:
    """The loaded chain of a :class:`PipelineConfig`: estimator, Stage-1 and Stage-2 models."""

    def __init__(self, config: PipelineConfig, skeleton_model, video_model, estimator, frame_stride: int) -> None:
        self.config, self.skeleton_model, self.video_model = config, skeleton_model, video_model
        self.estimator, self.frame_stride = estimator, int(frame_stride)

    @classmethod
    def load(cls, config: PipelineConfig, device: str | None = None) -> TalkingVideo:
        """Check both checkpoints (files, layout and fps chain) and load them, then the estimator."""
        from csg_lightning.checkpoints.safe_load import CheckpointError, load_module
        from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion
        from csg_lightning.video.video_generator import VideoGenerator

        paths = {stage: checkpoint_path(config, stage) for stage in ("skeleton", "video")}
        try:
            specs = {stage: read_spec(path, stage) for stage, path in paths.items()}
        except (CheckpointError, FileNotFoundError) as err:
            raise InputError(f"pipeline {config.source}: {err}") from None
        stride = chain_stride(specs["skeleton"], specs["video"], config.video.frame_stride, f"pipeline {config.source}")
        device = device or config.torch_device
        models = {}
        for stage, cls_ in (("skeleton", SkeletonDiffusion), ("video", VideoGenerator)):
            try:
                models[stage] = load_module(cls_, paths[stage], map_location=device).eval()
            except (CheckpointError, FileNotFoundError) as err:
                raise InputError(f"pipeline {config.source}: field '{stage}.checkpoint': {err}") from None
        estimator = None
        if config.estimator is not None:
            from csg_lightning.pose.estimator_options import build_estimator_from

            estimator = build_estimator_from(config.estimator, f"pipeline {config.source}: field 'estimator'")
        return cls(config, models["skeleton"], models["video"], estimator, stride)

    # ------------------------------------------------------------------ stages
    def check(self, request: Request, where: str = "") -> Inputs:
        return check_request(request, needs_pose=self.estimator is None, where=where)

    def photo_pose(self, inputs: Inputs) -> tuple[np.ndarray, np.ndarray]:
        """The reference skeleton in working pixels: given, or estimated on the photo."""
        if inputs.reference_pose is not None:
            return inputs.reference_pose
        from csg_lightning.pose.photo_reference import choose_person

        (people,) = self.estimator([inputs.image])
        index, confident = choose_person(people, f"--photo {inputs.request.photo}", self.config.person)
        return confident[index].keypoints.astype(np.float32), confident[index].scores.astype(np.float32)

    def skeletons(self, inputs: Inputs, reference: tuple[np.ndarray, np.ndarray], progress: bool = True):
        """Stage 1 in its frame around the person -> keypoints [T, 134, 2] working pixels, scores [T, 134]."""
        from csg_lightning.pipelines.window_chain import window_starts
        from csg_lightning.timing import frames_for_samples
        from csg_lightning.video.pose_alignment import fit_alignment
        from csg_lightning.video.pose_frame import PoseFrame

        cfg, model = self.config.skeleton, self.skeleton_model
        h, w = inputs.image.shape[:2]
        try:
            frame = PoseFrame.around_person(*reference, w, h, size=int(model.hparams.frame_size),
                                            crop_scale=cfg.crop_scale)  # fmt: skip
        except ValueError as err:
            raise InputError(f"--photo {inputs.request.photo}: the reference skeleton has no confident "
                             f"upper-body point ({err})") from None  # fmt: skip
        pipe = model.pipeline()
        overlap = min(pipe.crossfade_frames, pipe.window_frames - max(pipe.model_prefix, 1))
        windows = len(window_starts(frames_for_samples(len(inputs.audio)), pipe.window_frames, overlap))
        bar, denoise = _bar(progress, total=windows, desc="skeleton (Stage 1)", unit="window"), pipe.denoise

        def counted(*args, **kwargs):
            out = denoise(*args, **kwargs)
            bar.update(1)
            return out

        pipe.denoise = counted
        with bar:
            kp, sc = pipe(inputs.audio, frame.to_frame(reference[0]), reference[1], num_steps=cfg.steps,
                          guidance_scale=cfg.guidance, seed=cfg.seed, anchor_seconds=cfg.anchor_seconds)  # fmt: skip
        kp = frame.to_photo(kp)
        if self.config.align:
            kp = fit_alignment(*reference, kp, sc).apply(kp)
        return kp, sc

    def generate(self, inputs: Inputs, progress: bool = True) -> Generated:
        """Pose + Stage 1 now; Stage 2 as a lazy frame iterator (consumed by :meth:`write`)."""
        from csg_lightning.video.frame_stream import prepare_clip, stream_frames

        with _bar(progress, total=1, desc="pose", unit="photo") as bar:
            reference = self.photo_pose(inputs)
            bar.update(1)
        if float(np.abs(inputs.audio).max()) < 1e-4:
            log.warning("--audio %s is silent: the speaker will barely move", inputs.request.audio)
        kp, sc = self.skeletons(inputs, reference, progress)
        v, h = self.config.video, self.video_model.hparams
        drive_kp, drive_sc = kp[:: self.frame_stride], sc[:: self.frame_stride]
        clip = prepare_clip(inputs.image, drive_kp, drive_sc, int(h.image_width), int(h.image_height),
                            reference, None, align=False)  # fmt: skip
        tile_size = -1 if v.tile_size is None else (v.tile_size or None)

        def frames() -> Iterator[np.ndarray]:
            with _bar(progress, total=len(clip), desc="video (Stage 2)", unit="frame") as bar:
                yield from stream_frames(
                    self.video_model, clip, segment_frames=v.segment_frames, segment_overlap=v.segment_overlap,
                    seed=v.seed, progress=bar, num_steps=v.steps, min_guidance=v.min_guidance,
                    max_guidance=v.max_guidance, tile_size=tile_size, tile_overlap=v.tile_overlap,
                )  # fmt: skip

        scale = np.float32(inputs.photo_scale)
        return Generated(inputs, kp * scale, sc, frames(), len(clip), FPS / self.frame_stride)

    def write(self, generated: Generated) -> Path:
        """The four outputs, each atomically, the mp4 last (streamed: never every frame in memory)."""
        from csg_lightning.io.mp4 import write_mp4
        from csg_lightning.render.skeleton_video import write_skeleton_video

        inputs, out = generated.inputs, generated.inputs.outputs
        with atomic_path(out.config) as tmp:
            tmp.write_text(self.resolved_yaml(inputs.request))
        with atomic_path(out.skeletons) as tmp, open(tmp, "wb") as f:
            np.savez(f, keypoints=generated.keypoints, scores=generated.scores, fps=np.int64(FPS))
        h, w = inputs.image.shape[:2]
        write_skeleton_video(out.skeleton_video, [(generated.keypoints, generated.scores)], w * inputs.photo_scale,
                             h * inputs.photo_scale, size=self.config.skeleton_video_size, fps=FPS,
                             audio=inputs.audio, sample_rate=SAMPLE_RATE)  # fmt: skip
        audio = inputs.audio[: round(generated.num_frames * SAMPLE_RATE / generated.fps)]
        write_mp4(out.video, generated.frames, fps=generated.fps, audio=audio, sample_rate=SAMPLE_RATE)
        return out.video

    def __call__(self, request: Request, progress: bool = True) -> Path:
        return self.write(self.generate(self.check(request), progress))

    def resolved_yaml(self, request: Request) -> str:
        """The pipeline as run (checkpoint paths resolved, so a moved ``latest`` link changes nothing),
        headed by the row's inputs as comments; ``csg generate --pipeline`` reads it back."""
        c = self.config
        resolved = replace(c, skeleton=replace(c.skeleton, checkpoint=str(Path(c.skeleton.checkpoint).resolve())),
                           video=replace(c.video, checkpoint=str(Path(c.video.checkpoint).resolve())))  # fmt: skip
        head = [f"# csg generate: pipeline {c.source}", f"# audio: {request.audio}", f"# photo: {request.photo}",
                f"# reference_pose: {request.reference_pose}", f"# video: {FPS / self.frame_stride:g} fps "
                f"(frame_stride {self.frame_stride})", f"# device: {self._device()}"]  # fmt: skip
        return "\n".join(head) + "\n" + resolved.to_yaml()

    def _device(self) -> str:
        device = str(next(self.video_model.parameters()).device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            device += f", process {torch.distributed.get_rank()} of {torch.distributed.get_world_size()}"
        return device

    def to(self, device: str | torch.device) -> TalkingVideo:
        self.skeleton_model.to(device), self.video_model.to(device)
        return self
