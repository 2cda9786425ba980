"""Smoothing of keypoint tracks, the speaker track, and the crop geometry of csg-data preprocess."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import savgol_filter

from csg_lightning.io.validation import InputError
from csg_lightning.pose.estimator import PersonPose
from csg_lightning.preprocess.crop import (
    CropBox,
    CropConfig,
    axis_map,
    crop_box_for_clip,
    crop_frames,
    crop_keypoints,
)
from csg_lightning.preprocess.speaker_track import build_track, empty_track
from csg_lightning.skeleton.smoothing import (
    INNER_LIPS,
    OUTER_LIPS,
    SmoothingConfig,
    fill_unconfident,
    savgol_smooth,
    smooth_skeleton,
)

# ------------------------------------------------------------------------------------------ smoothing


def _line_track(t: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """[t, 134, 2] points moving on straight lines (point j: x = 2t + j, y = 300 - t), all confident."""
    frames = np.arange(t, dtype=np.float32)[:, None]
    j = np.arange(134, dtype=np.float32)[None]
    kp = np.stack(np.broadcast_arrays(2 * frames + j, 300 - frames), -1).astype(np.float32)
    return kp, np.full((t, 134), 0.9, np.float32)


def test_savgol_smooth_moved_and_shrinks_window():
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    assert np.allclose(savgol_smooth(x), savgol_filter(x, 5, 2, axis=0), atol=1e-6)  # 11 -> 5 (odd, <= 6)
    assert np.array_equal(savgol_smooth(x[:2]), x[:2])  # window would not exceed the order: unchanged


def test_noisy_line_gets_closer_to_the_line():
    line, scores = _line_track()
    noisy = line + np.random.default_rng(1).normal(scale=2.0, size=line.shape).astype(np.float32)
    out = smooth_skeleton(noisy, scores, SmoothingConfig())
    assert out.shape == line.shape and out.dtype == np.float32
    err_raw, err_smooth = np.sqrt(((noisy - line) ** 2).mean()), np.sqrt(((out - line) ** 2).mean())
    assert err_smooth < 0.6 * err_raw
    assert np.allclose(smooth_skeleton(line, scores), line, atol=1e-3)  # order 2 keeps straight lines


def test_low_confidence_outlier_does_not_move_confident_neighbours():
    line, scores = _line_track()
    kp, sc = line.copy(), scores.copy()
    kp[30, 100] += 1000.0  # a garbage hand point ...
    sc[30, 100] = 0.1  # ... that the estimator was unsure of
    kp[0:4, 5] = -500.0  # and an unconfident start of the shoulder track
    sc[0:4, 5] = 0.0
    sc_before = sc.copy()
    out = smooth_skeleton(kp, sc, SmoothingConfig())
    assert np.array_equal(sc, sc_before)
    assert np.abs(out[:, 100] - line[:, 100]).max() < 1e-3  # filled by interpolation: on the line
    assert np.abs(out[9:, 5] - line[9:, 5]).max() < 1e-3  # windows clear of the held start: on the line
    assert np.abs(out[4:9, 5] - line[4:9, 5]).max() < 10  # held (not -500) values near the start
    # without the confidence handling the outlier leaks into the frames around it
    leaked = smooth_skeleton(kp, sc, SmoothingConfig(), confidence_threshold=0.0)
    assert np.abs(leaked[[27, 28, 32, 33], 100] - line[[27, 28, 32, 33], 100]).max() > 50


def test_fill_unconfident_interpolates_and_holds():
    kp = np.zeros((6, 2, 2))
    kp[:, 0, 0] = [9, 1, 9, 3, 9, 9]
    kp[:, 1, 0] = [7, 7, 7, 7, 7, 7]
    ok = np.array([[0, 0], [1, 0], [0, 0], [1, 0], [0, 0], [0, 0]], bool)
    out = fill_unconfident(kp, ok)
    assert out[:, 0, 0].tolist() == [1, 1, 2, 3, 3, 3]
    assert out[:, 1, 0].tolist() == [7] * 6  # never confident: left as it was


def test_lip_windows_are_honoured():
    rng = np.random.default_rng(2)
    series = rng.normal(size=(40, 2)).astype(np.float32)
    kp = np.repeat(series[:, None], 134, axis=1)
    scores = np.ones((40, 134), np.float32)
    cfg = SmoothingConfig(window=11, order=2, outer_lip_window=7, inner_lip_window=5)
    out = smooth_skeleton(kp, scores, cfg)
    expect = {w: savgol_filter(series, w, 2, axis=0) for w in (5, 7, 11)}
    assert OUTER_LIPS.tolist() == list(range(72, 84)) and INNER_LIPS.tolist() == list(range(84, 92))
    for j in (0, 71, 92, 133):
        assert np.allclose(out[:, j], expect[11], atol=1e-5)
    for j in OUTER_LIPS:
        assert np.allclose(out[:, j], expect[7], atol=1e-5)
    for j in INNER_LIPS:
        assert np.allclose(out[:, j], expect[5], atol=1e-5)
    assert not np.allclose(expect[5], expect[11], atol=1e-2)


def test_smoothing_config_rejects_bad_windows():
    with pytest.raises(InputError, match="inner_lip_window"):
        SmoothingConfig(inner_lip_window=4)
    with pytest.raises(ValueError, match=r"\[T, 134, 2\]"):
        smooth_skeleton(np.zeros((5, 133, 2)), np.zeros((5, 133)))


# ------------------------------------------------------------------------------------- speaker track


def _person(x1, y1, x2, y2, box_score, value):
    kp = np.full((134, 2), value, np.float32)
    return PersonPose(
        kp, np.full(134, value / 100, np.float32), np.array([x1, y1, x2, y2], np.float32), box_score
    )


def test_build_track_takes_the_largest_person():
    big = _person(0, 0, 100, 200, 0.9, 50.0)  # area 20000
    small = _person(10, 10, 60, 110, 0.7, 20.0)  # area 5000
    tiny = _person(0, 0, 10, 10, 0.95, 10.0)
    track = build_track([[], [big], [small, big], [tiny, big, small]])
    assert len(track) == 4
    assert track.num_persons.tolist() == [0, 1, 2, 3]
    assert np.array_equal(track.keypoints[0], np.zeros((134, 2))) and track.box_scores[0] == 0
    for t in (1, 2, 3):
        assert np.all(track.keypoints[t] == 50.0) and np.allclose(track.scores[t], 0.5)
        assert track.boxes[t].tolist() == [0, 0, 100, 200] and track.box_scores[t] == pytest.approx(0.9)
    assert track.second_area_ratio.tolist() == [0.0, 0.0, 0.25, 0.25]
    assert track.second_box_score.tolist() == pytest.approx([0.0, 0.0, 0.7, 0.7])
    assert track.keypoints.dtype == np.float32 and track.num_persons.dtype == np.int32
    assert len(build_track([])) == 0 and len(empty_track(3).slice(1, 3)) == 2


# ----------------------------------------------------------------------------------------- crop geometry


def _disc_frame(h: int, w: int, centres: np.ndarray, radius: float, sub: int = 6) -> np.ndarray:
    """uint8 [h, w, 3] black frame with anti-aliased white discs (coverage from sub x sub samples);
    each disc's intensity centroid is its centre (integer coordinates are pixel centres)."""
    offs = (np.arange(sub) + 0.5) / sub - 0.5
    img = np.zeros((h, w))
    for cx, cy in centres:
        x0, x1 = int(np.floor(cx - radius - 1)), int(np.ceil(cx + radius + 1)) + 1
        y0, y1 = int(np.floor(cy - radius - 1)), int(np.ceil(cy + radius + 1)) + 1
        ys, xs = np.mgrid[y0:y1, x0:x1]
        sx = xs[..., None, None] + offs[None, None, None, :]
        sy = ys[..., None, None] + offs[None, None, :, None]
        img[y0:y1, x0:x1] += ((sx - cx) ** 2 + (sy - cy) ** 2 <= radius**2).mean((-1, -2))
    return np.repeat((255 * np.clip(img, 0, 1)).round().astype(np.uint8)[..., None], 3, -1)


