"""Bad skeleton files: ``sample-skeleton --ref`` (one reference skeleton) and ``generate --poses`` /
``--reference-pose`` (Stage 2), refused naming the file and the field before any model loads."""

from __future__ import annotations

import re

import numpy as np
import pytest
from bad_inputs import assert_names, expect_exit, save_npz, skeleton, tone, truncate, write_float_wav

from csg_lightning.generation.sample_skeleton import load_reference
from csg_lightning.generation.sample_skeleton import main as sample_skeleton
from csg_lightning.io.validation import InputError, MissingInputError
from csg_lightning.video.generate import main as generate


def _nan_keypoints(path):
    kp, sc = skeleton()
    kp[7, 1] = np.nan
    return save_npz(path, keypoints=kp, scores=sc)


def _nan_scores(path):
    kp, sc = skeleton(3)
    sc[0, 40] = np.nan
    return save_npz(path, keypoints=kp, scores=sc)


def _scores_above_one(path):
    kp, sc = skeleton()
    sc[3] = 1.5
    return save_npz(path, keypoints=kp, scores=sc)


def _negative_scores(path):
    kp, sc = skeleton()
    sc[9] = -0.2
    return save_npz(path, keypoints=kp, scores=sc)


def _wrong_shape(path):
    return save_npz(path, keypoints=np.zeros((133, 2), np.float32))


def _truncated_npz(path):
    kp, sc = skeleton(50)
    return truncate(save_npz(path, keypoints=kp, scores=sc), 0.6)


def _text_file(path):
    path.write_text("keypoints: not an npz\n")
    return path


def _no_keypoints(path):
    return save_npz(path, pose=np.zeros((134, 2), np.float32))


def _pickled(path):
    return save_npz(path, keypoints=np.array([{"x": 1}, None], dtype=object))


def _single_array(path):
    np.save(path.with_suffix(".npy"), np.zeros((134, 2), np.float32))
    return path.with_suffix(".npy").rename(path)


def _string_keypoints(path):
    return save_npz(path, keypoints=np.full((134, 2), "x"))


REFERENCE_CASES = [
    (_nan_keypoints, r"field 'keypoints' holds 1 NaN/inf value\(s\) \(first at index \(7, 1\)\)"),
    (_nan_scores, r"field 'scores' holds 1 NaN/inf value"),
    (_scores_above_one, r"field 'scores' must lie in \[0, 1\], found \[.*, 1.5\]"),
    (_negative_scores, r"field 'scores' must lie in \[0, 1\], found \[-0.2, .*\]"),
    (_wrong_shape, r"field 'keypoints' has shape \[133, 2\], expected \[134, 2\]"),
    (_truncated_npz, r"not a readable \.npz file \(BadZipFile"),
    (_text_file, r"not a readable \.npz file \(not a zip archive of arrays\)"),
    (_no_keypoints, r"missing array\(s\) \['keypoints'\]; found \['pose'\]"),
    (_pickled, "holds pickled Python objects"),
    (_single_array, r"holds a single array \(\.npy\), expected an \.npz"),
    (_string_keypoints, r"field 'keypoints' has dtype <U1, expected float pixels"),
]
REFERENCE_IDS = ["nan-keypoints", "nan-scores", "scores>1", "scores<0", "shape", "truncated", "text",
                 "no-keypoints", "pickled", "npy", "strings"]  # fmt: skip


@pytest.mark.parametrize("make, expected", REFERENCE_CASES, ids=REFERENCE_IDS)
def test_load_reference_refuses(tmp_path, make, expected):
    path = make(tmp_path / "ref.npz")
    with pytest.raises(InputError, match=expected) as info:
        load_reference(path, "--ref")
    assert_names(str(info.value), "--ref", path)


def test_missing_reference_is_a_file_not_found_error(tmp_path):
    with pytest.raises(MissingInputError, match="file not found"):
        load_reference(tmp_path / "none.npz")


