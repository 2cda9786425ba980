"""The 68-point face (and the five COCO head points) of a synthetic speaker under head motion.

A face template lives in head units (half face width = 1; x to the image right, y down, z toward
the camera, origin at the nose tip). Mouth opening and blinks deform the template; yaw, pitch
(nod) and roll rotate it about the head centre, and an orthographic projection gives pixels.
"""

from __future__ import annotations

import numpy as np


def _face_template() -> tuple[np.ndarray, np.ndarray]:
    """[68, 3] template points (x, y, z) in the 68-point order and [68] jaw weights."""
    pts = np.zeros((68, 3))
    t = np.linspace(-0.12, np.pi + 0.12, 17)
    pts[0:17, 0] = -0.98 * np.cos(t)
    pts[0:17, 1] = -0.38 + 1.38 * np.sin(t)
    pts[0:17, 2] = 0.25 - 0.75 * np.abs(np.cos(t))
    for start, side in ((17, -1.0), (22, 1.0)):  # brows, image-left then image-right
        xs = np.linspace(0.82, 0.16, 5) if side < 0 else np.linspace(0.16, 0.82, 5)
        pts[start : start + 5, 0] = side * xs
        pts[start : start + 5, 1] = -0.72 - 0.1 * np.sin(np.linspace(0.2, np.pi - 0.2, 5))
        pts[start : start + 5, 2] = 0.2
    pts[27:31, 1] = np.linspace(-0.5, -0.02, 4)  # nose bridge down to the tip (30)
    pts[27:31, 2] = np.linspace(0.3, 0.6, 4)
    pts[31:36, 0] = np.linspace(-0.24, 0.24, 5)
    pts[31:36, 1] = 0.14 + 0.05 * np.abs(np.linspace(-1, 1, 5))
    pts[31:36, 2] = 0.42
    eye = np.array([[-1.0, 0.0], [-0.45, -0.45], [0.45, -0.45], [1.0, 0.0], [0.45, 0.4], [-0.45, 0.4]])
    for start, cx in ((36, -0.42), (42, 0.42)):
        pts[start : start + 6, 0] = cx + 0.19 * eye[:, 0]
        pts[start : start + 6, 1] = -0.4 + 0.16 * eye[:, 1]
        pts[start : start + 6, 2] = 0.12
    # Outer lips 48..59: left corner, upper lip to the right corner (54), lower lip back.
    upper = np.linspace(-1, 1, 7)
    pts[48:55, 0] = 0.36 * upper
    pts[48:55, 1] = 0.5 - 0.1 * np.sqrt(1 - upper**2) + 0.03 * (np.abs(upper) < 0.2)
    lower = np.linspace(1, -1, 7)[1:-1]
    pts[55:60, 0] = 0.3 * lower
    pts[55:60, 1] = 0.52 + 0.12 * np.sqrt(1 - lower**2)
    inner_upper = np.linspace(-1, 1, 5)
    pts[60:65, 0] = 0.25 * inner_upper
    pts[60:65, 1] = 0.5 - 0.02 * np.sqrt(1 - inner_upper**2)
    pts[65:68, 0] = 0.2 * np.linspace(1, -1, 5)[1:-1]
    pts[65:68, 1] = 0.51
    pts[48:68, 2] = 0.35
    # How much each point follows the jaw when the mouth opens (lower lip and chin fully).
    jaw = np.zeros(68)
    jaw[4:13] = np.sin(np.linspace(0, np.pi, 11)[1:-1]) ** 0.7
    jaw[55:60] = 1.0
    jaw[[48, 54, 60, 64]] = 0.5
    jaw[65:68] = 1.0
    return pts, jaw


TEMPLATE, JAW_WEIGHT = _face_template()
UPPER_LID = np.array([37, 38, 43, 44])
LOWER_LID = np.array([41, 40, 47, 46])  # paired with UPPER_LID
UPPER_INNER = np.array([61, 62, 63])
LOWER_INNER = np.array([65, 66, 67])
# COCO head points in head units: nose, left eye (image right), right eye, left ear, right ear.
_HEAD5 = np.array(
    [[0.0, 0.0, 0.6], [0.42, -0.4, 0.12], [-0.42, -0.4, 0.12], [1.02, -0.3, -0.6], [-1.02, -0.3, -0.6]]
)


def _rotate(points: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Rotate [T, N, 3] head-unit points about the head centre (z = -1) -> [T, N, 3]."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2] + 1.0
    cy, sy = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x, z = x * cy + z * sy, -x * sy + z * cy
    cp, sp = np.cos(pitch)[:, None], np.sin(pitch)[:, None]
    y, z = y * cp + z * sp, -y * sp + z * cp
    cr, sr = np.cos(roll)[:, None], np.sin(roll)[:, None]
    x, y = x * cr - y * sr, x * sr + y * cr
    return np.stack([x, y, z - 1.0], axis=-1)


def face_points(
    centre: np.ndarray,
    size: float,
    yaw: np.ndarray,
    pitch: np.ndarray,
    roll: np.ndarray,
    mouth_open: np.ndarray,
    eye_open: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project the face for every frame.

    centre: [T, 2] pixel position of the head centre's projection (the nose tip at rest);
    size: pixels per head unit; yaw/pitch/roll: [T] radians (pitch > 0 nods down);
    mouth_open: [T] jaw drop in head units (0 closed, ~0.35 wide open); eye_open: [T] in [0, 1].
    Returns face [T, 68, 2], head5 [T, 5, 2] (COCO nose, eyes, ears) and ear_depth [T, 2] (z of
    the ears after rotation, negative when turned away from the camera).
    """
    n = len(centre)
    pts = np.broadcast_to(TEMPLATE, (n, 68, 3)).copy()
    pts[:, :, 1] += JAW_WEIGHT[None] * mouth_open[:, None]
    pts[:, UPPER_INNER, 1] -= 0.15 * mouth_open[:, None]
    mid = 0.5 * (pts[:, UPPER_LID, 1] + pts[:, LOWER_LID, 1])
    closed = 1.0 - eye_open[:, None]
    pts[:, UPPER_LID, 1] += closed * (mid - pts[:, UPPER_LID, 1]) * 1.2
    pts[:, LOWER_LID, 1] += closed * (mid - pts[:, LOWER_LID, 1]) * 0.8
    face = _rotate(pts, yaw, pitch, roll)
    head = _rotate(np.broadcast_to(_HEAD5, (n, 5, 3)), yaw, pitch, roll)
    face_px = centre[:, None, :] + size * face[..., :2]
    head_px = centre[:, None, :] + size * head[..., :2]
    return face_px, head_px, head[:, 3:5, 2]
