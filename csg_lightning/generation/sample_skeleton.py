"""`make sample-skeleton`: a Stage 1 checkpoint + any audio file -> skeleton video (with audio) and .npz.

    python -m csg_lightning.generation.sample_skeleton --ckpt runs/.../last.ckpt --audio speech.wav \
        [--ref ref.npz] --out out.mp4

writes ``out.mp4`` (the skeletons drawn at ``--size`` pixels high, the audio muxed) and ``out.npz`` with
``keypoints`` float32 [T, 134, 2] (pixels, storage order), ``scores`` float32 [T, 134] and ``fps`` (25),
where T = round(25 x audio seconds).

Every input but the checkpoint is checked before the model is loaded, and the command exits with a
message naming the bad one: the output paths (.mp4 and its .npz writable, not directories), the
audio (readable, finite, at least one frame, at most ``MAX_AUDIO_SECONDS``), the ``--ref`` skeleton
(see ``csg_lightning.io.validation.load_skeleton_npz``), the numbers (``--steps`` >= 1, ``--size``
>= 16, ``--guidance`` finite and >= 0) and the device.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

from csg_lightning.io.atomic import atomic_path
from csg_lightning.io.audio import read_audio
from csg_lightning.io.validation import (
    InputError,
    check_device,
    check_output_file,
    finite_float,
    int_at_least,
    load_skeleton_npz,
)
from csg_lightning.render.drawing_frame import content_frame, frame_holds, frame_size_of
from csg_lightning.render.skeleton_video import write_skeleton_video
from csg_lightning.timing import FPS, SAMPLE_RATE

MIN_VIDEO_SIZE = 16  # pixels: the smallest --size
log = logging.getLogger(__name__)


def load_reference(
    path: str | os.PathLike, what: str = "reference skeleton"
) -> tuple[np.ndarray, np.ndarray]:
    """Reference skeleton from an .npz: ``keypoints`` [134, 2] or [T, 134, 2] (first frame used) and
    optional ``scores`` [134] or [T, 134] (all ones when absent) -> float32 [134, 2], [134].

    Raises :class:`~csg_lightning.io.validation.InputError` naming the file and field for a damaged
    or non-npz file, a missing ``keypoints`` array, wrong shapes, NaN/inf or scores outside [0, 1].
    """
    return load_skeleton_npz(path, what, sequence=False)


def write_skeleton_outputs(
    out_path: str | os.PathLike,
    keypoints: np.ndarray,
    scores: np.ndarray,
    audio: np.ndarray,
    fps: int = FPS,
    width: float | None = None,
    height: float | None = None,
    size: int = 512,
    sample_rate: int = SAMPLE_RATE,
    **draw_options,
) -> tuple[Path, Path]:
    """Write ``out_path`` (.mp4: skeleton video, audio muxed) and ``<stem>.npz`` beside it, both atomically.

    keypoints: [T, 134, 2] pixels of a ``width`` x ``height`` frame (when either is None the video is
    framed around the skeletons); scores: [T, 134]; audio: [N] float mono at ``sample_rate`` with
    T == round(N * fps / sample_rate). Returns (mp4 path, npz path).
    """
    out_path, npz_path = check_outputs(out_path)
    keypoints = np.asarray(keypoints, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (134, 2) or scores.shape != keypoints.shape[:2]:
        raise ValueError(
            f"expected keypoints [T, 134, 2] and scores [T, 134], got {keypoints.shape}, {scores.shape}"
        )
    expected = round(len(audio) * fps / sample_rate)
    if len(keypoints) != expected:
        raise ValueError(
            f"{out_path}: {len(keypoints)} skeleton frames for {len(audio) / sample_rate:.3f} s of audio; "
            f"expected round({fps} x duration) = {expected}"
        )
    with atomic_path(npz_path) as tmp, open(tmp, "wb") as f:
        np.savez(f, keypoints=keypoints, scores=scores, fps=np.int64(fps))
    drawn = keypoints
    if width is None or height is None:
        offset, width, height = content_frame(keypoints, scores)
        drawn = keypoints - offset.astype(np.float32)
    write_skeleton_video(
        out_path,
        [(drawn, scores)],
        width,
        height,
        size=size,
        fps=fps,
        audio=audio,
        sample_rate=sample_rate,
        **draw_options,
    )
    return out_path, npz_path


def check_outputs(out_path: str | os.PathLike, what: str = "output") -> tuple[Path, Path]:
    """The video path (must end in .mp4) and the .npz beside it: both writable, neither a directory."""
    video = check_output_file(out_path, what, ".mp4")
    return video, check_output_file(video.with_suffix(".npz"), f"{what} (its .npz)", ".npz")


def _frame_size(args, model, keypoints, scores) -> tuple[float | None, float | None]:
    """Source frame: --width/--height, else the model's ``hparams.frame_size`` if it holds the
    skeletons, else None (the video is framed around them)."""
    if args.width and args.height:
        return float(args.width), float(args.height)
    width, height = frame_size_of(getattr(model, "hparams", None))
    if width is not None and frame_holds(keypoints, scores, width, height):
        return width, height
    return None, None


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sample-skeleton", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="SkeletonDiffusion checkpoint (.ckpt)")
    parser.add_argument("--audio", required=True, help="speech: any wav/flac/ogg or a video's audio track")
    parser.add_argument("--ref", default=None, help=".npz with reference keypoints [134,2] (+ scores)")
    parser.add_argument("--out", default="out.mp4", help="output video (.mp4); the .npz goes beside it")
    parser.add_argument(
        "--steps", type=int_at_least(1), default=None, help="sampling steps (default: the model's)"
    )
    parser.add_argument(
        "--guidance", type=finite_float(0.0), default=None, help="CFG scale (default: the model's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--size", type=int_at_least(MIN_VIDEO_SIZE), default=512, help="video height in pixels"
    )
    pixels = finite_float(0.0, exclusive=True)
    parser.add_argument("--width", type=pixels, default=None, help="source frame width of the keypoints")
    parser.add_argument("--height", type=pixels, default=None, help="source frame height of the keypoints")
    parser.add_argument(
        "--device", default="auto", help="torch device for sampling (auto: cuda if available)"
    )
    return parser


def check_inputs(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Every input but the checkpoint, before anything is loaded or sampled: the output paths, the audio
    (finite, at least one frame long, at most MAX_AUDIO_SECONDS), the reference skeleton, the options
    that go together, the device. Returns (audio, reference keypoints, reference scores)."""
    if (args.width is None) != (args.height is None):
        raise InputError("--width and --height: give both (the source frame of the keypoints) or neither")
    check_outputs(args.out, "--out")
    audio = read_audio(args.audio, SAMPLE_RATE, what="--audio")
    if round(len(audio) * FPS / SAMPLE_RATE) < 1:
        raise InputError(
            f"--audio {args.audio}: {len(audio) / SAMPLE_RATE * 1000:.1f} ms of audio is shorter than one "
            f"skeleton frame; expected at least {1000 / FPS / 2:.0f} ms"
        )
    ref_keypoints, ref_scores = load_reference(args.ref, "--ref") if args.ref else (None, None)
    check_device(_device(args.device))
    return audio, ref_keypoints, ref_scores


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ckpt = Path(args.ckpt)
    if not ckpt.is_file():
        raise SystemExit(f"sample-skeleton: checkpoint not found: {ckpt}")
    try:
        audio, ref_keypoints, ref_scores = check_inputs(args)
    except InputError as err:
        raise SystemExit(f"sample-skeleton: {err}") from None

    from csg_lightning.checkpoints.safe_load import CheckpointError, load_module
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    try:
        model = load_module(SkeletonDiffusion, ckpt, map_location="cpu")
    except (CheckpointError, FileNotFoundError) as err:
        raise SystemExit(f"sample-skeleton: --ckpt: {err}") from None
    model.to(_device(args.device)).eval()
    pipeline = model.pipeline()  # the checkpoint's state_dict holds the EMA weights
    keypoints, scores = pipeline(
        audio, ref_keypoints, ref_scores, num_steps=args.steps, guidance_scale=args.guidance, seed=args.seed
    )
    width, height = _frame_size(args, model, keypoints, scores)
    video, npz = write_skeleton_outputs(
        args.out, keypoints, scores, audio, fps=FPS, width=width, height=height, size=args.size
    )
    log.info("wrote %s (%d frames, %.2f s) and %s", video, len(keypoints), len(audio) / SAMPLE_RATE, npz)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
