"""``generate_video``: a reference photo + a driving skeleton sequence (+ speech) -> an mp4 of that person.

Steps (:mod:`~csg_lightning.video.frame_stream`): the reference is scaled to cover the model's size and
centre-cropped (:class:`~csg_lightning.data.cover_crop.CoverCrop`); the driving keypoints are taken from
the pixel frame they refer to (``pose_frame``, a :class:`~csg_lightning.video.pose_frame.PoseFrame`:
the photo's own pixels, or Stage 1's 512-pixel frame placed around the photo's person) to the photo's;
when the reference image's own pose is given, they are aligned to its body
(:mod:`~csg_lightning.video.pose_alignment`); the pose sequence is the reference pose followed by the
driving poses, drawn with the project's renderer; the latents are sampled with Euler steps, per-frame
guidance rising from min to max and progressive latent fusion over tiles
(:class:`~csg_lightning.pipelines.video_pipeline.VideoPipeline`, with the model's EMA weights via
:meth:`VideoGenerator.sample_latents`) — in segments of ``segment_frames`` for long clips — and
decoded; output frame 0 (the reference) is dropped; the mp4 gets the audio muxed when given.

    python -m csg_lightning.video.generate --checkpoint runs/video-demo/latest/checkpoints/last.ckpt \\
        --reference photo.png --poses poses.npz [--reference-pose ref.npz] [--poses-frame stage1] \\
        [--audio speech.wav] --out video.mp4

``--poses-frame photo`` (default): the poses are in the photo's pixels; ``stage1``: in the pixels of a
``--frame-size`` (512) square around the reference pose's upper body, as Stage 1 generates them (needs
``--reference-pose``). The command checks the output path, the photo (decodes completely, >= 16 px a
side), the pose files, the audio, ``--steps`` and the device before the checkpoint is loaded, and exits
with a message naming the bad input; ``generate_video`` checks its arguments before sampling.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from csg_lightning.io.audio import read_audio
from csg_lightning.io.mp4 import write_mp4
from csg_lightning.io.validation import (
    InputError,
    check_device,
    check_output_file,
    int_at_least,
    load_skeleton_npz,
)
from csg_lightning.timing import FPS, SAMPLE_RATE
from csg_lightning.video.frame_stream import prepare_clip, stream_frames
from csg_lightning.video.generation_inputs import check_generation_inputs, load_image
from csg_lightning.video.pose_frame import PoseFrame

__all__ = ["generate_video", "load_image", "check_generation_inputs", "main"]


@torch.no_grad()
def generate_video(
    reference_image: str | os.PathLike | np.ndarray,
    poses: tuple[np.ndarray, np.ndarray],
    audio: str | os.PathLike | np.ndarray | None = None,
    *,
    model,
    reference_pose: tuple[np.ndarray, np.ndarray] | None = None,
    pose_frame: PoseFrame | None = None,
    pose_frame_size: tuple[int, int] | None = None,
    align: bool = True,
    out_path: str | os.PathLike | None = None,
    fps: float = FPS,
    num_steps: int | None = None,
    min_guidance: float | None = None,
    max_guidance: float | None = None,
    tile_size: int | None = -1,
    tile_overlap: int | None = None,
    canvas_size: int | None = None,
    segment_frames: int | None = None,
    segment_overlap: int = 0,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Generate T frames driven by ``poses`` = (keypoints [T, 134, 2], scores [T, 134]).

    model: a :class:`~csg_lightning.video.video_generator.VideoGenerator` (its ``image_height`` /
    ``image_width`` hparams give the output size, its ``swap_rb`` the pose colours).
    reference_pose: (keypoints [134, 2], scores [134]) of the reference image in its pixels; used for
    frame 0's pose and, with ``align``, to align the driving skeletons to the reference body. Without
    it frame 0 gets the first driving pose. pose_frame: the pixel frame of the driving keypoints
    (default: the reference image's); pose_frame_size: (width, height) of a frame that spans the whole
    photo (each axis scaled on its own; kept for callers of the older interface). audio: mono samples
    at ``sample_rate`` or a path. Unset sampling arguments take the model's hparams. canvas_size: pose
    drawing canvas (None = as in training by ``PoseVideoDataModule``; 2160 = MimicMotion's pose
    images). segment_frames / segment_overlap: see :func:`~csg_lightning.video.frame_stream.stream_frames`.
    Returns uint8 [T, H, W, 3]; writes ``out_path`` (mp4, audio muxed) when given.
    """
    h = model.hparams
    if h.image_height is None or h.image_width is None:
        raise ValueError(
            "generate_video: the model has no image_height/image_width (train it with a datamodule)"
        )
    if pose_frame is not None and pose_frame_size is not None:
        raise InputError("generate_video: give pose_frame or pose_frame_size, not both")
    image, (kp, sc), audio, reference_pose = check_generation_inputs(
        reference_image, poses, audio, reference_pose, out_path, num_steps, sample_rate
    )
    if pose_frame_size is not None:  # a frame stretched over the whole photo
        kp = kp * np.array([image.shape[1] / pose_frame_size[0], image.shape[0] / pose_frame_size[1]], np.float32)
    clip = prepare_clip(image, kp, sc, int(h.image_width), int(h.image_height), reference_pose, pose_frame, align)
    frames = np.stack(list(stream_frames(
        model, clip, segment_frames=segment_frames, segment_overlap=segment_overlap, canvas_size=canvas_size,
        seed=seed, num_steps=num_steps, min_guidance=min_guidance, max_guidance=max_guidance,
        tile_size=tile_size, tile_overlap=tile_overlap,
    )))  # fmt: skip
    if out_path is not None:
        if audio is not None:  # the video's duration: T frames at fps
            audio = audio[: round(len(frames) * sample_rate / fps)]
        write_mp4(out_path, frames, fps=fps, audio=audio, sample_rate=sample_rate)
    return frames


