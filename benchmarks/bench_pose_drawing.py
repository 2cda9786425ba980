"""Pose drawing speed (frames/s, one CPU thread of Python + OpenCV) at 576x1024 and demo sizes; one JSON line.

    python benchmarks/bench_pose_drawing.py [--seconds 1.0]

Each case draws a moving frontal speaker skeleton (512 x 512 source frame, all 134 points confident)
for about ``--seconds`` and reports frames/s. ``canvas`` is the canvas short side (2160 = MimicMotion's
pose images; "snap" = rounded to a whole multiple of the output; "direct" = drawn at the output size,
the fast path for training batches).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import cv2
import numpy as np

from csg_lightning.skeleton.drawing import draw_pose
from csg_lightning.skeleton.layout import SkeletonLayout as L

CASES = [  # (out height, out width, canvas short side or None, snap_canvas)
    (576, 1024, 2160, False), (576, 1024, 2160, True), (576, 1024, 1024, False), (576, 1024, None, False),
    (256, 256, 2160, False), (256, 256, None, False), (128, 128, 2160, False), (128, 128, None, False),
    (64, 64, 2160, False), (64, 64, None, False),
]  # fmt: skip


def speaker_sequence(frames: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """keypoints [T, 134, 2] pixels of a 512 x 512 frame (an upper-body speaker), scores [T, 134]."""
    rng = np.random.default_rng(seed)
    kp = np.zeros((134, 2))
    body = [(256, 150), (244, 138), (268, 138), (230, 145), (282, 145), (190, 240), (322, 240), (165, 340),
            (347, 340), (200, 420), (312, 420), (210, 470), (302, 470), (210, 560), (302, 560), (210, 640),
            (302, 640)]  # fmt: skip
    kp[:17] = body
    kp[L.NECK] = (kp[5] + kp[6]) / 2
    kp[L.FEET] = kp[[15, 15, 15, 16, 16, 16]]
    angle = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    kp[L.FACE] = np.stack([256 + 28 * np.cos(angle), 150 + 34 * np.sin(angle)], 1)
    kp[L.LEFT_HAND] = kp[9] + rng.uniform(-18, 18, (21, 2))
    kp[L.RIGHT_HAND] = kp[10] + rng.uniform(-18, 18, (21, 2))
    t = np.arange(frames)[:, None, None]
    keypoints = kp[None] + 12 * np.sin(t / 5.0 + rng.uniform(0, 6, (1, 134, 1)))
    return keypoints.astype(np.float32), np.ones((frames, 134), np.float32)


def frames_per_second(keypoints, scores, out_size, canvas, snap: bool, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while True:
        t = n % len(keypoints)
        draw_pose(keypoints[t], scores[t], 512, 512, out_size, canvas_size=canvas, snap_canvas=snap)
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= 5:
            return n / elapsed


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per case")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    keypoints, scores = speaker_sequence()
    result = {"benchmark": "pose_drawing", "unit": "frames/s", "threads": 1, "cpu": platform.processor() or
              platform.machine(), "opencv": cv2.__version__}  # fmt: skip
    for h, w, canvas, snap in CASES:
        fps = frames_per_second(keypoints, scores, (h, w), canvas, snap, args.seconds)
        result[f"{h}x{w}_canvas{canvas or 'direct'}{'_snap' if snap else ''}"] = round(fps, 1)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