def _centroid(img: np.ndarray, u: float, v: float, r: float) -> tuple[float, float]:
    h, w = img.shape[:2]
    x0, x1 = max(0, int(np.floor(u - r))), min(w, int(np.ceil(u + r)) + 1)
    y0, y1 = max(0, int(np.floor(v - r))), min(h, int(np.ceil(v + r)) + 1)
    patch = img[y0:y1, x0:x1, 0].astype(np.float64)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    return float((patch * xs).sum() / patch.sum()), float((patch * ys).sum() / patch.sum())


# (x0, y0, size) in a 120 x 90 frame: inside, over each edge and corner, larger than the frame
BOXES = [
    (20, 10, 64),
    (30, 5, 40),
    (10, 0, 80),  # inside: 1:1, enlarged 1.6x, shrunk 0.8x
    (-17, 10, 70),
    (70, 12, 67),
    (15, -23, 75),
    (25, 41, 73),  # over the left, right, top, bottom
    (-13, -9, 59),
    (77, 50, 53),  # over the top-left and the bottom-right corners
    (-30, -41, 171),
    (-7, -3, 133),  # larger than the frame: over all four edges
]


@pytest.mark.parametrize("x0, y0, size", BOXES)
def test_crop_keypoints_land_on_the_cropped_discs(x0, y0, size):
    h, w, out_size, radius = 90, 120, 64, 4.0
    # a 3 x 3 grid of discs at fractional positions, wholly inside both the frame and the box
    pad = radius + 1.5
    xs = np.linspace(max(x0, 0) + pad, min(x0 + size, w) - 1 - pad, 3) + [0.13, -0.21, 0.29]
    ys = np.linspace(max(y0, 0) + pad, min(y0 + size, h) - 1 - pad, 3) + [-0.17, 0.31, -0.07]
    centres = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    frame = _disc_frame(h, w, centres, radius)
    box = CropBox(x0, y0, size, w, h)
    out = crop_frames(np.stack([frame, frame]), box, out_size)
    assert out.shape == (2, out_size, out_size, 3) and out.dtype == np.uint8
    assert np.array_equal(out[0], out[1])
    uv = crop_keypoints(centres, box, out_size)
    window = (radius + 1.5) * out_size / size + 1.5
    errors = [np.hypot(*(np.array(_centroid(out[0], u, v, window)) - (u, v))) for u, v in uv]
    assert max(errors) < 0.1, errors  # measured <= 0.03; the nominal map is off by up to 0.52 here
    # the in-frame part lands where the keypoint map says the frame's edges are
    mx, my = axis_map(x0, size, w, out_size), axis_map(y0, size, h, out_size)
    edges = crop_keypoints(np.array([[-0.5, -0.5], [w - 0.5, h - 0.5]]), box, out_size)
    clip = np.clip(edges, -0.5, out_size - 0.5)
    assert np.allclose(clip[0] + 0.5, [mx.dst0, my.dst0], atol=1e-6)
    assert np.allclose(clip[1] + 0.5, [mx.dst1, my.dst1], atol=1e-6)


