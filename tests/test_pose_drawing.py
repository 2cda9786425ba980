"""The confidence-aware pose renderer: colours, positions, confidence handling, sizes, fast paths."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np
import pytest
import torch

from csg_lightning.render import (
    canvas_shape,
    content_frame,
    draw_pose,
    draw_pose_sequence,
    frame_for,
    frame_holds,
)
from csg_lightning.skeleton.layout import SkeletonLayout as L
from csg_lightning.skeleton.openpose import OPENPOSE_COLORS

SIZE = 512


def _blank() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((134, 2), np.float32), np.zeros(134, np.float32)


def _frontal(rng_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A plausible frontal skeleton in a 512 x 512 frame, every point confident."""
    rng = np.random.default_rng(rng_seed)
    kp, sc = _blank()
    body = {0: (256, 128), 1: (240, 112), 2: (272, 112), 3: (225, 118), 4: (287, 118), 5: (195, 195),
            6: (317, 195), 7: (170, 280), 8: (342, 280), 9: (184, 358), 10: (328, 358), 11: (215, 368),
            12: (297, 368), 13: (215, 460), 14: (297, 460), 15: (215, 505), 16: (297, 505)}  # fmt: skip
    for i, xy in body.items():
        kp[i] = xy
    kp[L.NECK] = (kp[5] + kp[6]) / 2
    kp[L.FEET] = kp[[15, 15, 15, 16, 16, 16]] + rng.uniform(-6, 6, (6, 2))
    angle = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    kp[L.FACE] = np.stack([256 + 25 * np.cos(angle), 128 + 30 * np.sin(angle)], 1)
    kp[L.LEFT_HAND] = kp[9] + rng.uniform(-12, 12, (21, 2))
    kp[L.RIGHT_HAND] = kp[10] + rng.uniform(-12, 12, (21, 2))
    return kp, np.ones(134, np.float32)


def _limb_only(a: int, b: int, pa, pb, conf_a: float = 1.0, conf_b: float = 1.0):
    kp, sc = _blank()
    kp[a], kp[b] = pa, pb
    sc[a], sc[b] = conf_a, conf_b
    return kp, sc


def _expected_limb(color, conf_a=1.0, conf_b=1.0, swap_rb=True) -> np.ndarray:
    rgb = np.floor(np.floor(np.array(color, float) * conf_a * conf_b) * 0.6)
    return rgb[::-1] if swap_rb else rgb


# Left shoulder (storage 5) -> left elbow (storage 7) is OpenPose limb 5 -> 6, the 5th limb: colour index 4.
SHOULDER_ELBOW_COLOR = OPENPOSE_COLORS[4]


@pytest.mark.parametrize("swap_rb", [True, False])
def test_limb_colour_along_segment(swap_rb):
    kp, sc = _limb_only(5, 7, (100, 256), (400, 256))
    image = draw_pose(kp, sc, SIZE, SIZE, canvas_size=None, swap_rb=swap_rb)
    want = _expected_limb(SHOULDER_ELBOW_COLOR, swap_rb=swap_rb)
    for x in (150, 200, 250, 300, 350):  # along the limb, away from the joint discs
        np.testing.assert_array_equal(image[256, x], want)
    assert not image[:240].any() and not image[272:].any()  # nothing far off the segment


def test_low_confidence_limb_and_joints_skipped():
    kp, sc = _limb_only(5, 7, (100, 256), (400, 256), conf_a=0.9, conf_b=0.29)
    image = draw_pose(kp, sc, SIZE, SIZE, canvas_size=None)
    assert not image[250:263, 130:370].any()  # the limb is skipped (one end < 0.3)
    assert image[256, 100].any()  # the confident joint is still drawn
    assert not image[252:261, 396:405].any()  # the unconfident one (<= 0.3) is not


