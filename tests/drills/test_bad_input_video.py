"""Stage 2 generation (``csg_lightning.video.generate``): bad reference photos, outputs and options are
refused before the checkpoint is loaded, and ``generate_video`` checks its inputs before sampling."""

from __future__ import annotations

import numpy as np
import pytest
from bad_inputs import expect_exit, expect_usage_error, save_npz, skeleton, tone, truncate, write_float_wav
from PIL import Image

from csg_lightning.io.validation import InputError
from csg_lightning.video.generate import generate_video
from csg_lightning.video.generate import main as generate


def _photo(path, size=(64, 48)):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def inputs(tmp_path):
    """A good photo and pose file, and an empty output folder."""
    kp, sc = skeleton(4)
    (tmp_path / "out").mkdir()
    return {
        "photo": _photo(tmp_path / "photo.png"),
        "poses": save_npz(tmp_path / "poses.npz", keypoints=kp, scores=sc),
        "out": tmp_path / "out",
    }


def _argv(ckpt, reference, poses, out, *extra):
    return ["--checkpoint", str(ckpt), "--reference", str(reference), "--poses", str(poses),
            "--out", str(out), "--device", "cpu", *extra]  # fmt: skip


def _garbage_png(path):
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    return path


def _text_as_jpg(path):
    path.write_text("this is not a photo")
    return path


def _truncated_png(path):
    return truncate(_photo(path, (256, 256)), 0.5)


def _truncated_jpeg(path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(path, quality=90)
    return truncate(path, 0.5)


def _tiny_photo(path):
    return _photo(path, (8, 8))


def _folder(path):
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "make, name, expected",
    [
        (lambda p: p, "missing.png", "file not found"),
        (_garbage_png, "garbage.png", "not an image (expected a PNG, JPEG"),
        (_text_as_jpg, "text.jpg", "not an image"),
        (_truncated_png, "cut.png", "the image is damaged or truncated"),
        (_truncated_jpeg, "cut.jpg", "the image is damaged or truncated"),
        (_tiny_photo, "tiny.png", "the image is 8x8, expected at least 16x16"),
        (_folder, "photos.png", "is a directory"),
    ],
    ids=["missing", "garbage-png", "text", "truncated-png", "truncated-jpeg", "8x8", "directory"],
)
def test_generate_refuses_a_bad_reference_photo(
    tmp_path, inputs, video_checkpoint, no_video_loading, make, name, expected
):
    photo = make(tmp_path / name)
    argv = _argv(video_checkpoint, photo, inputs["poses"], inputs["out"] / "video.mp4")
    expect_exit(generate, argv, "generate: --reference", photo, expected, folder=inputs["out"])
    assert no_video_loading.calls == 0


def test_generate_refuses_bad_outputs(tmp_path, inputs, video_checkpoint, no_video_loading):
    out = inputs["out"]
    (out / "taken.mp4").mkdir()
    (out / "file").write_text("a file where a folder should be")
    before = ["file", "taken.mp4"]
    for target, expected in [
        (out / "taken.mp4", "is a directory, expected a .mp4 file path"),
        (out / "video.avi", "expected a path ending in .mp4"),
        (out / "file" / "video.mp4", "is a file, so the output folder cannot be created"),
    ]:
        argv = _argv(video_checkpoint, inputs["photo"], inputs["poses"], target)
        expect_exit(generate, argv, "--out", target, expected, folder=out, before=before)
    assert no_video_loading.calls == 0


def test_generate_refuses_bad_audio(tmp_path, inputs, video_checkpoint, no_video_loading):
    samples = tone(0.5)
    samples[10] = np.nan
    audio = write_float_wav(tmp_path / "speech.wav", samples)
    argv = _argv(
        video_checkpoint, inputs["photo"], inputs["poses"], inputs["out"] / "v.mp4", "--audio", str(audio)
    )
    expect_exit(generate, argv, "--audio", audio, "NaN/inf sample", folder=inputs["out"])
    assert no_video_loading.calls == 0


@pytest.mark.parametrize("steps", ["0", "-3", "two"])
def test_generate_refuses_bad_steps(inputs, video_checkpoint, no_video_loading, capsys, steps):
    argv = _argv(
        video_checkpoint, inputs["photo"], inputs["poses"], inputs["out"] / "v.mp4", "--steps", steps
    )
    expect_usage_error(generate, argv, "--steps", capsys, r"expected an integer >= 1")
    assert not list(inputs["out"].iterdir()) and no_video_loading.calls == 0


def test_generate_refuses_an_unknown_device(inputs, video_checkpoint, no_video_loading):
    argv = _argv(video_checkpoint, inputs["photo"], inputs["poses"], inputs["out"] / "v.mp4")
    argv[argv.index("--device") + 1] = "gpu0"
    expect_exit(generate, argv, "--device", "gpu0", "not a torch device", folder=inputs["out"])


class _NoSampling:
    """A model stand-in for generate_video: it has the hparams it reads and must never be sampled."""

    class hparams:  # noqa: N801
        image_height, image_width, swap_rb = 64, 64, True

    def sample_latents(self, *args, **kwargs):
        raise AssertionError("sampling started although an input is bad")

    decode = sample_latents


@pytest.mark.parametrize(
    "change, field, expected",
    [
        ({"num_steps": 0}, "num_steps", "expected an integer >= 1, got 0"),
        ({"out_path": "OUT_DIR"}, "out_path", "is a directory"),
        ({"poses": "NAN"}, "poses", "field 'keypoints' holds 1 NaN/inf"),
        (
            {"reference_pose": "SHAPE"},
            "reference_pose",
            "field 'keypoints' has shape [133, 2], expected [134, 2]",
        ),
        ({"audio": "NAN_WAV"}, "audio file", "NaN/inf sample"),
        ({"audio": np.array([0.0, np.inf])}, "audio", "field 'samples' holds 1 NaN/inf"),
        (
            {"reference_image": np.zeros((64, 64), np.uint8)},
            "reference image",
            "expected uint8 [H, W, 3] RGB",
        ),
    ],
    ids=["steps", "out-dir", "nan-poses", "ref-pose-shape", "nan-wav", "inf-samples", "gray-array"],
)
def test_generate_video_checks_inputs_before_sampling(tmp_path, change, field, expected):
    kp, sc = skeleton(4)
    args = {"reference_image": np.zeros((64, 64, 3), np.uint8), "poses": (kp, sc), "audio": None,
            "reference_pose": None, "out_path": tmp_path / "out" / "video.mp4", "num_steps": 2}  # fmt: skip
    (tmp_path / "out").mkdir()
    for key, value in change.items():
        if isinstance(value, str) and value == "OUT_DIR":
            value = tmp_path / "out" / "dir.mp4"
            value.mkdir()
        elif isinstance(value, str) and value == "NAN":
            bad = kp.copy()
            bad[1, 2, 0] = np.nan
            value = (bad, sc)
        elif isinstance(value, str) and value == "SHAPE":
            value = (kp[0, :133], sc[0, :133])
        elif isinstance(value, str) and value == "NAN_WAV":
            samples = tone(0.2)
            samples[3] = np.nan
            value = write_float_wav(tmp_path / "speech.wav", samples)
        args[key] = value
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    with pytest.raises(InputError) as info:
        generate_video(args.pop("reference_image"), args.pop("poses"), args.pop("audio"), model=_NoSampling(),
                       **args)  # fmt: skip
    assert field in str(info.value) and expected in str(info.value), str(info.value)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before
