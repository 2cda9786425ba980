"""DWPoseONNX on tiny ONNX models with the real DWPose signatures and known outputs (rtmlib, offline)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from pose_onnx_models import (
    anchor_index,
    constant_detector,
    constant_pose_model,
    encode_boxes,
    export_onnx,
    spot_pose_model,
    to_letterbox,
)
from pose_onnx_models import (
    expected_pixels as expected_pixels_of,
)

from csg_lightning.io.validation import InputError
from csg_lightning.pose.dwpose_onnx import DWPoseONNX, decode_yolox
from csg_lightning.pose.estimator import build_estimator

K = np.arange(133)
BINS_X = (37 * K + 11) % 576
BINS_Y = (53 * K + 7) % 768
BINS_X[:2], BINS_Y[:2] = (288, 100), (384, 600)  # golden points below
PEAKS = np.full(133, 0.9, np.float32)
PEAKS[5], PEAKS[6] = 0.8, 0.6  # shoulders: the neck gets the smaller score
PEAKS[3] = -0.5  # no response: score 0 (rtmlib places it at bin -1)
PEAKS[91:] = 1.3  # hands: DWPose's hand maxima exceed 1 -> clipped
FRAME = (512, 512)
PERSON_A = (100.0, 50.0, 300.0, 450.0)  # larger, lower score
PERSON_B = (350.0, 100.0, 450.0, 300.0)  # smaller, higher score
DETECTIONS = [
    (*PERSON_A, 0.9, 0, 0.95),  # score 0.855
    (*PERSON_B, 0.99, 0, 0.99),  # score 0.9801
    (105.0, 55.0, 305.0, 455.0, 0.8, 0, 0.9),  # duplicate of A, score 0.72: NMS removes it
    (10.0, 10.0, 60.0, 60.0, 0.99, 2, 0.99),  # a car: not a person
    (400.0, 400.0, 500.0, 500.0, 0.5, 0, 0.5),  # person score 0.25 <= 0.3
]
WIDE_FRAME = (720, 1280)
WIDE_PERSON = (500.0, 100.0, 800.0, 700.0)


def expected_pixels(box) -> np.ndarray:
    return expected_pixels_of(box, BINS_X, BINS_Y)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("dwpose_onnx")
    return {
        "pose": constant_pose_model(root / "pose.onnx", BINS_X, BINS_Y, PEAKS),
        "pose_dynamic": constant_pose_model(root / "pose_dyn.onnx", BINS_X, BINS_Y, PEAKS, dynamic_batch=True),
        "spot": spot_pose_model(root / "spot.onnx"),
        "det": constant_detector(root / "det.onnx", to_letterbox(DETECTIONS, *FRAME)),
        "det_dynamic": constant_detector(root / "det_dyn.onnx", to_letterbox(DETECTIONS, *FRAME), True),
        "det_wide": constant_detector(root / "det_wide.onnx", to_letterbox([(*WIDE_PERSON, 1, 0, 1)], *WIDE_FRAME)),
    }  # fmt: skip


def test_decode_yolox_golden_values():
    raw = np.zeros((8400, 85), np.float32)
    row = anchor_index(8, 3, 2)  # stride-8 cell (3, 2) = row 163
    assert row == 163
    raw[row, :5] = [0.5, 0.25, math.log(2.0), math.log(4.0), 0.8]
    raw[row, 5] = 0.5  # person: score 0.4
    boxes, scores = decode_yolox(raw[None], (640, 640), ratio=0.5)
    # centre ((3 + 0.5) x 8, (2 + 0.25) x 8) = (28, 18), size (2 x 8, 4 x 8) = (16, 32); / ratio 0.5
    np.testing.assert_allclose(boxes, [[40.0, 4.0, 72.0, 68.0]], atol=1e-4)
    np.testing.assert_allclose(scores, [0.4], atol=1e-6)
    assert decode_yolox(raw, (640, 640), 0.5, score_threshold=0.45)[0].shape == (0, 4)
    raw[row, 5], raw[row, 6] = 0.0, 0.9  # a bicycle: no person
    assert decode_yolox(raw, (640, 640), 0.5)[0].shape == (0, 4)
    with pytest.raises(ValueError, match=r"\[1, 8400, 85\]"):
        decode_yolox(raw[:100], (640, 640), 0.5)


def test_decode_yolox_nms_keeps_the_best_of_overlapping_boxes():
    raw = encode_boxes(to_letterbox(DETECTIONS, *FRAME))
    boxes, scores = decode_yolox(raw, (640, 640), ratio=640 / 512)
    np.testing.assert_allclose(boxes, [PERSON_B, PERSON_A], atol=1e-3)  # best first
    np.testing.assert_allclose(scores, [0.99 * 0.99, 0.9 * 0.95], atol=1e-6)


def test_known_outputs_decode_to_known_pixels(models):
    estimator = DWPoseONNX(detector=str(models["det"]), pose=str(models["pose"]))
    assert estimator.pose_input_size == (288, 384) and estimator.simcc_split_ratio == 2.0
    frame = np.random.default_rng(0).integers(0, 255, (*FRAME, 3), dtype=np.uint8)
    (raw,) = estimator.estimate([frame])
    assert [p.box_score for p in raw] == pytest.approx([0.9801, 0.855], abs=1e-5)  # detector order
    (people,) = estimator(frame)  # PoseEstimator.__call__: largest first
    assert len(people) == 2
    a, b = people
    np.testing.assert_allclose(a.box, PERSON_A, atol=1e-3)
    np.testing.assert_allclose(b.box, PERSON_B, atol=1e-3)
    assert a.box_score == pytest.approx(0.855, abs=1e-5) and a.area > b.area
    # golden: A's crop is centred (200, 250), 375 x 500 pixels; nose at bins (288, 384), left eye (100, 600)
    np.testing.assert_allclose(a.keypoints[0], [200.0, 250.0], atol=1e-2)
    np.testing.assert_allclose(a.keypoints[1], [77.6041667, 390.625], atol=1e-2)
    for person, box in ((a, PERSON_A), (b, PERSON_B)):
        expected = expected_pixels(box)  # [133, 2]; point 3 has no response (placed off-crop)
        body = np.r_[0:3, 4:17]
        np.testing.assert_allclose(person.keypoints[body], expected[body], atol=1e-2)
        # neck inserted at 17: mean of the shoulders, the smaller shoulder score
        np.testing.assert_allclose(person.keypoints[17], (expected[5] + expected[6]) / 2, atol=1e-2)
        assert person.scores[17] == pytest.approx(0.6)
        np.testing.assert_allclose(person.keypoints[18:], expected[17:], atol=1e-2)
        assert person.scores[3] == 0.0 and np.isfinite(person.keypoints).all()
        np.testing.assert_allclose(person.scores[92:], 1.0)  # hands clipped
        assert person.scores.min() >= 0.0 and person.scores.max() <= 1.0
        assert person.keypoints.dtype == np.float32 and person.keypoints.shape == (134, 2)


def _count_runs(session):
    calls = []
    run = session.run

    def counting(names, feeds):
        calls.append(next(iter(feeds.values())).shape[0])
        return run(names, feeds)

    session.run = counting
    return calls


def test_dynamic_batch_is_batched_and_matches_the_fixed_one(models):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (*FRAME, 3), dtype=np.uint8) for _ in range(3)]
    fixed = DWPoseONNX(detector=str(models["det"]), pose=str(models["pose"]), batch_size=8)
    dynamic = DWPoseONNX(detector=str(models["det_dynamic"]), pose=str(models["pose_dynamic"]), batch_size=4)
    fixed_runs, dynamic_runs = _count_runs(fixed._pose.session), _count_runs(dynamic._pose.session)
    det_runs = _count_runs(dynamic._det.session)
    a, b = fixed(frames), dynamic(frames)
    assert fixed_runs == [1] * 6  # fixed batch dim 1: crop by crop
    assert dynamic_runs == [4, 2] and det_runs == [3]  # 6 crops in chunks of 4; 3 frames at once
    assert [len(p) for p in a] == [len(p) for p in b] == [2, 2, 2]
    for people_a, people_b in zip(a, b, strict=True):
        for pa, pb in zip(people_a, people_b, strict=True):
            np.testing.assert_allclose(pa.keypoints, pb.keypoints, atol=1e-4)
            np.testing.assert_allclose(pa.scores, pb.scores, atol=1e-6)


def _blob_frame(shape, red_at, blue_at, sigma=5.0) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.zeros((h, w, 3), np.uint8)
    for channel, (x, y) in ((0, red_at), (2, blue_at)):
        frame[..., channel] = np.round(255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)))
    return frame


@pytest.mark.parametrize("with_detector", [False, True])
def test_crop_and_back_projection_find_the_red_blob(models, tmp_path, with_detector):
    """The spot model puts every keypoint on the red blob of its crop: the pose model sees RGB, and
    the decoded pixels come back through the crop's affine to the blob's place in the frame."""
    red, blue = (300, 200), (150, 380)
    frame = _blob_frame(FRAME, red, blue)
    detector = None
    if with_detector:
        box = (red[0] - 80, red[1] - 120, red[0] + 70, red[1] + 90)
        detector = str(constant_detector(tmp_path / "det.onnx", to_letterbox([(*box, 1, 0, 1)], *FRAME)))
    estimator = DWPoseONNX(detector=detector, pose=str(models["spot"]))
    (people,) = estimator(frame)
    (person,) = people
    crop_w = 512 * 1.25 if not with_detector else 210 * 1.25 * 0.75  # width of the crop in frame pixels
    tolerance = 0.5 * crop_w / 288 + 0.3  # half a crop pixel
    np.testing.assert_array_less(np.abs(person.keypoints - np.array(red)), tolerance)
    np.testing.assert_allclose(person.scores, 1.0, atol=1e-5)
    if not with_detector:
        np.testing.assert_allclose(person.box, [0, 0, 512, 512])
        assert person.box_score == 1.0


def test_letterbox_of_a_wide_frame(models):
    estimator = DWPoseONNX(detector=str(models["det_wide"]), pose=str(models["pose"]))
    frame = np.zeros((*WIDE_FRAME, 3), np.uint8)
    ((person,),) = estimator([frame])
    np.testing.assert_allclose(person.box, WIDE_PERSON, atol=1e-3)  # letterbox ratio 0.5 undone
    np.testing.assert_allclose(person.keypoints[:3], expected_pixels(WIDE_PERSON)[:3], atol=1e-2)


def test_no_person_gives_an_empty_list(tmp_path, models):
    detector = constant_detector(tmp_path / "none.onnx", [(10, 10, 60, 60, 0.99, 5, 0.99)])  # a bus
    estimator = DWPoseONNX(detector=str(detector), pose=str(models["pose"]))
    assert estimator([np.zeros((64, 96, 3), np.uint8)] * 2) == [[], []]


def test_missing_files_name_the_path_and_where_to_get_it(tmp_path, models):
    with pytest.raises(
        FileNotFoundError,
        match=r"pose model .*nope\.onnx: file not found.*dw-ll_ucoco_384.*yzd-v/DWPose.*README",
    ):
        DWPoseONNX(detector=None, pose=str(tmp_path / "nope.onnx"))
    with pytest.raises(
        FileNotFoundError, match=r"detector model .*yolox\.onnx: file not found.*yolox_l\.onnx"
    ):
        DWPoseONNX(detector=str(tmp_path / "yolox.onnx"), pose=str(models["pose"]))
    with pytest.raises(
        FileNotFoundError, match=r"pose model .*p\.onnx: file not found.*; .*detector model .*d\.onnx"
    ):
        DWPoseONNX(detector=str(tmp_path / "d.onnx"), pose=str(tmp_path / "p.onnx"))  # both named at once


def test_a_damaged_model_file_is_named(tmp_path):
    bad = tmp_path / "dw-ll_ucoco_384.onnx"
    bad.write_bytes(b"<html>rate limited</html>")  # what a failed download can leave
    with pytest.raises(InputError, match=rf"pose model {bad}: onnxruntime cannot load it.*partial download"):
        DWPoseONNX(detector=None, pose=str(bad))


def test_device_and_batch_size_are_checked(models):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(InputError, match="no CUDAExecutionProvider"):
            DWPoseONNX(detector=None, pose=str(models["pose"]), device="cuda")
    with pytest.raises(InputError, match="expected cpu, cuda or cuda:N"):
        DWPoseONNX(detector=None, pose=str(models["pose"]), device="tpu")
    with pytest.raises(InputError, match="batch_size"):
        DWPoseONNX(detector=None, pose=str(models["pose"]), batch_size=0)


def test_wrong_simcc_sizes_are_refused(tmp_path):
    import torch
    from pose_onnx_models import _Constant

    path = export_onnx(_Constant(np.zeros((133, 500)), np.zeros((133, 768))), torch.zeros(1, 3, 384, 288),
                       tmp_path / "bad.onnx", "input", ["simcc_x", "simcc_y"])  # fmt: skip
    with pytest.raises(InputError, match="500 and 768 bins"):
        DWPoseONNX(detector=None, pose=str(path))


def test_build_estimator_from_class_path(models):
    spec = {"class_path": "csg_lightning.pose.dwpose_onnx.DWPoseONNX",
            "init_args": {"detector": str(models["det"]), "pose": str(models["pose"]), "batch_size": 4,
                          "det_score_threshold": 0.9}}  # fmt: skip
    estimator = build_estimator(spec)
    assert isinstance(estimator, DWPoseONNX) and estimator.batch_size == 4
    (people,) = estimator(np.zeros((*FRAME, 3), np.uint8))
    assert len(people) == 1  # only B's 0.98 passes 0.9
    whole = build_estimator(
        {"class_path": spec["class_path"], "init_args": {"detector": None, "pose": str(models["pose"])}}
    )
    assert whole.detect([np.zeros((40, 30, 3), np.uint8)])[0][0].tolist() == [[0, 0, 30, 40]]


def test_shipped_yaml_names_the_expected_weights():
    path = Path(__file__).parents[1] / "experiments" / "pose" / "dwpose_onnx.yaml"
    spec = yaml.safe_load(path.read_text())
    assert spec["class_path"] == "csg_lightning.pose.dwpose_onnx.DWPoseONNX"
    assert spec["init_args"]["detector"] == "weights/dwpose/yolox_l.onnx"
    assert spec["init_args"]["pose"] == "weights/dwpose/dw-ll_ucoco_384.onnx"
    if not Path(spec["init_args"]["pose"]).exists():
        with pytest.raises(FileNotFoundError, match="weights/dwpose/"):
            build_estimator(spec)