def test_confidence_darkens_and_is_exact():
    bright = draw_pose(*_limb_only(5, 7, (100, 256), (400, 256)), SIZE, SIZE, canvas_size=None)
    kp, sc = _limb_only(5, 7, (100, 256), (400, 256), conf_a=0.8, conf_b=0.5)
    dim = draw_pose(kp, sc, SIZE, SIZE, canvas_size=None)
    np.testing.assert_array_equal(dim[256, 250], _expected_limb(SHOULDER_ELBOW_COLOR, 0.8, 0.5))
    assert dim[256, 250].sum() < bright[256, 250].sum()
    # joint discs: colour * conf, not dimmed by 0.6
    joint = np.floor(np.array(OPENPOSE_COLORS[5], float) * 0.8)[::-1]  # OpenPose 5 = left shoulder
    np.testing.assert_array_equal(dim[256, 100], joint)


def test_hands_and_face_drawn_with_their_conventions():
    kp, sc = _blank()
    base = L.LEFT_HAND[0]
    kp[base] = (100, 300)
    kp[base + 1] = (200, 300)  # hand edge 0: wrist -> thumb 1, hue 0 (red)
    sc[base], sc[base + 1] = 1.0, 0.5
    kp[L.FACE[10]] = (400, 100)
    sc[L.FACE[10]] = 0.6
    image = draw_pose(kp, sc, SIZE, SIZE, canvas_size=None, swap_rb=False)
    hue0 = np.rint(np.array(colorsys.hsv_to_rgb(0.0, 1.0, 1.0)) * np.floor(0.5 * 255))
    np.testing.assert_array_equal(image[300, 150], hue0)  # the edge, colour * conf_a * conf_b
    np.testing.assert_array_equal(image[300, 100], (0, 0, 255))  # hand joint (0, 0, conf * 255)
    np.testing.assert_array_equal(image[300, 200], (0, 0, 127))
    np.testing.assert_array_equal(image[100, 400], (153, 153, 153))  # face: grey conf * 255
    assert not image[:, :90].any()
    swapped = draw_pose(kp, sc, SIZE, SIZE, canvas_size=None, swap_rb=True)
    np.testing.assert_array_equal(swapped, image[..., ::-1])


def test_points_near_origin_are_missing_for_hands_and_face():
    kp, sc = _blank()
    kp[L.FACE[0]] = (3, 300)  # x = 3/512 < 0.01 normalised
    kp[L.LEFT_HAND[0]] = (300, 2)
    sc[:] = 1.0
    assert not draw_pose(kp, sc, SIZE, SIZE, canvas_size=None, body=False).any()


def test_all_zero_confidence_gives_black_canvas():
    kp, _ = _frontal()
    for canvas_size in (2160, None):
        image = draw_pose(kp, np.zeros(134), SIZE, SIZE, (64, 96), canvas_size=canvas_size)
        assert image.shape == (64, 96, 3) and image.dtype == np.uint8 and not image.any()


def test_non_finite_points_are_ignored():
    kp, sc = _frontal()
    kp[L.LEFT_HAND] = np.nan
    kp[0] = np.inf
    kp[7] = (1e12, -1e12)  # absurd but finite: drawn toward, without overflow
    image = draw_pose(kp, sc, SIZE, SIZE, canvas_size=None)
    assert image.any()
    assert draw_pose(kp, sc, SIZE, SIZE, (64, 64)).any()


@pytest.mark.parametrize("out_size", [(576, 1024), (64, 64), (100, 77)])
def test_any_output_size_and_parts_present(out_size):
    kp, sc = _frontal()
    image = draw_pose(kp, sc, SIZE, SIZE, out_size)
    assert image.shape == (*out_size, 3) and image.dtype == np.uint8
    assert image.any()
    h, w = out_size
    # left wrist region (hand) and the face region hold drawn pixels
    assert image[int(h * 0.62) : int(h * 0.78), int(w * 0.3) : int(w * 0.42)].any()
    assert image[int(h * 0.17) : int(h * 0.33), int(w * 0.42) : int(w * 0.58)].any()


