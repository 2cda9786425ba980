"""`csg-data pose-image`: a photo (a demo-corpus frame) -> reference .npz (+ .png) that drives sample-skeleton."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pose_onnx_models import constant_detector, constant_pose_model, expected_pixels, to_letterbox

from csg_lightning.data_cli import main as csg_data
from csg_lightning.generation.sample_skeleton import load_reference
from csg_lightning.generation.sample_skeleton import main as sample_skeleton
from csg_lightning.pose.photo_reference import SIMILAR_AREA_RATIO

K = np.arange(133)
BINS_X = 200 + (37 * K) % 180  # inside the crop's middle
BINS_Y = 150 + (53 * K) % 400
PEAKS = np.where(K >= 91, 1.2, 0.85).astype(np.float32)  # hands above 1, as DWPose's
SPEAKER = (150.0, 60.0, 370.0, 500.0)
LEFT, RIGHT = (40.0, 80.0, 240.0, 480.0), (270.0, 90.0, 460.0, 470.0)  # area ratio 0.90


@pytest.fixture(scope="module")
def photo(demo_corpus_video, tmp_path_factory):
    """Frame 0 of a demo-corpus clip, saved as a PNG photo."""
    import decord

    video = sorted(demo_corpus_video.glob("*/video.mp4"))[0]
    frame = decord.VideoReader(str(video))[0].asnumpy()
    path = tmp_path_factory.mktemp("photo") / "speaker.png"
    Image.fromarray(frame).save(path)
    return path


@pytest.fixture(scope="module")
def models(photo, tmp_path_factory):
    height, width = np.asarray(Image.open(photo)).shape[:2]
    root = tmp_path_factory.mktemp("pose_image_models")
    return {
        "pose": constant_pose_model(root / "dw-ll_ucoco_384.onnx", BINS_X, BINS_Y, PEAKS),
        "unsure": constant_pose_model(root / "unsure.onnx", BINS_X, BINS_Y, np.full(133, 0.2, np.float32)),
        "one": constant_detector(root / "one.onnx", to_letterbox([(*SPEAKER, 0.95, 0, 0.95)], height, width)),
        "two": constant_detector(
            root / "two.onnx", to_letterbox([(*LEFT, 0.9, 0, 0.9), (*RIGHT, 0.95, 0, 0.95)], height, width)
        ),
        "none": constant_detector(root / "none.onnx", [(100, 100, 300, 300, 0.99, 7, 0.99)]),  # a truck
    }


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_stage1_checkpoint):
    """A real (tiny) Stage 1 checkpoint after one training step (tests/conftest.py)."""
    return tiny_stage1_checkpoint


def _expected(box) -> tuple[np.ndarray, np.ndarray]:
    """The 134-point reference the constant models give for ``box``."""
    from csg_lightning.skeleton.layout import add_neck

    return add_neck(expected_pixels(box, BINS_X, BINS_Y), np.clip(PEAKS, 0, 1))


def test_photo_to_reference_drives_sample_skeleton(photo, models, tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "refs" / "ref.npz"
    csg_data(["pose-image", str(photo), "--out", str(out), "--detector", str(models["one"]),
              "--pose", str(models["pose"]), "--device", "cpu"])  # fmt: skip
    assert "person 0 of 1" in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == ["ref.npz", "ref.png"]  # no temporaries left
    keypoints, scores = _expected(SPEAKER)
    with np.load(out) as data:
        assert set(data.files) == {"keypoints", "scores", "fps"} and int(data["fps"]) == 25
        assert data["keypoints"].shape == (1, 134, 2) and data["keypoints"].dtype == np.float32
        assert data["scores"].shape == (1, 134) and data["scores"].dtype == np.float32
        np.testing.assert_allclose(data["keypoints"][0], keypoints, atol=1e-2)
        np.testing.assert_allclose(data["scores"][0], scores, atol=1e-6)
        assert data["scores"].max() == 1.0  # the hands' 1.2 clipped
    kp, sc = load_reference(out)  # what sample-skeleton --ref reads
    np.testing.assert_allclose(kp, keypoints, atol=1e-2)
    picture = np.asarray(Image.open(out.with_suffix(".png")))
    assert picture.shape == (1080, 1080, 3)  # the 512 x 512 photo, enlarged for the preview
    photo_only = cv2.resize(np.asarray(Image.open(photo)), (1080, 1080), interpolation=cv2.INTER_CUBIC) * 0.5
    drawn = (picture != photo_only.astype(np.uint8)).any(-1)
    assert 0.002 < drawn.mean() < 0.2  # the skeleton is on the dimmed photo

    audio = tmp_path / "speech.wav"
    import soundfile as sf

    t = np.arange(round(0.8 * 16000)) / 16000
    sf.write(audio, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    video = tmp_path / "sample.mp4"
    assert sample_skeleton(["--ckpt", str(tiny_checkpoint), "--audio", str(audio), "--out", str(video),
                            "--ref", str(out), "--steps", "2", "--size", "64", "--device", "cpu"]) == 0  # fmt: skip
    with np.load(video.with_suffix(".npz")) as data:
        legs = data["keypoints"][:, 13:17]
    assert legs.shape == (20, 4, 2)  # the model does not generate legs: the reference's are carried
    np.testing.assert_allclose(legs, np.broadcast_to(keypoints[13:17], legs.shape), atol=1e-3)


def test_estimator_yaml_and_person_choice(photo, models, tmp_path):
    spec = tmp_path / "estimator.yaml"
    spec.write_text(
        "estimator:\n  class_path: csg_lightning.pose.dwpose_onnx.DWPoseONNX\n  init_args:\n"
        f"    detector: {models['two']}\n    pose: {models['pose']}\n    batch_size: 2\n"
    )
    out = tmp_path / "right.npz"
    csg_data(["pose-image", str(photo), "--out", str(out), "--estimator", str(spec), "--person", "1"])
    with np.load(out) as data:  # person 1 = the smaller one (RIGHT)
        np.testing.assert_allclose(data["keypoints"][0], _expected(RIGHT)[0], atol=1e-2)
    with pytest.raises(SystemExit, match=r"--person 2 is out of range: 2 person\(s\) found"):
        csg_data(["pose-image", str(photo), "--out", str(out), "--estimator", str(spec), "--person", "2"])


def test_errors_name_the_file(photo, models, tmp_path, monkeypatch):
    out = str(tmp_path / "ref.npz")
    pose = ["--pose", str(models["pose"])]
    with pytest.raises(SystemExit, match=rf"image {photo}: no person found"):
        csg_data(["pose-image", str(photo), "--out", out, "--detector", str(models["none"]), *pose])
    with pytest.raises(SystemExit, match=rf"image {photo}: no person found \(1 detection\(s\) below"):
        csg_data(["pose-image", str(photo), "--out", out, "--pose", str(models["unsure"])])  # whole photo
    assert 0.9 > SIMILAR_AREA_RATIO
    with pytest.raises(SystemExit, match=rf"image {photo}: 2 people of similar size.*--person K"):
        csg_data(["pose-image", str(photo), "--out", out, "--detector", str(models["two"]), *pose])
    text = tmp_path / "notes.png"
    text.write_text("not an image\n")
    with pytest.raises(SystemExit, match=rf"image {text}: not an image"):
        csg_data(["pose-image", str(text), "--out", out, *pose])
    with pytest.raises(SystemExit, match=rf"image {tmp_path / 'gone.jpg'}: file not found"):
        csg_data(["pose-image", str(tmp_path / "gone.jpg"), "--out", out, *pose])
    with pytest.raises(SystemExit, match=r"pose model .*missing\.onnx: file not found.*yzd-v/DWPose"):
        csg_data(["pose-image", str(photo), "--out", out, "--pose", str(tmp_path / "missing.onnx")])
    with pytest.raises(SystemExit, match="--out .*expected a path ending in .npz"):
        csg_data(["pose-image", str(photo), "--out", str(tmp_path / "ref.json"), *pose])
    monkeypatch.chdir(Path(__file__).parents[1])  # default: experiments/pose/dwpose_onnx.yaml
    if not Path("weights/dwpose/yolox_l.onnx").exists():
        with pytest.raises(SystemExit, match=r"detector model weights/dwpose/yolox_l\.onnx: file not found"):
            csg_data(["pose-image", str(photo), "--out", out])
    with pytest.raises(SystemExit, match="--estimator and --pose/--detector"):
        csg_data(["pose-image", str(photo), "--out", out, "--estimator", "x.yaml", *pose])
    assert not (tmp_path / "ref.npz").exists()
