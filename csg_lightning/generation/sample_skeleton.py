"""`make sample-skeleton`: a Stage 1 checkpoint + any audio file -> skeleton video (with audio) and .npz.

    python -m csg_lightning.generation.sample_skeleton --ckpt runs/.../last.ckpt --audio speech.wav \
        [--ref ref.npz] --out out.mp4

writes ``out.mp4`` (the skeletons drawn at ``--size`` pixels high, the audio muxed) and ``out.npz`` with
``keypoints`` float32 [T, 134, 2] (pixels, storage order), ``scores`` float32 [T, 134] and ``fps`` (25),
where T = round(25 x audio seconds).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

from csg_lightning.io.atomic import atomic_path
from csg_lightning.io.audio import SAMPLE_RATE, read_audio
from csg_lightning.render.framing import content_frame, frame_holds, frame_size_of
from csg_lightning.render.skeleton_video import write_skeleton_video

FPS = 25
log = logging.getLogger(__name__)


def load_reference(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reference skeleton from an .npz: ``keypoints`` [134, 2] or [T, 134, 2] (first frame used) and
    optional ``scores`` [134] or [T, 134] (all ones when absent) -> float32 [134, 2], [134]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference skeleton not found: {path}")
    with np.load(path) as data:
        if "keypoints" not in data:
            raise ValueError(f"{path}: no 'keypoints' array (expected [134, 2] or [T, 134, 2] pixels)")
        keypoints = np.asarray(data["keypoints"], dtype=np.float32)
        scores = np.asarray(data["scores"], dtype=np.float32) if "scores" in data else None
    if keypoints.ndim == 3:
        keypoints = keypoints[0]
    if keypoints.shape != (134, 2):
        raise ValueError(f"{path}: 'keypoints' must be [134, 2] or [T, 134, 2], got {_shape(keypoints)}")
    if scores is None:
        scores = np.ones(134, dtype=np.float32)
    elif scores.ndim == 2:
        scores = scores[0]
    if scores.shape != (134,):
        raise ValueError(f"{path}: 'scores' must be [134] or [T, 134], got {_shape(scores)}")
    return keypoints, scores


def _shape(array: np.ndarray) -> str:
    return "[" + ", ".join(map(str, array.shape)) + "]"


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
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".mp4":
        raise ValueError(f"output path must end in .mp4, got {out_path}")
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
    npz_path = out_path.with_suffix(".npz")
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
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    parser.add_argument("--guidance", type=float, default=None, help="CFG scale (default: the model's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=512, help="video height in pixels")
    parser.add_argument("--width", type=float, default=None, help="source frame width of the keypoints")
    parser.add_argument("--height", type=float, default=None, help="source frame height of the keypoints")
    parser.add_argument(
        "--device", default="auto", help="torch device for sampling (auto: cuda if available)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ckpt = Path(args.ckpt)
    if not ckpt.is_file():
        raise SystemExit(f"sample-skeleton: checkpoint not found: {ckpt}")
    audio = read_audio(args.audio, SAMPLE_RATE)
    ref_keypoints, ref_scores = load_reference(args.ref) if args.ref else (None, None)

    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    model = SkeletonDiffusion.load_from_checkpoint(str(ckpt), map_location="cpu")
    model.to(_device(args.device)).eval()
    keypoints, scores = model.generate(
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
