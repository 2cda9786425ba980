"""The raw test footage itself: barcodes survive H.264, the truth lands on the drawn figures, the
special videos are what they claim (a cut, two people, silence, no audio, a cut-off file)."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
import raw_footage as rf

from csg_lightning.data.corpus import make_clip
from csg_lightning.data.corpus.figure import background
from csg_lightning.data.corpus.speaker import make_speaker
from csg_lightning.io.audio import read_audio
from csg_lightning.io.mp4 import read_frames
from csg_lightning.pose.estimator import PoseEstimator, build_estimator
from csg_lightning.skeleton.layout import SkeletonLayout as L

SMALL = {"width": 320, "height": 180, "corpus_size": 128}


@pytest.fixture(scope="module")
def speaker(tmp_path_factory):
    footage = rf.one_speaker(tmp_path_factory.mktemp("raw") / "one.mp4", seconds=2.0, tag=3, **SMALL)
    return footage, read_frames(footage.path)


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    footage = rf.two_person(tmp_path_factory.mktemp("raw") / "two.mp4", seconds=(1.2, 1.2), **SMALL)
    return footage, read_frames(footage.path)


def test_rule_names_are_qc_rules():
    from csg_lightning.preprocess.qc import CHECK_NAMES

    assert {rf.MIN_LENGTH, rf.SECOND_PERSON, rf.SILENCE} <= set(CHECK_NAMES)


def test_barcode_bits():
    frame = np.full((16, 200, 3), 128, np.uint8)
    rf.draw_barcode(frame, 5, 2741)
    assert rf.read_barcode(frame) == (5, 2741)
    assert rf.barcode_bits(0, 1)[:2] == [1, 0] and len(rf.barcode_bits(0, 1)) == 18
    with pytest.raises(ValueError, match="no barcode"):
        rf.read_barcode(np.full((16, 200, 3), 128, np.uint8))
    with pytest.raises(ValueError, match="index"):
        rf.barcode_bits(0, 4096)


def test_barcode_round_trip_through_mp4(speaker):
    footage, frames = speaker
    assert footage.num_frames == 60 and frames.shape == (60, 180, 320, 3)
    with av.open(str(footage.path)) as container:
        assert float(container.streams.video[0].average_rate) == 30.0
        assert container.streams.audio[0].sample_rate == 16000
    assert [rf.read_barcode(f) for f in frames] == [(3, i) for i in range(60)]


def test_estimator_returns_the_truth(speaker):
    footage, frames = speaker
    estimator = rf.GroundTruthEstimator(footage)
    assert isinstance(estimator, PoseEstimator)
    picks = [0, 17, 59]
    people = estimator(frames[picks])
    assert [len(p) for p in people] == [1, 1, 1] and estimator.calls == 3
    for i, persons in zip(picks, people, strict=True):
        np.testing.assert_array_equal(persons[0].keypoints, footage.keypoints[i, 0])
        np.testing.assert_array_equal(persons[0].scores, footage.scores[i, 0])
    # Corpus frame floor(i * 25 / 30), scaled and offset into the raw frame.
    clip = make_clip(0, 0, 0, 2.2, 128)
    x, y = footage.shots[0].figures[0].offset
    expected = (clip.keypoints[int(59 * 25 / 30)] + 0.5) * footage.scale - 0.5 + [x, y]
    np.testing.assert_allclose(footage.keypoints[59, 0], expected, atol=1e-4)
    with pytest.raises(ValueError, match="no barcode"):
        estimator(np.zeros((1, 180, 320, 3), np.uint8))


def test_estimator_from_truth_file(speaker, tmp_path):
    footage, frames = speaker
    truth = footage.save_truth(tmp_path / "one_truth.npz")
    spec = {"class_path": "raw_footage.GroundTruthEstimator", "init_args": {"truth_files": [str(truth)]}}
    estimator = build_estimator(spec)
    (person,) = estimator(frames[[30]])[0]
    np.testing.assert_array_equal(person.keypoints, footage.keypoints[30, 0])


def test_truth_lands_on_the_figure(speaker):
    """Confident keypoints sit on pixels the figure changed; random points on its patch mostly do not."""
    footage, frames = speaker
    fig = footage.shots[0].figures[0]
    patch = int(round(footage.corpus_size * footage.scale))
    empty = np.empty((footage.height, footage.width, 3), np.uint8)
    empty[:] = footage.shots[0].room
    backdrop = background(make_speaker(0, fig.speaker_index), footage.corpus_size)
    x0, y0 = fig.offset
    empty[y0 : y0 + patch, x0 : x0 + patch] = cv2.resize(
        backdrop, (patch, patch), interpolation=cv2.INTER_LINEAR
    )
    points = np.concatenate([L.UPPER_BODY, L.FACE, L.HANDS])
    hits, total = 0, 0
    rng = np.random.default_rng(0)
    random_hits = 0
    for i in range(0, footage.num_frames, 6):
        changed = np.abs(frames[i].astype(int) - empty).max(-1) > 40
        changed = cv2.dilate(changed.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # within a pixel
        sure = points[footage.scores[i, 0, points] > 0.8]
        xy = np.round(footage.keypoints[i, 0, sure]).astype(int)
        hits += changed[xy[:, 1], xy[:, 0]].sum()
        total += len(sure)
        r = rng.integers([x0, y0], [x0 + patch, y0 + patch], (len(sure), 2))
        random_hits += changed[r[:, 1], r[:, 0]].sum()
        for wrist in (L.LEFT_WRIST, L.RIGHT_WRIST):
            wx, wy = np.round(footage.keypoints[i, 0, wrist]).astype(int)
            assert changed[wy - 2 : wy + 3, wx - 2 : wx + 3].any(), f"frame {i}: no figure near wrist {wrist}"
    assert total > 500
    assert hits / total > 0.97
    assert random_hits / total < 0.5


def test_hard_cut(tmp_path):
    footage = rf.hard_cut(tmp_path / "cut.mp4", seconds=(1.0, 1.4), **SMALL)
    assert footage.num_frames == 72 and footage.cut_times == [1.0] and footage.cut_frames == [25]
    assert [(s["start"], s["stop"], s["kept"]) for s in footage.expected_segments()] == [
        (0, 25, True),
        (25, 60, True),
    ]
    frames = read_frames(footage.path, [29, 30])
    for frame, shot in zip(frames, footage.shots, strict=True):
        np.testing.assert_allclose(frame[-4, -4], shot.room, atol=4)  # bottom-right corner: the room
    assert footage.shots[0].figures[0].speaker_index != footage.shots[1].figures[0].speaker_index


def test_two_person_segment(two):
    footage, frames = two
    segments = footage.expected_segments()
    assert [s["kept"] for s in segments] == [True, False] and segments[1]["rejected_by"] == [rf.SECOND_PERSON]
    people = rf.GroundTruthEstimator(footage)(frames[[10, 50]])
    assert [len(p) for p in people] == [1, 2]
    a, b = people[1]
    assert 0.8 < b.area / a.area <= 1.0
    assert min(a.box[2], b.box[2]) < max(a.box[0], b.box[0])  # side by side: the boxes do not overlap
    np.testing.assert_array_equal(footage.present.sum(1), [1] * 36 + [2] * 36)


def test_silent_segment_and_no_audio(tmp_path):
    footage = rf.silent_segment(tmp_path / "silent.mp4", seconds=(1.0, 1.0), **SMALL)
    assert [s["rejected_by"] for s in footage.expected_segments()] == [[], [rf.SILENCE]]
    audio = read_audio(footage.path, what="video")
    assert abs(len(audio) - 32000) < 2048
    speech, silence = audio[1600:14400], audio[17600:30400]  # away from the cut and the codec's edges
    assert np.sqrt(np.mean(speech**2)) > 0.01
    assert np.abs(silence).max() < 1e-3

    mute = rf.no_audio(tmp_path / "mute.mp4", seconds=0.5, **SMALL)
    assert mute.expect_skipped and not mute.has_audio
    with av.open(str(mute.path)) as container:
        assert len(container.streams.audio) == 0 and len(container.streams.video) == 1


@pytest.mark.parametrize("index_first", [False, True])
def test_truncated_file(tmp_path, index_first):
    footage = rf.truncated(
        tmp_path / "cut.mp4", seconds=1.0, keep_fraction=0.5, index_first=index_first, **SMALL
    )
    assert footage.expect_skipped and footage.complete_bytes > 10_000
    assert footage.path.stat().st_size == footage.complete_bytes // 2
    assert not (tmp_path / "cut.complete.mp4").exists()
    if not index_first:  # the index (written last) is gone: nothing can be read
        with pytest.raises(av.error.InvalidDataError):
            av.open(str(footage.path))
    else:  # the index lists 30 frames, the data of the later ones is missing
        with av.open(str(footage.path)) as container:
            assert container.streams.video[0].frames == 30
            decoded = sum(1 for _ in container.decode(video=0))
        assert 0 < decoded < 30


def test_layout_errors(tmp_path):
    shot = rf.Shot(1.0, (rf.Figure(0, (0, 0)),))
    with pytest.raises(ValueError, match="covers the barcode"):
        rf.make_footage(tmp_path / "x.mp4", [shot], **SMALL)
    shot = rf.Shot(1.0, (rf.Figure(0, (250, 20)),))
    with pytest.raises(ValueError, match="does not fit"):
        rf.make_footage(tmp_path / "x.mp4", [shot], **SMALL)
