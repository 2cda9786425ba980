"""The segment checks of csg-data preprocess on hand-built tracks and audio with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from csg_lightning.io.validation import InputError
from csg_lightning.preprocess.qc import CHECK_NAMES, QCConfig, rms_db, run_checks, split_segment
from csg_lightning.preprocess.segments import SpeakerTrack
from csg_lightning.preprocess.speaker_track import empty_track

W, H = 200, 100
SPF = 640  # audio samples per 25 fps frame at 16 kHz


def good_track(t: int = 100) -> SpeakerTrack:
    """Every frame: one confident speaker (scores 0.9) with all points at the frame centre."""
    track = empty_track(t)
    track.keypoints[:] = (W / 2, H / 2)
    track.scores[:] = 0.9
    track.boxes[:] = (50, 10, 150, 90)
    track.box_scores[:] = 0.95
    track.num_persons[:] = 1
    return track


def speech(t: int, loud_frames: int | None = None, db: float = -20.0) -> np.ndarray:
    """t frames of audio; the first ``loud_frames`` (default all) at a ``db`` dBFS RMS sine, the rest silent."""
    n = t * SPF
    sine = np.sqrt(2) * 10 ** (db / 20) * np.sin(2 * np.pi * 200 * np.arange(n) / 16000)
    loud = t if loud_frames is None else loud_frames
    sine[loud * SPF :] = 0.0
    return sine.astype(np.float32)


def check(track, audio=None, video_duration=10.0, audio_duration=10.0, **cfg) -> dict:
    audio = speech(len(track)) if audio is None else audio
    results = run_checks(track, audio, W, H, video_duration, audio_duration, QCConfig(**cfg))
    return {r.name: r for r in results}


def test_a_good_segment_passes_every_check_in_order():
    results = run_checks(good_track(), speech(100), W, H, 10.0, 10.0, QCConfig(lip_sync=False))
    assert [r.name for r in results] == [n for n in CHECK_NAMES if n != "lip_sync"]
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    assert all(isinstance(r.value, float) and isinstance(r.detail, str) for r in results)


def test_min_and_max_length():
    short, exact = check(good_track(49), min_seconds=2.0), check(good_track(50), min_seconds=2.0)
    assert not short["min_length"].passed and short["min_length"].value == pytest.approx(1.96)
    assert exact["min_length"].passed and exact["min_length"].threshold == 2.0
    assert check(good_track(75), min_seconds=1.0, max_seconds=3.0)["max_length"].passed
    long = check(good_track(76), min_seconds=1.0, max_seconds=3.0)["max_length"]
    assert not long.passed and long.value == pytest.approx(3.04)


def test_single_speaker():
    def with_second(frames: int, ratio: float, score: float):
        track = good_track(50)
        track.num_persons[:frames] = 2
        track.second_area_ratio[:frames] = ratio
        track.second_box_score[:frames] = score
        return check(track, second_person_area_ratio=0.25, second_person_score=0.5,
                     second_person_max_fraction=0.1)["single_speaker"]  # fmt: skip

    at_limit = with_second(5, 0.25, 0.5)  # 5/50 frames, at both thresholds: counted, fraction 0.1 allowed
    assert at_limit.passed and at_limit.value == pytest.approx(0.1)
    over = with_second(6, 0.25, 0.5)
    assert not over.passed and over.value == pytest.approx(0.12)
    assert with_second(50, 0.2, 0.9).passed  # a confident but small second person (background)
    assert with_second(50, 0.9, 0.4).passed  # a large but unconfident one (a false detection)
    assert not with_second(50, 1.0, 0.9).passed


def test_person_present():
    track = good_track(100)
    track.num_persons[:5] = 0
    res = check(track, min_person_fraction=0.95)["person_present"]
    assert res.passed and res.value == pytest.approx(0.95)
    track.num_persons[:6] = 0
    res = check(track, min_person_fraction=0.95)["person_present"]
    assert not res.passed and res.value == pytest.approx(0.94)


def test_body_confidence_over_speaker_frames():
    track = good_track(20)
    track.scores[:, :13] = 0.5
    track.scores[:, 17] = 0.5
    track.scores[:, 18:] = 0.0  # legs, face, hands do not count
    track.num_persons[10:] = 0
    track.scores[10:] = 0.0  # frames without a speaker are left out of the mean
    res = check(track, min_body_score=0.5, min_person_fraction=0.0)["body_confidence"]
    assert res.passed and res.value == pytest.approx(0.5)
    track.scores[:10, 0] = 0.36  # mean over 14 points: (13 * 0.5 + 0.36) / 14 = 0.49
    res = check(track, min_body_score=0.5, min_person_fraction=0.0)["body_confidence"]
    assert not res.passed and res.value == pytest.approx(0.49)
    assert check(empty_track(20), min_person_fraction=0.0)["body_confidence"].value == 0.0


def test_hand_confidence():
    track = good_track(10)
    track.scores[:, 92:] = 0.375
    res = check(track, min_hand_score=0.375)["hand_confidence"]
    assert res.passed and res.value == 0.375
    track.scores[:, 113:] = 0.25  # one hand lower: mean 0.3125
    res = check(track, min_hand_score=0.375)["hand_confidence"]
    assert not res.passed and res.value == pytest.approx(0.3125)


def test_in_frame():
    cfg = dict(in_frame_margin=0.1, min_in_frame_fraction=0.9)  # margin 10 px of the 100 px side
    track = good_track(10)
    track.keypoints[:, 100] = (10.0, 50.0)  # exactly at the margin: inside
    track.keypoints[:, 5] = (W - 11.0, H - 11.0)  # the far side's margin (x <= 189, y <= 89)
    track.keypoints[:, 20] = (-50.0, 50.0)  # a leg point: not checked
    track.keypoints[:, 120] = (-80.0, 500.0)  # a hand point far outside ...
    track.scores[:, 120] = 0.1  # ... but unconfident: ignored
    res = check(track, **cfg)["in_frame"]
    assert res.passed and res.value == 1.0
    track.keypoints[0, 100] = (9.5, 50.0)  # one frame with a confident point in the margin: 0.9
    res = check(track, **cfg)["in_frame"]
    assert res.passed and res.value == pytest.approx(0.9)
    track.scores[1, :] = 0.1  # a speaker frame with nothing confident fails too: 0.8
    res = check(track, **cfg)["in_frame"]
    assert not res.passed and res.value == pytest.approx(0.8)
    track.num_persons[1] = 0  # ... unless it has no speaker (person_present's business): 8 / 9
    assert check(track, **cfg)["in_frame"].value == pytest.approx(8 / 9)


def test_speech_present_and_its_measure():
    full_scale = np.sin(2 * np.pi * 200 * np.arange(SPF * 3) / 16000)
    assert np.allclose(rms_db(full_scale), -3.0103, atol=1e-3)
    assert np.allclose(rms_db(speech(2, db=-39.0)), -39.0, atol=1e-3)
    assert rms_db(np.zeros(SPF * 2 + 5)).tolist() == [-200.0, -200.0]  # partial frame dropped
    res = check(
        good_track(10), speech(10, loud_frames=3, db=-39.0), silence_db=-40.0, min_speech_fraction=0.3
    )
    assert res["speech_present"].passed and res["speech_present"].value == pytest.approx(0.3)
    res = check(good_track(10), speech(10, loud_frames=2), silence_db=-40.0, min_speech_fraction=0.3)
    assert not res["speech_present"].passed and res["speech_present"].value == pytest.approx(0.2)
    res = check(good_track(10), speech(10, db=-41.0), silence_db=-40.0)  # quiet everywhere
    assert not res["speech_present"].passed and res["speech_present"].value == 0.0


def test_av_duration():
    assert check(good_track(10), video_duration=10.0, audio_duration=10.25, max_av_offset_seconds=0.25)[
        "av_duration"
    ].passed
    res = check(good_track(10), video_duration=10.0, audio_duration=10.26, max_av_offset_seconds=0.25)[
        "av_duration"
    ]
    assert not res.passed and res.value == pytest.approx(0.26)
    res = check(good_track(10), video_duration=10.0, audio_duration=None)["av_duration"]
    assert not res.passed and res.value == 10.0


def test_lip_sync_only_when_enabled():
    t = 50
    envelope = 0.5 + 0.5 * np.sin(np.arange(t) * 2 * np.pi / 12)  # syllable-rate loudness
    audio = np.repeat(0.02 + 0.1 * envelope, SPF) * np.sin(2 * np.pi * 200 * np.arange(t * SPF) / 16000)
    track = good_track(t)
    up, low = 24 + 62, 24 + 66
    track.keypoints[:, up] = np.stack([np.full(t, 100.0), 50.0 - 5 * envelope], -1)
    track.keypoints[:, low] = np.stack([np.full(t, 100.0), 50.0 + 5 * envelope], -1)
    assert "lip_sync" not in check(track, audio.astype(np.float32))
    res = check(track, audio.astype(np.float32), lip_sync=True, min_lip_sync=0.1)["lip_sync"]
    assert res.passed and res.value > 0.95
    track.keypoints[:, [up, low], 1] = track.keypoints[::-1][:, [up, low], 1]  # opening out of step
    shifted = check(track, audio.astype(np.float32), lip_sync=True, min_lip_sync=0.1)["lip_sync"]
    assert shifted.value < res.value - 0.5
    frozen = good_track(t)  # a still mouth: correlation undefined -> 0
    res = check(frozen, audio.astype(np.float32), lip_sync=True, min_lip_sync=0.1)["lip_sync"]
    assert not res.passed and res.value == 0.0
    assert list(check(track, audio.astype(np.float32), lip_sync=True)) == list(CHECK_NAMES)


def test_split_segment():
    assert split_segment(0, 100, 30, 10) == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert split_segment(10, 71, 30, 10) == [(10, 31), (31, 51), (51, 71)]  # 61 -> 21 + 20 + 20
    assert split_segment(5, 35, 30, 10) == [(5, 35)]  # not longer than max: whole
    assert split_segment(0, 8, 5, 10) == [(0, 8)]  # shorter than min_frames: whole (min_length rejects it)
    pieces = split_segment(3, 1003, 250, 100)
    assert [b - a for a, b in pieces] == [250] * 4 and pieces[0][0] == 3 and pieces[-1][1] == 1003
    pieces = split_segment(0, 751, 250, 100)
    assert [b - a for a, b in pieces] == [188, 188, 188, 187]
    assert all(b0 == a1 for (_, b0), (a1, _) in zip(pieces[:-1], pieces[1:], strict=True))
    with pytest.raises(ValueError, match="max_frames"):
        split_segment(0, 10, 0, 0)


def test_qc_config_errors_name_the_field():
    with pytest.raises(InputError, match="'max_seconds'"):
        QCConfig(min_seconds=10.0, max_seconds=5.0)
    with pytest.raises(InputError, match="'min_person_fraction'"):
        QCConfig(min_person_fraction=1.5)
    with pytest.raises(InputError, match="'hand_points'"):
        QCConfig(hand_points=["paws"])