@pytest.mark.parametrize("audio_seconds", [0.3, 2.0], ids=["short-audio", "longer-audio"])
@pytest.mark.parametrize(
    "make", [_nan_keypoints, _nan_scores, _truncated_npz], ids=["nan-kp", "nan-sc", "zip"]
)
def test_sample_skeleton_refuses_a_bad_reference_before_loading(
    tmp_path, stage1_checkpoint, no_stage1_loading, make, audio_seconds
):
    """The landed code wrote NaN keypoints (short audio) or failed inside scipy (longer audio)."""
    ref = make(tmp_path / "ref.npz")
    audio = write_float_wav(tmp_path / "speech.wav", tone(audio_seconds))
    out = tmp_path / "out"
    out.mkdir()
    argv = ["--ckpt", str(stage1_checkpoint), "--audio", str(audio), "--ref", str(ref),
            "--out", str(out / "clip.mp4"), "--device", "cpu"]  # fmt: skip
    expect_exit(sample_skeleton, argv, "sample-skeleton: --ref", ref, folder=out)
    assert no_stage1_loading.calls == 0


# ------------------------------------------------------------------------------------------ Stage 2


def _poses_nan(path):
    kp, sc = skeleton(6)
    kp[4, 100, 0] = np.inf
    return save_npz(path, keypoints=kp, scores=sc)


def _poses_score_frames(path):
    kp, sc = skeleton(6)
    return save_npz(path, keypoints=kp, scores=sc[:-1])


def _poses_no_scores(path):
    kp, _ = skeleton(6)
    return save_npz(path, keypoints=kp)


def _poses_no_frames(path):
    return save_npz(path, keypoints=np.zeros((0, 134, 2), np.float32), scores=np.zeros((0, 134), np.float32))


def _poses_single_frame_shape(path):
    kp, sc = skeleton()
    return save_npz(path, keypoints=kp, scores=sc)


@pytest.mark.parametrize(
    "make, expected",
    [
        (_poses_nan, r"field 'keypoints' holds 1 NaN/inf value\(s\) \(first at index \(4, 100, 0\)\)"),
        (_poses_score_frames, r"field 'scores' has shape \[5, 134\], expected \[6, 134\]"),
        (_poses_no_scores, r"missing array\(s\) \['scores'\]"),
        (_poses_no_frames, r"field 'keypoints' has no frames"),
        (_poses_single_frame_shape, r"field 'keypoints' has shape \[134, 2\], expected \[T, 134, 2\]"),
        (_truncated_npz, "not a readable .npz file"),
    ],
    ids=["inf-keypoints", "score-frames", "no-scores", "no-frames", "not-a-sequence", "truncated"],
)
def test_generate_refuses_bad_poses_before_loading(
    tmp_path, video_checkpoint, no_video_loading, make, expected
):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((64, 48, 3), 128, np.uint8)).save(photo)
    poses = make(tmp_path / "poses.npz")
    out = tmp_path / "out"
    out.mkdir()
    argv = ["--checkpoint", str(video_checkpoint), "--reference", str(photo), "--poses", str(poses),
            "--out", str(out / "video.mp4"), "--device", "cpu"]  # fmt: skip
    message = expect_exit(generate, argv, "generate: --poses", poses, folder=out)
    assert re.search(expected, message), message
    assert no_video_loading.calls == 0


def test_generate_refuses_a_bad_reference_pose(tmp_path, video_checkpoint, no_video_loading):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((64, 48, 3), 128, np.uint8)).save(photo)
    kp, sc = skeleton(4)
    poses = save_npz(tmp_path / "poses.npz", keypoints=kp, scores=sc)
    ref_pose = _scores_above_one(tmp_path / "ref_pose.npz")
    out = tmp_path / "out"
    out.mkdir()
    argv = ["--checkpoint", str(video_checkpoint), "--reference", str(photo), "--poses", str(poses),
            "--reference-pose", str(ref_pose), "--out", str(out / "video.mp4"), "--device", "cpu"]  # fmt: skip
    expect_exit(generate, argv, "--reference-pose", ref_pose, "field 'scores' must lie in [0, 1]", folder=out)
    assert no_video_loading.calls == 0