def _pose_frame(opts, reference_pose, poses) -> PoseFrame | None:
    if opts.poses_frame == "photo":
        return None
    if reference_pose is None:
        raise InputError("--poses-frame stage1: also give --reference-pose (the frame is placed around it)")
    try:
        return PoseFrame.around_person(*reference_pose, *opts.photo_size, size=opts.frame_size)
    except ValueError as err:
        raise InputError(f"--reference-pose {opts.reference_pose}: {err}") from None


def main(args: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a VideoGenerator checkpoint (.ckpt)")
    parser.add_argument("--reference", required=True, help="reference photo")
    parser.add_argument(
        "--poses", required=True, help="npz with keypoints [T,134,2], scores [T,134] (pose.npz)"
    )
    parser.add_argument(
        "--reference-pose", help="npz with the reference photo's keypoints [134,2], scores [134]"
    )
    parser.add_argument("--poses-frame", choices=("photo", "stage1"), default="photo",
                        help="pixels the poses refer to: the photo's, or Stage 1's square frame around "
                             "the reference pose (as Stage 1 generates them)")  # fmt: skip
    parser.add_argument("--frame-size", type=int_at_least(16), default=512, help="Stage 1's frame side")
    parser.add_argument("--audio", help="speech to mux (wav/flac/mp4)")
    parser.add_argument("--out", required=True, help="output mp4")
    parser.add_argument("--steps", type=int_at_least(1), default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    opts = parser.parse_args(args)
    try:  # every input but the checkpoint, before it is loaded
        check_output_file(opts.out, "--out", ".mp4")
        image = load_image(opts.reference, "--reference")
        poses = load_skeleton_npz(opts.poses, "--poses", sequence=True)
        reference_pose = None
        if opts.reference_pose:
            reference_pose = load_skeleton_npz(opts.reference_pose, "--reference-pose", sequence=False)
        opts.photo_size = (image.shape[1], image.shape[0])
        pose_frame = _pose_frame(opts, reference_pose, poses)
        audio = read_audio(opts.audio, SAMPLE_RATE, what="--audio") if opts.audio else None
        check_device(opts.device)
    except InputError as err:
        raise SystemExit(f"generate: {err}") from None
    from csg_lightning.checkpoints.safe_load import CheckpointError, load_module
    from csg_lightning.video.video_generator import VideoGenerator

    try:
        model = load_module(VideoGenerator, opts.checkpoint, map_location=opts.device).eval()
    except (CheckpointError, FileNotFoundError) as err:
        raise SystemExit(f"generate: --checkpoint: {err}") from None
    generate_video(
        image, poses, audio, model=model, reference_pose=reference_pose, pose_frame=pose_frame,
        out_path=opts.out, num_steps=opts.steps, seed=opts.seed,
    )  # fmt: skip
    print(f"video: {opts.out}")
    return Path(opts.out)


if __name__ == "__main__":
    main()
