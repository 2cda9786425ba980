"""MMPoseWholeBody on the real mmpose / mmdet models (configs shipped in the wheels), random weights, CPU.

Needs the ``pose`` extra (``make setup-pose``); without it the whole file is skipped. The pose model is
RTMPose-l whole-body (the DWPose-L architecture) at a small input (96x128 instead of 288x384: the
head's shapes follow the input size), the detector mmpose's RTMDet-m person detector at 320x320.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip(
    "mmpose",
    reason="mmpose not installed: the mmpose backend's tests need the 'pose' extra (make setup-pose)",
)

from csg_lightning.checkpoints.safe_load import CheckpointError  # noqa: E402
from csg_lightning.io.validation import InputError, MissingInputError  # noqa: E402
from csg_lightning.pose.estimator import build_estimator  # noqa: E402
from csg_lightning.pose.mmpose_backend import (  # noqa: E402
    DEFAULT_DETECTOR_CONFIG,
    DEFAULT_POSE_CONFIG,
    Detector,
    MMPoseWholeBody,
    mmcv_has_cuda_ops,
    resolve_config,
)
from csg_lightning.skeleton.layout import NUM_KEYPOINTS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
YAML = ROOT / "experiments" / "pose" / "mmpose_rtmpose_l.yaml"
W, H = 96, 128  # small pose input (the config's is 288x384)
SMALL_POSE = {
    "model.head.input_size": (W, H),
    "model.head.in_featuremap_size": (W // 32, H // 32),
    "model.head.decoder.input_size": (W, H),
    "test_dataloader.dataset.pipeline.2.input_size": (W, H),  # TopdownAffine
}
SMALL_DETECTOR = {
    "test_dataloader.dataset.pipeline.1.scale": (320, 320),  # Resize
    "test_dataloader.dataset.pipeline.2.size": (320, 320),  # Pad
    "model.test_cfg.score_thr": 0.0,
    "model.test_cfg.max_per_img": 3,
}


def frames_of(sizes, seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


def pose_estimator(seed=0, **kwargs) -> MMPoseWholeBody:
    torch.manual_seed(seed)
    kwargs.setdefault("cfg_options", SMALL_POSE)
    return MMPoseWholeBody(
        pose_config=DEFAULT_POSE_CONFIG, pose_weights=kwargs.pop("pose_weights", None), **kwargs
    )


def check_person(person, frame) -> None:
    height, width = frame.shape[:2]
    assert person.keypoints.shape == (NUM_KEYPOINTS, 2) and person.keypoints.dtype == np.float32
    assert person.scores.shape == (NUM_KEYPOINTS,) and person.scores.dtype == np.float32
    assert np.isfinite(person.keypoints).all()
    assert (person.scores >= 0).all() and (person.scores <= 1).all()
    x1, y1, x2, y2 = person.box
    assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height
    # the decoded points lie in the crop: the box x 1.25, widened to the model's aspect ratio
    span = 1.25 * max(x2 - x1, (y2 - y1) * W / H, 1.0), 1.25 * max(y2 - y1, (x2 - x1) * H / W, 1.0)
    centre = (x1 + x2) / 2, (y1 + y2) / 2
    for axis in (0, 1):
        assert (np.abs(person.keypoints[:, axis] - centre[axis]) <= span[axis] / 2 + 2).all()
    # the neck (index 17) is the mean of the shoulders (5, 6), with the smaller of their scores
    np.testing.assert_allclose(person.keypoints[17], person.keypoints[[5, 6]].mean(0), atol=1e-4)
    assert person.scores[17] == pytest.approx(person.scores[[5, 6]].min())


@pytest.fixture(scope="module")
def whole_frame() -> MMPoseWholeBody:
    return pose_estimator(seed=0, batch_size=4)


def test_packaged_configs_resolve(tmp_path):
    pose = resolve_config(DEFAULT_POSE_CONFIG)
    assert pose.is_file() and pose.parts[-6:-4] == (".mim", "configs")
    plain = DEFAULT_POSE_CONFIG.split("::", 1)[1]
    assert resolve_config(plain) == pose  # relative to mmpose's packaged configs
    assert resolve_config("mmdet::rtmdet/rtmdet_m_8xb32-300e_coco.py").parts[-3:-1] == ("configs", "rtmdet")
    assert (
        resolve_config(DEFAULT_DETECTOR_CONFIG).name == "rtmdet_m_640-8xb32_coco-person.py"
    )  # mmpose/.mim/demo
    own = tmp_path / "mine.py"
    own.write_text("x = 1\n")
    assert resolve_config(own) == own
    with pytest.raises(MissingInputError, match="not among mmpose's packaged configs"):
        resolve_config("wholebody_2d_keypoint/rtmpose/nothing.py")
    with pytest.raises(MissingInputError, match="file not found"):
        resolve_config(tmp_path / "absent.py")
    with pytest.raises(InputError, match="unknown package"):
        resolve_config("mmseg::x.py")


def test_whole_frame_134_point_contract(whole_frame):
    frames = frames_of([(H, W), (200, 150), (120, 260)])
    people = whole_frame(frames)
    assert len(people) == len(frames)
    for persons, frame in zip(people, frames, strict=True):
        assert len(persons) == 1  # detector: null -> the whole frame is the one person box
        person = persons[0]
        np.testing.assert_array_equal(person.box, [0, 0, frame.shape[1], frame.shape[0]])
        assert person.box_score == 1.0
        check_person(person, frame)
    assert whole_frame([]) == []
    with pytest.raises(ValueError, match="RGB uint8"):
        whole_frame([frames[0].astype(np.float32)])


def test_batches_match_one_by_one(whole_frame):
    """Crops batched across frames (batch_size 4, last batch partial) = one crop per call."""
    frames = frames_of([(H, W)] * 5 + [(180, 140)], seed=1)
    batched = whole_frame(frames)
    whole_frame.batch_size = 1
    try:
        single = [whole_frame([frame])[0] for frame in frames]
    finally:
        whole_frame.batch_size = 4
    for a, b in zip(batched, single, strict=True):
        np.testing.assert_allclose(a[0].keypoints, b[0].keypoints, atol=1e-3)
        np.testing.assert_allclose(a[0].scores, b[0].scores, atol=1e-5)


def test_frames_go_in_as_bgr(whole_frame):
    """The backend hands mmpose BGR (its data preprocessor flips to RGB): a frame and its channel swap
    give different poses, and the frame gives what mmpose's own inference_topdown gives on its BGR copy."""
    from mmpose.apis import inference_topdown

    frame = frames_of([(H, W)], seed=2)[0]
    ours = whole_frame([frame])[0][0]
    theirs = inference_topdown(whole_frame._pose, np.ascontiguousarray(frame[..., ::-1]))[0].pred_instances
    np.testing.assert_allclose(ours.keypoints[:17], theirs.keypoints[0, :17], atol=1e-3)
    np.testing.assert_allclose(ours.scores[18:], np.clip(theirs.keypoint_scores[0, 17:], 0, 1), atol=1e-5)
    swapped = whole_frame([np.ascontiguousarray(frame[..., ::-1])])[0][0]
    assert not np.allclose(swapped.keypoints, ours.keypoints, atol=1e-3)


