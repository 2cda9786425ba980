"""Rendering of a synthetic speaker as a simple person figure (OpenCV drawing, RGB frames).

The figure is drawn from the clean 134-point pose: trousers, a torso in the shirt colour, arms
(sleeves, skin), hands with fingers, a head with hair, eyes that blink, brows, nose and a mouth
that opens, over a per-speaker background that is drawn once. Everything scales with the frame
size, so the same pose renders at 512 x 512 or smaller.
"""

from __future__ import annotations

import cv2
import numpy as np

from csg_lightning.data.corpus.speaker import FRAME_SIZE, Speaker, to_frame_size
from csg_lightning.skeleton.layout import SkeletonLayout

L = SkeletonLayout
_SHIFT = 2  # fixed-point bits for sub-pixel drawing
_ONE = 1 << _SHIFT
_FINGER_CHAINS = [
    [0, 1, 2, 3, 4],
    [0, 5, 6, 7, 8],
    [0, 9, 10, 11, 12],
    [0, 13, 14, 15, 16],
    [0, 17, 18, 19, 20],
]


def _darker(colour, factor: float = 0.75) -> tuple[int, int, int]:
    return tuple(int(c * factor) for c in colour)


def background(speaker: Speaker, size: int) -> np.ndarray:
    """The speaker's backdrop [size, size, 3] uint8: a vertical gradient, a frame and a shelf."""
    top, bottom = np.array(speaker.background[0], float), np.array(speaker.background[1], float)
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    img = np.broadcast_to(top + ramp * (bottom - top), (size, size, 3)).astype(np.uint8).copy()
    rng = np.random.default_rng(speaker.index + 7919)
    s = size / FRAME_SIZE
    x0 = int(rng.uniform(0.05, 0.55) * size)
    y0 = int(rng.uniform(0.06, 0.2) * size)
    w, h = int(rng.uniform(0.18, 0.35) * size), int(rng.uniform(0.12, 0.25) * size)
    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), speaker.decor, -1)
    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), _darker(speaker.decor, 0.5), max(1, int(4 * s)))
    shelf_y = int(rng.uniform(0.45, 0.62) * size)
    cv2.rectangle(
        img, (0, shelf_y), (size, shelf_y + max(2, int(8 * s))), _darker(speaker.background[1], 0.6), -1
    )
    return img


