"""``generate_video``: a reference photo + a driving skeleton sequence (+ speech) -> an mp4 of that person.

Steps: the reference is scaled to cover the model's size and centre-cropped
(:class:`~csg_lightning.data.cover_crop.CoverCrop`); when the reference image's own pose is given, the
driving skeletons are aligned to its body (:mod:`~csg_lightning.video.pose_alignment`); the pose
sequence is the reference pose followed by the driving poses, drawn with the project's renderer; the
latents are sampled with Euler steps, per-frame guidance rising from min to max and progressive latent
fusion over tiles, guidance through ``Guider.combine``
(:class:`~csg_lightning.pipelines.video_pipeline.VideoPipeline`, with the model's EMA weights via
:meth:`VideoGenerator.sample_latents`), decoded in chunks; output frame 0 (the
reference) is dropped; the mp4 gets the audio muxed when given.

    python -m csg_lightning.video.generate --checkpoint runs/video-demo/latest/checkpoints/last.ckpt \\
        --reference photo.png --poses poses.npz [--audio speech.wav] --out video.mp4

The command checks the output path, the photo (decodes completely, >= 16 px a side), the pose files,
the audio, ``--steps`` and the device before the checkpoint is loaded, and exits with a message
naming the bad input; ``generate_video`` checks its arguments before sampling.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from csg_lightning.data.cover_crop import CoverCrop
from csg_lightning.io.audio import read_audio
from csg_lightning.io.mp4 import write_mp4
from csg_lightning.io.validation import (
    MIN_IMAGE_SIZE,
    InputError,
    check_device,
    check_finite,
    check_image_file,
    check_output_file,
    check_skeleton,
    int_at_least,
    load_skeleton_npz,
)
from csg_lightning.skeleton.drawing import draw_pose_sequence
from csg_lightning.timing import FPS, SAMPLE_RATE
from csg_lightning.video.pixel_range import to_model_range
from csg_lightning.video.pose_alignment import fit_alignment


def load_image(image: str | os.PathLike | np.ndarray, what: str = "reference image") -> np.ndarray:
    """A path or an array -> uint8 RGB [H, W, 3]; a file must decode completely (see ``check_image_file``)."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"{what}: expected uint8 [H, W, 3] RGB, got {image.dtype} {image.shape}")
        if min(image.shape[:2]) < MIN_IMAGE_SIZE:
            raise InputError(
                f"{what}: {image.shape[1]}x{image.shape[0]} pixels, expected >= {MIN_IMAGE_SIZE}"
            )
        return image
    path = check_image_file(image, what)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{what} {path}: OpenCV cannot decode this image format")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def check_generation_inputs(
    image: str | os.PathLike | np.ndarray,
    poses: tuple[np.ndarray, np.ndarray],
    audio: str | os.PathLike | np.ndarray | None,
    reference_pose: tuple[np.ndarray, np.ndarray] | None,
    out_path: str | os.PathLike | None,
    num_steps: int | None,
    sample_rate: int = SAMPLE_RATE,
) -> tuple[np.ndarray, tuple, np.ndarray | None, tuple | None]:
    """The inputs of :func:`generate_video`, checked before any sampling (errors name the input) ->
    (image uint8 [H, W, 3], (keypoints, scores), audio samples or None, reference pose or None)."""
    if num_steps is not None and int(num_steps) < 1:
        raise InputError(f"num_steps: expected an integer >= 1, got {num_steps}")
    if out_path is not None:
        check_output_file(out_path, "out_path", ".mp4")
    image = load_image(image)
    poses = check_skeleton(*poses, "poses", sequence=True)
    if reference_pose is not None:
        reference_pose = check_skeleton(*reference_pose, "reference_pose", sequence=False)
    if audio is not None and not isinstance(audio, np.ndarray):
        audio = read_audio(audio, sample_rate)
    if audio is not None:
        audio = np.asarray(audio)
        if audio.ndim != 1 or audio.size == 0:
            raise InputError(f"audio: expected mono samples [N] with N >= 1, got shape {audio.shape}")
        check_finite(audio, "audio", "samples")
    return image, poses, audio, reference_pose


