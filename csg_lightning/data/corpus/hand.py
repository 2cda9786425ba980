"""The 21 points of a synthetic hand (wrist, thumb, index, middle, ring, pinky) from a few controls.

The hand is drawn in its own plane: ``u`` points from the wrist along the hand, ``v`` across it
toward the thumb. Finger flexion rotates each finger out of the image plane, so curled fingers
fold back toward the palm in the projection; ``width`` < 1 narrows the hand as the palm turns
sideways to the camera.
"""

from __future__ import annotations

import numpy as np

# Knuckle (MCP) positions (u, v) and the three segment lengths of index, middle, ring, pinky.
_MCP = np.array([[0.43, 0.16], [0.45, 0.05], [0.43, -0.06], [0.4, -0.16]])
_SEGMENTS = np.array([[0.22, 0.13, 0.1], [0.25, 0.15, 0.11], [0.23, 0.14, 0.1], [0.18, 0.1, 0.09]])
_SPLAY = np.array([0.14, 0.03, -0.07, -0.17])  # finger angles (rad) at full spread
_FLEX = np.array([1.4, 1.7, 1.1])  # joint angles (rad) of a fully curled finger
# Thumb: CMC, MCP, IP, tip when extended and when tucked toward the palm.
_THUMB_OPEN = np.array([[0.1, 0.14], [0.22, 0.3], [0.33, 0.42], [0.43, 0.5]])
_THUMB_CURLED = np.array([[0.1, 0.12], [0.2, 0.2], [0.3, 0.12], [0.36, 0.04]])

# Hand shapes as per-finger curl (thumb, index, middle, ring, pinky) and spread.
HAND_SHAPES = {
    "open": (np.array([0.05, 0.05, 0.05, 0.08, 0.1]), 1.0),
    "relaxed": (np.array([0.3, 0.35, 0.45, 0.5, 0.55]), 0.4),
    "point": (np.array([0.7, 0.0, 0.9, 0.95, 0.95]), 0.2),
    "cupped": (np.array([0.2, 0.25, 0.3, 0.32, 0.35]), 0.6),
    "fist": (np.array([0.85, 0.95, 1.0, 1.0, 1.0]), 0.1),
    "pinch": (np.array([0.55, 0.6, 0.2, 0.2, 0.25]), 0.7),
}


def hand_points(
    wrist: np.ndarray,
    angle: np.ndarray,
    curl: np.ndarray,
    spread: np.ndarray,
    width: np.ndarray,
    length: float,
    side: float,
) -> np.ndarray:
    """Pixel positions of the 21 hand points for every frame.

    wrist: [T, 2] pixels; angle: [T] direction of the hand (radians, image coordinates, 0 = +x);
    curl: [T, 5] per-finger flexion in [0, 1] (thumb first); spread: [T] in [0, 1]; width: [T]
    in (0, 1] (palm facing the camera = 1); length: wrist to middle fingertip in pixels;
    side: +1 puts the thumb toward (sin angle, -cos angle) of the wrist, -1 the other way.
    Returns [T, 21, 2].
    """
    n = len(wrist)
    local = np.zeros((n, 21, 2))  # (u, v) in hand lengths
    thumb = _THUMB_OPEN[None] + curl[:, 0, None, None] * (_THUMB_CURLED - _THUMB_OPEN)[None]
    local[:, 1:5] = thumb
    for f in range(4):
        c = curl[:, f + 1, None]  # [T, 1]
        flex = np.cumsum(c * _FLEX[None], axis=1)  # [T, 3] cumulative joint angles
        splay = spread * _SPLAY[f]
        reach = np.cumsum(_SEGMENTS[f][None] * np.cos(flex), axis=1)  # in-plane length along the finger
        base = 1 + 4 * (f + 1)
        local[:, base, 0] = _MCP[f, 0]
        local[:, base, 1] = _MCP[f, 1]
        local[:, base + 1 : base + 4, 0] = _MCP[f, 0] + reach * np.cos(splay)[:, None]
        local[:, base + 1 : base + 4, 1] = _MCP[f, 1] + reach * np.sin(splay)[:, None]
    local[..., 1] *= width[:, None]
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=-1)  # [T, 2]
    across = side * np.stack([np.sin(angle), -np.cos(angle)], axis=-1)
    return wrist[:, None, :] + length * (
        local[..., 0:1] * direction[:, None, :] + local[..., 1:2] * across[:, None, :]
    )