def test_default_canvas_is_2160_short_side_and_cropped_resize_is_exact():
    assert canvas_shape((576, 1024), 2160) == (2160, 3840)
    assert canvas_shape((576, 1024), None) == (576, 1024)
    kp, sc = _frontal()
    fast = draw_pose(kp, sc, SIZE, SIZE, (576, 1024))
    # the same canvas resized whole with OpenCV (the path used when not shrinking with INTER_AREA)
    full = draw_pose(kp, sc, SIZE, SIZE, (2160, 3840), canvas_size=None)
    reference = cv2.resize(full, (1024, 576), interpolation=cv2.INTER_AREA)
    assert np.abs(fast.astype(int) - reference).max() <= 1


@pytest.mark.parametrize("options", [{"canvas_size": 1024}, {"snap_canvas": True}], ids=["1024", "snap"])
def test_cheaper_canvases_look_like_the_full_canvas(options):
    assert canvas_shape((576, 1024), 2160, snap=True) == (2304, 4096)
    kp, sc = _frontal()
    full = draw_pose(kp, sc, SIZE, SIZE, (240, 240)).astype(float)
    cheaper = draw_pose(kp, sc, SIZE, SIZE, (240, 240), **options).astype(float)
    assert cheaper.sum() == pytest.approx(full.sum(), rel=0.15)  # about the same ink
    blur = lambda image: cv2.GaussianBlur(image, (0, 0), 2).ravel()  # noqa: E731
    assert np.corrcoef(blur(full), blur(cheaper))[0, 1] > 0.95  # in the same places


def test_feet_off_by_default():
    kp, sc = _blank()
    kp[15], kp[18] = (200, 200), (300, 200)
    sc[15], sc[18] = 1.0, 1.0
    assert not draw_pose(kp, sc, SIZE, SIZE, canvas_size=None, body=False).any()
    assert draw_pose(kp, sc, SIZE, SIZE, canvas_size=None, body=False, feet=True)[200, 250].any()


def test_sequence_helper_and_torch_input():
    kp, sc = _frontal()
    keypoints = np.stack([kp, kp + 20, kp - 20])
    scores = np.stack([sc, sc * 0.5, sc])
    frames = draw_pose_sequence(keypoints, scores, SIZE, SIZE, (96, 128), canvas_size=None)
    assert frames.shape == (3, 96, 128, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(
        frames[1], draw_pose(kp + 20, sc * 0.5, SIZE, SIZE, (96, 128), canvas_size=None)
    )
    assert not np.array_equal(frames[0], frames[2])
    from_torch = draw_pose_sequence(torch.from_numpy(keypoints), torch.from_numpy(scores), SIZE, SIZE, (96, 128),
                                    canvas_size=None)  # fmt: skip
    np.testing.assert_array_equal(from_torch, frames)


def test_bad_shapes_are_reported():
    with pytest.raises(ValueError, match=r"\[134, 2\]"):
        draw_pose(np.zeros((133, 2)), np.zeros(133), SIZE, SIZE)
    with pytest.raises(ValueError, match=r"\[T, 134, 2\]"):
        draw_pose_sequence(np.zeros((134, 2)), np.zeros(134), SIZE, SIZE)


def test_content_frame_holds_confident_points():
    kp, sc = _frontal()
    sc[L.LEFT_HAND] = 0.1
    kp[L.LEFT_HAND] = 5000.0  # far away but not confident: ignored
    offset, width, height = content_frame(kp, sc)
    inside = kp[sc >= 0.3] - offset
    assert width == height and (inside > 0).all() and (inside < width).all()


def test_frame_for_uses_a_guessed_frame_only_when_it_holds_the_skeleton():
    kp, sc = _frontal()
    offset, width, height = frame_for(kp, sc, 512, 512)
    assert (offset == 0).all() and (width, height) == (512, 512)
    offset, width, height = frame_for(kp, sc, 256, 256)  # wrong guess: most points outside
    inside = kp - offset
    assert width == height and (inside > 0).all() and (inside < width).all()
    assert frame_holds(kp, sc, 512, 512) and not frame_holds(kp, np.zeros(134), 512, 512)