@torch.no_grad()
def generate_video(
    reference_image: str | os.PathLike | np.ndarray,
    poses: tuple[np.ndarray, np.ndarray],
    audio: str | os.PathLike | np.ndarray | None = None,
    *,
    model,
    reference_pose: tuple[np.ndarray, np.ndarray] | None = None,
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
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Generate T frames driven by ``poses`` = (keypoints [T, 134, 2], scores [T, 134]).

    model: a :class:`~csg_lightning.video.video_generator.VideoGenerator` (its ``image_height`` /
    ``image_width`` hparams give the output size, its ``swap_rb`` the pose colours).
    reference_pose: (keypoints [134, 2], scores [134]) of the reference image in its pixels; used for
    frame 0's pose and, with ``align``, to align the driving skeletons to the reference body. Without
    it frame 0 gets the first driving pose. pose_frame_size: (width, height) of the frame the driving
    keypoints live in (default: the reference image's). audio: mono samples at ``sample_rate`` or a
    path. Unset sampling arguments take the model's hparams. canvas_size: pose drawing canvas (None =
    as in training by ``PoseVideoDataModule``; 2160 = MimicMotion's pose images).
    Returns uint8 [T, H, W, 3]; writes ``out_path`` (mp4, audio muxed) when given.
    """
    h = model.hparams
    if h.image_height is None or h.image_width is None:
        raise ValueError(
            "generate_video: the model has no image_height/image_width (train it with a datamodule)"
        )
    height, width = int(h.image_height), int(h.image_width)
    image, (kp, sc), audio, reference_pose = check_generation_inputs(
        reference_image, poses, audio, reference_pose, out_path, num_steps, sample_rate
    )
    crop = CoverCrop.fit(image.shape[1], image.shape[0], width, height)
    pw, ph = pose_frame_size or (image.shape[1], image.shape[0])
    kp = kp * np.array([image.shape[1] / pw, image.shape[0] / ph], dtype=np.float32)  # into image pixels
    if reference_pose is not None:
        ref_kp, ref_sc = reference_pose
        if align:
            kp = fit_alignment(ref_kp, ref_sc, kp, sc).apply(kp)
        kp, sc = np.concatenate([ref_kp[None], kp]), np.concatenate([ref_sc[None], sc])
    else:
        kp, sc = np.concatenate([kp[:1], kp]), np.concatenate([sc[:1], sc])
    pose_images = draw_pose_sequence(
        crop.keypoints(kp),
        sc,
        width,
        height,
        (height, width),
        canvas_size=canvas_size,
        swap_rb=bool(h.swap_rb),
    )  # [T + 1, H, W, 3]
    reference = torch.from_numpy(crop.image(image)).permute(2, 0, 1)[None]
    pose_tensor = torch.from_numpy(pose_images).permute(0, 3, 1, 2)[None]
    latents = model.sample_latents(
        to_model_range(reference), to_model_range(pose_tensor), num_steps=num_steps, min_guidance=min_guidance,
        max_guidance=max_guidance, tile_size=tile_size, tile_overlap=tile_overlap, seed=seed,
    )  # fmt: skip
    frames = model.decode(latents[:, 1:])[0].cpu().numpy()
    if out_path is not None:
        if audio is not None:  # the video's duration: T frames at fps
            audio = audio[: round(len(frames) * sample_rate / fps)]
        write_mp4(out_path, frames, fps=fps, audio=audio, sample_rate=sample_rate)
    return frames


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
        image, poses, audio, model=model, reference_pose=reference_pose, out_path=opts.out,
        num_steps=opts.steps, seed=opts.seed,
    )  # fmt: skip
    print(f"video: {opts.out}")
    return Path(opts.out)


if __name__ == "__main__":
    main()