def test_weights_round_trip(tmp_path, whole_frame):
    """A saved .pth (mmengine layout: meta with numpy arrays + state_dict) loads back weight for weight."""
    state = whole_frame._pose.state_dict()
    meta = {"dataset_meta": dict(whole_frame._pose.dataset_meta), "epoch": 270}
    assert isinstance(meta["dataset_meta"]["sigmas"], np.ndarray)  # numpy arrays in meta: allowed
    path = tmp_path / "rtmpose.pth"
    torch.save({"meta": meta, "state_dict": state}, path)
    loaded = pose_estimator(seed=123, pose_weights=str(path))  # another random init, then the file
    for key, value in loaded._pose.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)
    frame = frames_of([(H, W)], seed=3)
    np.testing.assert_allclose(loaded(frame)[0][0].keypoints, whole_frame(frame)[0][0].keypoints, atol=1e-4)
    # a bare state dict with DataParallel's prefix loads too
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "bare.pth")
    bare = pose_estimator(seed=7, pose_weights=str(tmp_path / "bare.pth"))
    torch.testing.assert_close(bare._pose.state_dict()["head.mlp.1.weight"], state["head.mlp.1.weight"])


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_payload_refused(tmp_path, whole_frame):
    marker = tmp_path / "pwned"
    path = tmp_path / "poisoned.pth"
    torch.save({"meta": {"note": _Payload(marker)}, "state_dict": whole_frame._pose.state_dict()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        pose_estimator(pose_weights=str(path))
    assert not marker.exists()


def test_wrong_weights_named(tmp_path):
    wrong = tmp_path / "other.pth"
    torch.save({"state_dict": {"backbone.stem.0.conv.weight": torch.zeros(3)}}, wrong)
    with pytest.raises(CheckpointError, match=r"other\.pth.*does not match"):
        pose_estimator(pose_weights=str(wrong))
    with pytest.raises(MissingInputError, match="absent.pth"):
        pose_estimator(pose_weights=str(tmp_path / "absent.pth"))
    with pytest.raises(InputError, match="batch_size"):
        pose_estimator(batch_size=0)
    with pytest.raises(InputError, match="device"):
        pose_estimator(device="tpu")


def test_yaml_builds_and_names_missing_weights(tmp_path):
    spec = yaml.safe_load(YAML.read_text())
    assert spec["class_path"] == "csg_lightning.pose.mmpose_backend.MMPoseWholeBody"
    with pytest.raises(MissingInputError, match=Path(spec["init_args"]["pose_weights"]).name):
        build_estimator(spec)
    args = dict(spec["init_args"], pose_weights=None, cfg_options=SMALL_POSE, detector=None)
    estimator = build_estimator({"class_path": spec["class_path"], "init_args": args})
    assert isinstance(estimator, MMPoseWholeBody) and estimator.detector is None


@pytest.mark.slow
def test_with_detector(tmp_path):
    """RTMDet-m person detector (random weights, at most 3 boxes a frame) -> people sorted by area,
    boxes inside the frame; its weights round-trip through a .pth too."""
    torch.manual_seed(0)
    detector = Detector(config=DEFAULT_DETECTOR_CONFIG, weights=None, score_threshold=0.0, nms_threshold=0.99,
                        cfg_options=SMALL_DETECTOR)  # fmt: skip
    estimator = pose_estimator(detector=detector, batch_size=4)
    assert estimator.detector_device == torch.device("cpu")
    frames = frames_of([(240, 320), (300, 200)], seed=4)
    people = estimator(frames)
    assert len(people) == 2 and sum(len(p) for p in people) >= 1
    for persons, frame in zip(people, frames, strict=True):
        assert len(persons) <= 3
        areas = [p.area for p in persons]
        assert areas == sorted(areas, reverse=True)
        for person in persons:
            assert 0.0 <= person.box_score <= 1.0
            check_person(person, frame)
    path = tmp_path / "rtmdet.pth"
    torch.save(
        {"meta": {"dataset_meta": {"classes": ("person",)}}, "state_dict": estimator._det.state_dict()}, path
    )
    again = pose_estimator(seed=5, detector=Detector(**{**detector.__dict__, "weights": str(path)}))
    for key, value in again._det.state_dict().items():
        torch.testing.assert_close(value, estimator._det.state_dict()[key], rtol=0, atol=0, msg=key)
    boxes, scores = again.detect(frames[:1])[0]
    ref_boxes, ref_scores = estimator.detect(frames[:1])[0]
    np.testing.assert_allclose(boxes, ref_boxes, atol=1e-3)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


def test_mmcv_ops_built():
    """mmcv's compiled ops load (the extra builds them from source): NMS on the CPU."""
    from mmcv.ops import nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    dets, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert isinstance(mmcv_has_cuda_ops(), bool)
