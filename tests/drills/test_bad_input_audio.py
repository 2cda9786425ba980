"""Bad speech audio: refused by ``read_audio`` and by ``sample-skeleton --audio`` before any model loads."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from bad_inputs import assert_names, expect_exit, tone, write_float_wav

import csg_lightning.io.audio as audio_io
from csg_lightning.generation.sample_skeleton import main as sample_skeleton
from csg_lightning.io.audio import read_audio
from csg_lightning.io.mp4 import write_mp4
from csg_lightning.io.validation import InputError, MissingInputError


def _nan_wav(path):
    samples = tone(1.0)
    samples[[100, 5000, 9000]] = np.nan
    return write_float_wav(path, samples)


def _inf_wav(path):
    samples = tone(1.0)
    samples[321] = np.inf
    return write_float_wav(path, samples)


def _header_only_wav(path):
    return write_float_wav(path, np.zeros(0, np.float32))


def _garbage_wav(path):
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVE" + bytes(range(256)) * 8)
    return path


def _zero_bytes(path):
    path.write_bytes(b"")
    return path


def _folder(path):
    path.mkdir()
    return path


def _silent_video(path):
    return write_mp4(path.with_suffix(".mp4"), np.zeros((5, 32, 32, 3), np.uint8), fps=25)


@pytest.mark.parametrize(
    "make, name, error, expected",
    [
        (_nan_wav, "nan.wav", InputError, r"3 NaN/inf sample\(s\) \(first at sample 100\), expected finite"),
        (_inf_wav, "inf.wav", InputError, r"1 NaN/inf sample\(s\) \(first at sample 321\)"),
        (_header_only_wav, "empty.wav", InputError, "holds no samples"),
        (_garbage_wav, "garbage.wav", InputError, "not a readable audio file"),
        (_zero_bytes, "zero.wav", InputError, r"the file is empty \(0 bytes\)"),
        (_folder, "folder.wav", InputError, "is a directory"),
        (lambda p: p, "missing.wav", MissingInputError, "file not found"),
        (_silent_video, "silent.mp4", InputError, "has no audio track"),
    ],
    ids=["nan", "inf", "no-samples", "garbage", "zero-bytes", "directory", "missing", "video-without-audio"],
)
def test_read_audio_refuses(tmp_path, make, name, error, expected):
    path = make(tmp_path / name)
    with pytest.raises(error, match=expected) as info:
        read_audio(path, what="--audio")
    assert type(info.value) is error
    assert_names(str(info.value), "--audio", path)


def test_missing_audio_is_still_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_audio(tmp_path / "none.wav")


def test_overlong_audio_is_refused_before_decoding(tmp_path, monkeypatch):
    assert audio_io.MAX_AUDIO_SECONDS == 3600.0  # the documented maximum: one hour
    monkeypatch.setattr(audio_io, "MAX_AUDIO_SECONDS", 1.0)
    path = tmp_path / "long.wav"
    sf.write(path, tone(2.5), 16000, subtype="PCM_16")
    monkeypatch.setattr(audio_io.sf, "read", lambda *a, **k: pytest.fail("decoded an over-long file"))
    with pytest.raises(InputError, match=r"lasts 2.5 s, longer than the 1 s maximum") as info:
        read_audio(path, what="--audio")
    assert_names(str(info.value), path)


def _sample_argv(ckpt, audio, out):
    return ["--ckpt", str(ckpt), "--audio", str(audio), "--out", str(out), "--device", "cpu", "--size", "64"]


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: _nan_wav(p / "nan.wav"), "NaN/inf sample"),
        (lambda p: write_float_wav(p / "blip.wav", tone(0.01)), "shorter than one skeleton frame"),
        (lambda p: _garbage_wav(p / "garbage.wav"), "not a readable audio file"),
    ],
    ids=["nan", "shorter-than-a-frame", "garbage"],
)
def test_sample_skeleton_refuses_bad_audio_before_loading(
    tmp_path, stage1_checkpoint, no_stage1_loading, make, expected
):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    audio = make(inputs)
    message = expect_exit(sample_skeleton, _sample_argv(stage1_checkpoint, audio, out / "clip.mp4"),
                          "sample-skeleton", "--audio", audio, expected, folder=out)  # fmt: skip
    assert no_stage1_loading.calls == 0, message


def test_sample_skeleton_refuses_overlong_audio(tmp_path, stage1_checkpoint, no_stage1_loading, monkeypatch):
    monkeypatch.setattr(audio_io, "MAX_AUDIO_SECONDS", 1.0)
    audio = tmp_path / "speech.wav"
    sf.write(audio, tone(1.6), 16000, subtype="PCM_16")
    out = tmp_path / "out"
    out.mkdir()
    expect_exit(sample_skeleton, _sample_argv(stage1_checkpoint, audio, out / "clip.mp4"),
                "--audio", audio, "longer than the 1 s maximum", folder=out)  # fmt: skip