def test_crop_to_512_from_smaller_and_larger_boxes():
    h, w, radius = 240, 320, 5.0
    centres = np.array([[100.25, 80.5], [160.0, 120.0], [211.7, 151.2]])
    frame = _disc_frame(h, w, centres, radius)[None]
    for x0, y0, size in ((40, 10, 300), (-150, -200, 700)):  # enlarged 1.7x / shrunk 0.73x, over all edges
        box = CropBox(x0, y0, size, w, h)
        out = crop_frames(frame, box, 512)[0]
        assert out.shape == (512, 512, 3)
        scale = 512 / size
        for (u, v), c in zip(crop_keypoints(centres, box, 512), centres, strict=True):
            err = np.hypot(*(np.array(_centroid(out, u, v, (radius + 1.5) * scale + 1.5)) - (u, v)))
            assert err < 0.1, (x0, y0, size, c, err)


def test_crop_scales_first_then_pads_black():
    frame = np.full((1, 90, 120, 3), 200, np.uint8)
    box = CropBox(-10, -20, 100, 120, 90)  # 0.64x: over the left by 6.4 and the top by 12.8 output px
    out = crop_frames(frame, box, 64)[0]
    assert np.all(out[:, :6] == 0) and np.all(out[:13] == 0)
    assert np.all(out[13:, 6:] == 200)  # no black blurred into the picture at the borders
    box = CropBox(70, 50, 100, 120, 90)  # over the right (50 -> 32 px kept) and the bottom (40 -> 25.6)
    out = crop_frames(frame, box, 64)[0]
    assert np.all(out[:26, :32] == 200) and np.all(out[26:] == 0) and np.all(out[:, 32:] == 0)
    assert not crop_frames(frame, CropBox(500, 0, 50, 120, 90), 64).any()  # wholly outside: black
    rng = np.random.default_rng(3)
    pic = rng.integers(0, 256, (2, 90, 120, 3), dtype=np.uint8)
    assert np.array_equal(crop_frames(pic, CropBox(20, 10, 64), 64), pic[:, 10:74, 20:84])  # 1:1: a copy
    with pytest.raises(ValueError, match="120x90"):
        crop_frames(pic[:, :80], CropBox(0, 0, 50, 120, 90), 64)


