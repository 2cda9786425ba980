"""Writing the demo corpus as clip folders ``OUT/<clip_id>/{pose.npz,audio.wav,video.mp4,meta.json}``.

Every clip depends only on (seed, speaker index, clip index), so the corpus is the same whatever
the number of workers or the order of work. Each clip is written into a hidden temporary folder
and renamed into place when complete: an interrupted run leaves no half clip, and a re-run skips
the finished ones.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from csg_lightning.data.corpus.confidence import observe
from csg_lightning.data.corpus.motion import Pose, animate
from csg_lightning.data.corpus.speaker import FRAME_SIZE, Speaker, make_speaker, speaker_id_of, to_frame_size
from csg_lightning.data.corpus.speech import Speech, synthesize_speech
from csg_lightning.io.atomic import atomic_folder, remove_stale_temps
from csg_lightning.io.npz import save_npz
from csg_lightning.timing import FPS, SAMPLE_RATE

GENERATOR = "csg-lightning synthetic demo corpus v1"


@dataclass
class Clip:
    """One generated clip in memory: keypoints [T, 134, 2] and scores [T, 134] (float32, pixels of
    a ``size`` x ``size`` frame), the speech (audio [T*640]) and the clean pose behind them."""

    clip_id: str
    speaker: Speaker
    speech: Speech
    pose: Pose
    keypoints: np.ndarray
    scores: np.ndarray
    size: int

    @property
    def num_frames(self) -> int:
        return len(self.keypoints)


KEYPOINT_STEP = 1.0 / 256.0  # pixels: far below any detector's accuracy
SCORE_STEP = 1.0 / 4096.0


def quantize(values: np.ndarray, step: float) -> np.ndarray:
    """float64 values -> float32 multiples of ``step`` (a power of two, so exact in float32).

    The same seed must write the same ``pose.npz`` bytes on every machine. numpy picks SIMD code per CPU,
    so float32 math differs by ~1e-7 relative between machines (the cause of the golden-test failure:
    the speech tracks were float32; they are float64 now) and float64 sin / cos / exp in the last bit.
    Rounding in float64 to a coarse grid leaves a margin: a last-bit difference flips a value only
    when it lies within ~1e-13 of a grid midpoint.
    """
    values = np.asarray(values)
    if values.dtype != np.float64:
        raise TypeError(f"quantize expects the generator's float64 values, got {values.dtype}")
    return (np.round(values / step) * step).astype(np.float32)


def clip_id_of(speaker_index: int, clip_index: int) -> str:
    return f"{speaker_id_of(speaker_index)}_clip{clip_index:03d}"


def make_clip(
    seed: int, speaker_index: int, clip_index: int, clip_seconds: float = 12.0, size: int = FRAME_SIZE
) -> Clip:
    """Generate one clip in memory (deterministic in its arguments)."""
    num_frames = int(round(clip_seconds * FPS))
    if num_frames < 1:
        raise ValueError(f"clip_seconds must give at least one frame at {FPS} fps, got {clip_seconds}")
    speaker = make_speaker(seed, speaker_index)
    rng = np.random.default_rng([int(seed), 1, int(speaker_index), int(clip_index)])
    speech = synthesize_speech(speaker, num_frames, rng)
    pose = animate(speaker, speech, rng)
    keypoints, scores = observe(pose, speaker, rng, FRAME_SIZE)
    keypoints = np.clip(to_frame_size(keypoints, size), 0.0, size - 1.0)
    keypoints, scores = quantize(keypoints, KEYPOINT_STEP), quantize(scores, SCORE_STEP)
    return Clip(clip_id_of(speaker_index, clip_index), speaker, speech, pose, keypoints, scores, size)


def _meta(clip: Clip, seed: int, speaker_index: int, clip_index: int, video: bool) -> dict:
    speech = clip.speech
    return {
        "clip_id": clip.clip_id,
        "speaker_id": clip.speaker.speaker_id,
        "fps": FPS,
        "width": clip.size,
        "height": clip.size,
        "num_frames": clip.num_frames,
        "sample_rate": SAMPLE_RATE,
        "num_samples": len(speech.audio),
        "has_video": video,
        "generator": GENERATOR,
        "seed": seed,
        "speaker_index": speaker_index,
        "clip_index": clip_index,
        "events": {
            "syllable_onsets_s": [round(float(t), 4) for t in speech.onsets],
            "stressed": [bool(s) for s in speech.stressed],
            "phrase_starts_s": [round(float(t), 4) for t in speech.phrase_starts],
            "phrase_ends_s": [round(float(t), 4) for t in speech.phrase_ends],
        },
        "speaker": clip.speaker.to_dict(),
    }


def _is_complete(folder: Path, video: bool) -> bool:
    needed = ["meta.json", "pose.npz", "audio.wav"] + (["video.mp4"] if video else [])
    return all((folder / name).is_file() for name in needed)


def write_clip(
    out_dir: Path, seed: int, speaker_index: int, clip_index: int, clip_seconds: float, video: bool, size: int
) -> Path:
    """Generate and write one clip folder atomically; returns its path (skips a complete one)."""
    import cv2

    from csg_lightning.data.corpus.figure import FigureRenderer
    from csg_lightning.io.audio import to_int16, write_wav
    from csg_lightning.io.mp4 import write_mp4

    cv2.setNumThreads(1)
    final = out_dir / clip_id_of(speaker_index, clip_index)
    if _is_complete(final, video):
        return final
    clip = make_clip(seed, speaker_index, clip_index, clip_seconds, size)
    with atomic_folder(final) as tmp:  # replaces an older, incomplete version (e.g. written without video)
        save_npz(tmp / "pose.npz", keypoints=clip.keypoints, scores=clip.scores)
        write_wav(tmp / "audio.wav", to_int16(clip.speech.audio), SAMPLE_RATE)
        if video:
            renderer = FigureRenderer(clip.speaker, size)
            frames = (renderer.render(pose) for pose in clip.pose.keypoints)
            write_mp4(tmp / "video.mp4", frames, fps=FPS, audio=clip.speech.audio, sample_rate=SAMPLE_RATE)
        meta = _meta(clip, seed, speaker_index, clip_index, video)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return final


def _work(job: tuple) -> Path:
    return write_clip(*job)


def generate_corpus(
    out_dir: str | os.PathLike,
    num_speakers: int = 8,
    clips_per_speaker: int = 12,
    clip_seconds: float = 12.0,
    seed: int = 0,
    video: bool = True,
    video_size: int | None = None,
    workers: int = 1,
    progress: bool = True,
    scale: float = 1.0,
) -> list[Path]:
    """Write the synthetic demo corpus into ``out_dir``; returns the clip folders, sorted.

    ``scale`` multiplies both the number of speakers and the clips per speaker. ``video_size``
    (even, default 512) is the square frame size of both the keypoints and the mp4 renders.
    Clips already complete in ``out_dir`` are kept; leftovers of interrupted runs are removed.
    Same arguments give byte-identical ``pose.npz`` and ``audio.wav`` files.
    """
    size = FRAME_SIZE if video_size is None else int(video_size)
    if size < 16 or size % 2:
        raise ValueError(f"generate_corpus: video_size must be an even number >= 16, got {video_size}")
    n_speakers = max(1, int(round(num_speakers * scale)))
    n_clips = max(1, int(round(clips_per_speaker * scale)))
    if clip_seconds * FPS < 1:
        raise ValueError(f"generate_corpus: clip_seconds must be >= {1 / FPS}, got {clip_seconds}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    jobs = [(out, int(seed), s, c, float(clip_seconds), bool(video), size)
            for s in range(n_speakers) for c in range(n_clips)]  # fmt: skip
    todo = [job for job in jobs if not _is_complete(out / clip_id_of(job[2], job[3]), video)]

    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="demo corpus", unit="clip",
               disable=not progress)  # fmt: skip
    try:
        if workers > 1 and len(todo) > 1:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(min(workers, len(todo))) as pool:
                for _ in pool.imap_unordered(_work, todo):
                    bar.update()
        else:
            for job in todo:
                _work(job)
                bar.update()
    finally:
        bar.close()
    return sorted(out / clip_id_of(s, c) for s in range(n_speakers) for c in range(n_clips))