class FigureRenderer:
    """Draws one speaker at ``size`` x ``size`` pixels from clean [134, 2] poses (512-frame pixels)."""

    def __init__(self, speaker: Speaker, size: int = FRAME_SIZE):
        self.speaker = speaker
        self.size = size
        self.scale = size / FRAME_SIZE
        self.backdrop = background(speaker, size)
        self.sleeve = _darker(speaker.shirt, 0.85)

    def _pts(self, points: np.ndarray) -> np.ndarray:
        return np.round(to_frame_size(points, self.size) * _ONE).astype(np.int32)

    def _width(self, pixels: float) -> int:
        return max(1, int(round(pixels * self.scale)))

    def _line(self, img, a, b, colour, width: float) -> None:
        cv2.line(img, tuple(a), tuple(b), colour, self._width(width), cv2.LINE_8, _SHIFT)

    def _disc(self, img, centre, radius: float, colour) -> None:
        cv2.circle(
            img, tuple(centre), max(1, int(radius * self.scale * _ONE)), colour, -1, cv2.LINE_8, _SHIFT
        )

    def render(self, pose: np.ndarray) -> np.ndarray:
        """One RGB frame [size, size, 3] uint8 of the clean pose [134, 2]."""
        spk = self.speaker
        img = self.backdrop.copy()
        p = self._pts(pose)
        unit = spk.shoulder_half_width
        # Legs and trousers.
        for hip, knee, ankle in ((L.LEFT_HIP, 13, 15), (L.RIGHT_HIP, 14, 16)):
            self._line(img, p[hip], p[knee], spk.trousers, 0.75 * unit)
            self._line(img, p[knee], p[ankle], spk.trousers, 0.6 * unit)
        # Torso: shoulders to hips, slightly wider than the joints.
        ls, rs, lh, rh = pose[L.LEFT_SHOULDER], pose[L.RIGHT_SHOULDER], pose[L.LEFT_HIP], pose[L.RIGHT_HIP]
        out = np.array([0.12 * unit, 0.0])
        torso = np.stack(
            [ls + out + [0, -4], rs - out + [0, -4], rh - out * 1.6 + [0, 25], lh + out * 1.6 + [0, 25]]
        )
        cv2.fillPoly(img, [self._pts(torso)], spk.shirt, cv2.LINE_8, _SHIFT)
        for shoulder in (L.LEFT_SHOULDER, L.RIGHT_SHOULDER):
            self._disc(img, p[shoulder], 0.3 * unit, spk.shirt)
        # Neck and head.
        face = pose[L.FACE]
        chin = face[8]
        self._line(img, p[L.NECK], self._pts(0.5 * (chin + pose[L.NECK])), spk.skin, 0.5 * unit)
        self._draw_head(img, pose, face)
        # Arms and hands on top of the body.
        for s, e, w, hand in ((L.LEFT_SHOULDER, L.LEFT_ELBOW, L.LEFT_WRIST, L.LEFT_HAND),
                              (L.RIGHT_SHOULDER, L.RIGHT_ELBOW, L.RIGHT_WRIST, L.RIGHT_HAND)):  # fmt: skip
            self._line(img, p[s], p[e], self.sleeve, 0.42 * unit)
            self._disc(img, p[e], 0.2 * unit, self.sleeve if spk.long_sleeves else spk.skin)
            self._line(img, p[e], p[w], self.sleeve if spk.long_sleeves else spk.skin, 0.32 * unit)
            self._draw_hand(img, pose[hand])
        return img

    def _draw_head(self, img, pose: np.ndarray, face: np.ndarray) -> None:
        spk = self.speaker
        jaw = face[:17]
        brows = face[17:27]
        centre = 0.5 * (jaw[0] + jaw[16])
        across = jaw[16] - jaw[0]
        up = np.array([across[1], -across[0]]) / max(np.linalg.norm(across), 1e-6)
        half = 0.5 * np.linalg.norm(across)
        # Hair behind the head, then the face outline closed over the forehead.
        self._disc(img, self._pts(centre + up * 0.25 * half), 1.12 * half, spk.hair)
        angles = np.linspace(0.0, np.pi, 9)[1:-1]
        right = across / max(np.linalg.norm(across), 1e-6)
        forehead = centre[None] + half * (
            np.cos(angles)[:, None] * right + 0.95 * np.sin(angles)[:, None] * up
        )
        outline = np.concatenate([jaw, forehead])
        cv2.fillPoly(img, [self._pts(outline)], spk.skin, cv2.LINE_8, _SHIFT)
        hairline = centre[None] + half * (
            np.cos(angles)[:, None] * right * 1.02 + 1.05 * np.sin(angles)[:, None] * up
        )
        fringe = np.concatenate([hairline, (centre + up * 0.62 * half)[None]])
        cv2.fillPoly(img, [self._pts(fringe)], spk.hair, cv2.LINE_8, _SHIFT)
        # Ears, brows, eyes, nose, mouth.
        for ear in (pose[3], pose[4]):
            self._disc(img, self._pts(ear), 0.16 * half, _darker(spk.skin, 0.9))
        dark = _darker(spk.hair, 0.8)
        for brow in (brows[:5], brows[5:]):
            cv2.polylines(img, [self._pts(brow)], False, dark, self._width(3), cv2.LINE_8, _SHIFT)
        for eye in (face[36:42], face[42:48]):
            cv2.fillPoly(img, [self._pts(eye)], (250, 250, 250), cv2.LINE_8, _SHIFT)
            opening = np.abs(eye[1:3, 1].mean() - eye[4:6, 1].mean())
            if opening > 0.04 * half:
                self._disc(img, self._pts(eye.mean(0)), 0.11 * half, (40, 30, 25))
            cv2.polylines(
                img, [self._pts(eye[[0, 1, 2, 3]])], False, (40, 30, 25), self._width(2), cv2.LINE_8, _SHIFT
            )
        nose = self._pts(face[27:36])
        cv2.polylines(img, [nose[:4]], False, _darker(spk.skin, 0.7), self._width(2), cv2.LINE_8, _SHIFT)
        cv2.polylines(img, [nose[4:]], False, _darker(spk.skin, 0.6), self._width(2), cv2.LINE_8, _SHIFT)
        cv2.fillPoly(img, [self._pts(face[48:60])], (170, 70, 70), cv2.LINE_8, _SHIFT)
        cv2.fillPoly(img, [self._pts(face[60:68])], (60, 15, 20), cv2.LINE_8, _SHIFT)

    def _draw_hand(self, img, hand: np.ndarray) -> None:
        skin = self.speaker.skin
        palm = hand[[0, 1, 5, 9, 13, 17]]
        cv2.fillPoly(img, [self._pts(palm)], skin, cv2.LINE_8, _SHIFT)
        width = 0.1 * self.speaker.hand_length
        edge = _darker(skin, 0.8)
        for chain in _FINGER_CHAINS:
            pts = self._pts(hand[chain])
            cv2.polylines(img, [pts[1:]], False, skin, self._width(width), cv2.LINE_8, _SHIFT)
        cv2.polylines(
            img, [self._pts(hand[[5, 9, 13, 17]])], False, edge, self._width(1.5), cv2.LINE_8, _SHIFT
        )