def test_crop_keypoints_nominal_map_inside_the_frame():
    box = CropBox(10, 20, 100, 640, 480)
    kp = np.array([[[10.0, 20.0], [59.5, 69.5], [109.0, 119.0]]])
    out = crop_keypoints(kp, box, 50)
    assert out.shape == (1, 3, 2) and out.dtype == np.float32
    assert np.allclose(out[0], [[-0.25, -0.25], [24.5, 24.5], [49.25, 49.25]])  # pixel centres stay centres


def _track_with_rectangles(t: int, corners) -> object:
    """A track whose two confident points per frame are the given rectangle corners; the rest garbage."""
    track = empty_track(t)
    track.keypoints[:] = 5000.0  # unconfident garbage far away
    for i, (a, b) in enumerate(corners):
        track.keypoints[i, 0], track.keypoints[i, 120] = a, b  # nose and a right-hand point
        track.scores[i, [0, 120]] = 0.9
        track.scores[i, 5] = 0.2  # below min_score: ignored
        track.num_persons[i] = 1
    return track


def test_crop_box_for_clip_centre_and_size():
    corners = [((100 + i, 50), (200 + i, 250)) for i in range(5)]
    track = _track_with_rectangles(6, corners)  # the 6th frame has nothing confident
    box = crop_box_for_clip(track, 640, 480, CropConfig())
    # centre: median of (150 + i, 150) = (152, 150); radius max(|x - 152| = 52, |y - 150| = 100) -> extent 200
    assert (box.size, box.frame_width, box.frame_height) == (260, 640, 480)  # ceil(1.3 * 200)
    assert (box.x0, box.y0) == (23, 21)  # round(152 - 259 / 2), round(150 - 259 / 2)
    assert box.x0 + (box.size - 1) / 2 == pytest.approx(152.5, abs=0.5)
    # the box holds every confident point with the margin
    assert box.x0 <= 100 and box.x0 + box.size - 1 >= 204 and box.y0 <= 50 and box.y0 + box.size - 1 >= 250
    wide = crop_box_for_clip(track, 640, 480, CropConfig(scale=1.5, center="extent"))
    assert wide.size == 300


def test_crop_box_keeps_inside_where_it_fits():
    corners = [((5, 150), (105, 350))] * 3  # near the left edge; extent 200 -> side 260
    track = _track_with_rectangles(3, corners)
    box = crop_box_for_clip(track, 640, 240, CropConfig())
    assert box.x0 == 0  # shifted in from round(55 - 129.5) = -74 (fits: 260 <= 640)
    assert box.y0 == 121  # taller than the frame (260 > 240): stays centred on the speaker
    free = crop_box_for_clip(track, 640, 240, CropConfig(keep_inside=False))
    assert free.x0 == -74
    neck = empty_track(2)
    neck.keypoints[:, 17] = [[300.0, 200.0], [310.0, 220.0]]
    neck.scores[:, 17] = 0.9
    b = crop_box_for_clip(neck, 640, 480, CropConfig(center="neck", min_size=64))
    assert b.size == 64 and (b.x0, b.y0) == (274, 179)  # round(305 - 31.5), round(210 - 31.5)
    with pytest.raises(ValueError, match="no point"):
        crop_box_for_clip(empty_track(4), 640, 480, CropConfig())
    with pytest.raises(InputError, match="'center'"):
        CropConfig(center="middle")
