"""Tiny clip folders for the shard and datamodule tests (random but plausible skeletons)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from csg_lightning.skeleton.layout import NUM_KEYPOINTS


def make_clip(
    root: Path,
    clip_id: str,
    speaker_id: str,
    num_frames: int = 300,
    seed: int = 0,
    width: int = 512,
    height: int = 512,
    video: bool = False,
    extra_audio: int = 0,
) -> Path:
    """Write ``root/clip_id`` in the clip folder format: a skeleton swaying around a random pose."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / clip_id
    folder.mkdir(parents=True, exist_ok=True)
    base = rng.uniform(0.25, 0.75, size=(NUM_KEYPOINTS, 2)) * [width, height]
    t = np.arange(num_frames)[:, None, None] / 25.0
    phase = rng.uniform(0, 2 * np.pi, size=(1, NUM_KEYPOINTS, 2))
    keypoints = (
        base + 8.0 * np.sin(2 * np.pi * 0.7 * t + phase) + rng.normal(0, 0.5, (num_frames, NUM_KEYPOINTS, 2))
    )
    scores = rng.uniform(0.75, 1.0, size=(num_frames, NUM_KEYPOINTS))
    scores[rng.random(scores.shape) < 0.05] = 0.3  # a few unconfident points
    np.savez(folder / "pose.npz", keypoints=keypoints.astype(np.float32), scores=scores.astype(np.float32))
    n = num_frames * 640 + extra_audio
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / 16000) + rng.normal(0, 0.05, n)).clip(-1, 1)
    sf.write(folder / "audio.wav", audio, 16000, subtype="PCM_16")
    meta = {
        "clip_id": clip_id,
        "speaker_id": speaker_id,
        "fps": 25,
        "width": width,
        "height": height,
        "num_frames": num_frames,
        "source": "tests",
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    if video:
        from csg_lightning.io.mp4 import write_mp4

        frames = (rng.integers(0, 255, (num_frames, height, width, 3))).astype(np.uint8)
        write_mp4(folder / "video.mp4", frames, fps=25)
    return folder


def make_corpus(
    root: Path, num_speakers: int = 4, clips_per_speaker: int = 4, num_frames: int = 300, seed: int = 0
) -> list[Path]:
    """``num_speakers`` x ``clips_per_speaker`` clips named spkSS_clipCCC."""
    folders = []
    for s in range(num_speakers):
        for c in range(clips_per_speaker):
            folders.append(
                make_clip(
                    root,
                    f"spk{s:02d}_clip{c:03d}",
                    f"spk{s:02d}",
                    num_frames=num_frames,
                    seed=seed * 1000 + s * 100 + c,
                )
            )
    return folders
