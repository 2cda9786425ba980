"""Media layer of ``csg-data preprocess``: probing, the 25 fps frame map, chunked decoding, shot cuts.

Real tiny mp4/mkv files (64x48) whose frames carry their own source frame number as big blocks of
grey levels (survives H.264), so every decoded 25 fps frame can be checked against the exact source
frame that the frame map promises.
"""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest

from csg_lightning.io.mp4 import write_mp4
from csg_lightning.io.validation import InputError, MissingInputError
from csg_lightning.preprocess.decode import VideoFrames
from csg_lightning.preprocess.frame_times import num_target_frames, target_source_indices
from csg_lightning.preprocess.probe import probe_video
from csg_lightning.preprocess.shots import ShotDetector

H, W = 48, 64
LEVELS = np.array([32, 96, 160, 224])  # one base-4 digit per 16x16 block
DIGITS = 6  # frame numbers < 4**6


def id_frame(i: int) -> np.ndarray:
    """RGB uint8 [48, 64, 3]: 3x4 blocks of 16x16; block b shows digit b % 6 of ``i`` in base 4."""
    frame = np.zeros((H, W, 3), np.uint8)
    for b in range(12):
        r, c = divmod(b, 4)
        frame[r * 16 : (r + 1) * 16, c * 16 : (c + 1) * 16] = LEVELS[(i // 4 ** (b % DIGITS)) % 4]
    return frame


def read_id(frame: np.ndarray) -> int:
    """The frame number written by :func:`id_frame` (block centres, nearest grey level)."""
    value = 0
    for b in range(DIGITS):
        r, c = divmod(b, 4)
        mean = frame[r * 16 + 4 : (r + 1) * 16 - 4, c * 16 + 4 : (c + 1) * 16 - 4].mean()
        value += int(np.abs(LEVELS - mean).argmin()) * 4**b
    return value


def write_timed(path, times_ms, fmt="mp4", options=None):
    """Encode id frames 0..N-1 with H.264 at the given presentation times (ms), e.g. a VFR file."""
    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(id_frame(i), format="rgb24")
            frame.pts, frame.time_base = int(t), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# 20 frames at 50 fps, 20 at 25 fps, 20 at ~30 fps, 10 at 10 fps: 2.86 s
VFR_STEPS_MS = np.r_[np.full(20, 20), np.full(20, 40), np.full(20, 33), np.full(10, 100)]
VFR_TIMES_MS = np.r_[0, np.cumsum(VFR_STEPS_MS)[:-1]]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """name -> (path, rate as Fraction or None for VFR, source frame count)."""
    root = tmp_path_factory.mktemp("media")
    speech = (0.1 * np.sin(np.arange(3 * 16000) * 0.05)).astype(np.float32)
    files = {
        "cfr30_audio": (write_mp4(root / "a30.mp4", (id_frame(i) for i in range(90)), fps=30, audio=speech),
                        Fraction(30), 90),
        "cfr24": (write_mp4(root / "a24.mp4", (id_frame(i) for i in range(48)), fps=24), Fraction(24), 48),
        "ntsc": (write_mp4(root / "ntsc.mp4", (id_frame(i) for i in range(60)), fps=30000 / 1001),
                 Fraction(30000, 1001), 60),
        "cfr50": (write_mp4(root / "a50.mp4", (id_frame(i) for i in range(50)), fps=50), Fraction(50), 50),
        "vfr_mp4": (write_timed(root / "vfr.mp4", VFR_TIMES_MS), None, len(VFR_TIMES_MS)),
        "vfr_mkv": (write_timed(root / "vfr.mkv", VFR_TIMES_MS, fmt="matroska"), None, len(VFR_TIMES_MS)),
    }  # fmt: skip
    return files


def expected_indices(rate: Fraction | None, count: int, t_frames: int) -> np.ndarray:
    """Source frame per 25 fps frame from exact arithmetic (independent of the probe)."""
    if rate is None:  # VFR: last frame with time_ms <= 40 k
        return np.searchsorted(VFR_TIMES_MS, 40 * np.arange(t_frames), side="right") - 1
    return np.array([min(int(Fraction(k, 25) * rate), count - 1) for k in range(t_frames)])


# ------------------------------------------------------------------------------------------ frame map


@pytest.mark.parametrize(
    "rate", [Fraction(30), Fraction(30000, 1001), Fraction(50), Fraction(24), Fraction(60)]
)
def test_target_indices_exact_for_constant_rates(rate):
    count = int(600 * rate)  # 10 minutes of source frames
    pts = np.arange(count) / float(rate)
    duration = count / float(rate)
    indices = target_source_indices(pts, duration)
    frames = int(Fraction(count) / rate * 25)  # floor(duration * 25), exactly
    assert len(indices) == num_target_frames(duration) == frames and frames >= 14999
    k = np.arange(frames, dtype=np.int64)
    expected = (k * rate.numerator) // (25 * rate.denominator)  # floor(k / 25 * rate)
    np.testing.assert_array_equal(indices, expected)
    assert indices.dtype == np.int64


def test_target_indices_vfr_and_late_start():
    pts = np.array([0.0, 0.01, 0.05, 0.3, 0.31, 0.5])
    # t = 0, .04, .08, ..., .56 (duration 0.6 -> 15 frames)
    expected = [0, 1, 2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 5, 5]
    np.testing.assert_array_equal(target_source_indices(pts, 0.6), expected)
    # the first frame at 0.1 s: earlier output times clamp to it
    np.testing.assert_array_equal(target_source_indices(np.array([0.1, 0.2]), 0.3), [0, 0, 0, 0, 0, 1, 1])
    # T = floor(duration * 25 + 1e-6): a duration just short of a frame boundary by rounding still counts it
    assert len(target_source_indices(np.array([0.0]), 0.12 - 1e-12)) == 3


def test_target_indices_refuse_bad_pts():
    with pytest.raises(ValueError, match="non-empty"):
        target_source_indices(np.array([]), 1.0)
    with pytest.raises(ValueError, match="presentation order"):
        target_source_indices(np.array([0.0, 0.2, 0.1]), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        target_source_indices(np.array([0.0, np.nan]), 1.0)


# ---------------------------------------------------------------------------------------------- probe


def test_probe_cfr_with_audio(media):
    probe = probe_video(media["cfr30_audio"][0])
    assert (probe.width, probe.height, probe.num_frames) == (W, H, 90)
    assert probe.codec == "h264" and "mp4" in probe.container
    assert probe.fps == pytest.approx(30.0, abs=1e-9) and probe.duration == pytest.approx(3.0, abs=1e-9)
    assert not probe.variable_frame_rate
    assert probe.has_audio and probe.audio_sample_rate == 16000
    assert probe.audio_duration == pytest.approx(3.0, abs=0.07)  # AAC frames of 1024 samples
    np.testing.assert_allclose(probe.source_pts, np.arange(90) / 30, atol=1e-9)
    record = probe.as_dict()
    assert "source_pts" not in record and record["num_frames"] == 90
    json.dumps(record)  # JSON-ready


def test_probe_without_audio_and_other_rates(media):
    probe = probe_video(media["cfr24"][0])
    assert not probe.has_audio and probe.audio_sample_rate is None and probe.audio_duration is None
    assert probe.fps == pytest.approx(24.0, abs=1e-9) and probe.duration == pytest.approx(2.0, abs=1e-9)
    ntsc = probe_video(media["ntsc"][0])
    assert ntsc.fps == pytest.approx(30000 / 1001, abs=1e-9) and not ntsc.variable_frame_rate
    assert ntsc.duration == pytest.approx(60 * 1001 / 30000, abs=1e-9)


@pytest.mark.parametrize("name", ["vfr_mp4", "vfr_mkv"])
def test_probe_variable_frame_rate(media, name):
    probe = probe_video(media[name][0])
    assert probe.variable_frame_rate and probe.num_frames == 70
    np.testing.assert_allclose(probe.source_pts, VFR_TIMES_MS / 1000, atol=1e-9)
    assert probe.fps == pytest.approx(70 / probe.duration)


def test_probe_refuses_bad_files(media, tmp_path):
    with pytest.raises(MissingInputError, match="not found"):
        probe_video(tmp_path / "nothing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty.mp4.*0 bytes"):
        probe_video(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 20)
    with pytest.raises(InputError, match=r"notes.mp4: not a readable video container"):
        probe_video(text)
    wav = tmp_path / "speech.wav"
    import soundfile as sf

    sf.write(wav, np.zeros(16000, np.float32), 16000)
    with pytest.raises(InputError, match=r"speech.wav: the file has no video stream"):
        probe_video(wav)


def test_probe_refuses_a_video_track_without_frames(tmp_path):
    from csg_lightning.io.mp4 import _mux_audio

    path = tmp_path / "no_frames.mp4"
    with av.open(str(path), "w", format="mp4") as container:  # a video track that never gets a frame
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        sound = container.add_stream("aac", rate=16000)
        sound.layout = "mono"
        _mux_audio(container, sound, np.zeros(16000, np.float32), 16000)
    with pytest.raises(InputError, match=r"no_frames.mp4: the file has no video stream"):
        probe_video(path)  # the muxer drops the empty track


def test_a_single_frame_video_has_no_25fps_frames(tmp_path):
    path = write_mp4(tmp_path / "one.mp4", [id_frame(0)], fps=30)
    probe = probe_video(path)
    assert probe.num_frames == 1 and probe.duration == pytest.approx(1 / 30)
    frames = VideoFrames(path, probe)
    assert len(frames) == 0 and list(frames.iter_chunks()) == []


def _cut_half(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def test_probe_refuses_truncated_files(media, tmp_path):
    # mp4 with its index (moov) at the end: half the bytes lose the index -> unreadable
    half = _cut_half(media["cfr30_audio"][0], tmp_path / "half.mp4")
    with pytest.raises(InputError, match=r"half.mp4: not a readable video container, or truncated"):
        probe_video(half)
    # index first (faststart): the header lists 70 frames, about half can be read
    faststart = write_timed(tmp_path / "fs.mp4", VFR_TIMES_MS, options={"movflags": "faststart"})
    assert probe_video(faststart).num_frames == 70
    half = _cut_half(faststart, tmp_path / "fs_half.mp4")
    with pytest.raises(InputError, match=r"fs_half.mp4: truncated, the header lists 70 frames but only \d+"):
        probe_video(half)
    with pytest.raises(InputError, match="fs_half.mp4: truncated"):
        VideoFrames(half)
    # mkv: no frame count in the header; its duration (last pts 2.76 s + 33 ms) against where the frames end
    half = _cut_half(media["vfr_mkv"][0], tmp_path / "half.mkv")
    with pytest.raises(InputError, match=r"half.mkv: truncated, the header says 2.793 s"):
        probe_video(half)


# --------------------------------------------------------------------------------------------- decode


@pytest.mark.parametrize("name", ["cfr30_audio", "cfr24", "ntsc", "cfr50", "vfr_mp4", "vfr_mkv"])
def test_video_frames_return_the_mapped_source_frames(media, name):
    path, rate, count = media[name]
    frames = VideoFrames(path)
    expected = expected_indices(rate, count, len(frames))
    assert len(frames) == num_target_frames(frames.probe.duration)
    np.testing.assert_array_equal(frames.indices, expected)
    # decord's own timestamps agree with PyAV's (the trusted ones)
    stamps = frames._reader.get_frame_timestamp(np.arange(count))[:, 0]
    np.testing.assert_allclose(stamps, frames.source_pts, atol=1e-6)
    seen, starts = [], []
    for t0, chunk in frames.iter_chunks(chunk=7):
        assert chunk.dtype == np.uint8 and chunk.shape[1:] == (H, W, 3) and 1 <= len(chunk) <= 7
        starts.append(t0)
        seen += [read_id(f) for f in chunk]
    assert starts == list(range(0, len(frames), 7))
    assert seen == expected.tolist()
    # a sub-range, and single frames
    part = [read_id(f) for _, chunk in frames.iter_chunks(start=5, stop=23, chunk=4) for f in chunk]
    assert part == expected[5:23].tolist()
    for t in (0, len(frames) // 2, len(frames) - 1):
        assert read_id(frames.frame(t)) == expected[t]


class _CountingReader:
    """The real decord reader, counting the source frames it is asked to decode."""

    def __init__(self, reader):
        self.reader, self.decoded = reader, []

    def get_batch(self, indices):
        self.decoded += list(indices)
        return self.reader.get_batch(indices)


@pytest.mark.parametrize("name", ["cfr24", "vfr_mp4"])  # sources slower than 25 fps repeat frames
def test_each_source_frame_decoded_once(media, name):
    frames = VideoFrames(media[name][0])
    frames._reader = counting = _CountingReader(frames._reader)
    out = [read_id(f) for _, chunk in frames.iter_chunks(chunk=5) for f in chunk]
    assert out == frames.indices.tolist()
    assert len(set(frames.indices.tolist())) < len(frames)  # the map does repeat frames
    assert counting.decoded == sorted(set(frames.indices.tolist()))  # each once, in order


def test_damaged_data_fails_decoding_with_the_file_named(tmp_path):
    rng = np.random.default_rng(0)  # noise: big frames, so the damage lands inside the frame data
    path = write_mp4(
        tmp_path / "ok.mp4", (rng.integers(0, 255, (H, W, 3), dtype=np.uint8) for _ in range(60)), fps=30
    )
    data = bytearray(path.read_bytes())
    data[len(data) // 4 : len(data) // 2] = bytes(
        len(data) // 2 - len(data) // 4
    )  # index (at the end) intact
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    frames = VideoFrames(damaged)  # demuxes fine
    with pytest.raises(
        InputError, match=r"damaged.mp4: decoding source frames \d+\.\.\d+ \(25 fps frame \d+ on\) failed"
    ):
        for _ in frames.iter_chunks():
            pass


def test_video_frames_range_errors(media):
    frames = VideoFrames(media["cfr24"][0])
    with pytest.raises(ValueError, match="outside"):
        next(frames.iter_chunks(start=10, stop=len(frames) + 1))
    with pytest.raises(IndexError):
        frames.frame(len(frames))


# ---------------------------------------------------------------------------------------------- shots


def _scene_a(i: int, h: int = 96, w: int = 128) -> np.ndarray:
    """Blue-green gradient with a grey square drifting 1 px per frame: slow change."""
    y, x = np.mgrid[0:h, 0:w]
    frame = np.stack([20 + x // 2, 60 + y, 120 + (x + i) % 64], axis=-1).astype(np.uint8)
    frame[30:60, 10 + i % 60 : 40 + i % 60] = 128 + (i % 40)
    return frame


def _scene_b(i: int, h: int = 96, w: int = 128) -> np.ndarray:
    """Saturated red/yellow checkerboard shifting slowly: very different from scene A."""
    y, x = np.mgrid[0:h, 0:w]
    board = (((x + i // 3) // 16 + y // 16) % 2).astype(np.uint8)
    return np.stack([np.full_like(board, 230), 40 + 180 * board, np.full_like(board, 10)], axis=-1)


def _detect(tmp_path, source_frames, fps=30, width=64, chunk=16):
    path = write_mp4(tmp_path / "shots.mp4", source_frames, fps=fps)
    frames = VideoFrames(path)
    detector = ShotDetector(threshold=27.0, min_shot_frames=15, downscale_width=width)
    for t0, part in frames.iter_chunks(chunk=chunk):
        detector.update(t0, part)
    return detector.cuts()


def test_hard_cuts_found_at_the_right_25fps_frame(tmp_path):
    # 30 fps source: scene A for frames 0..46, B for 47..99, A again from 100 (150 frames, 5 s)
    source = [_scene_b(i) if 47 <= i < 100 else _scene_a(i) for i in range(150)]
    cuts = _detect(tmp_path, source)
    # first 25 fps frame showing source 47: smallest k with floor(6k/5) >= 47 -> 40; source 100 -> 84
    assert len(cuts) == 2
    assert abs(cuts[0] - 40) <= 1 and abs(cuts[1] - 84) <= 1


def test_no_cut_in_a_slowly_changing_scene(tmp_path):
    source = [np.clip(_scene_a(i).astype(int) + i // 2, 0, 255).astype(np.uint8) for i in range(120)]
    assert _detect(tmp_path, source) == []


def test_shot_detector_wants_consecutive_rgb_chunks():
    detector = ShotDetector()
    detector.update(0, np.zeros((3, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="expected frames from 3 on"):
        detector.update(5, np.zeros((3, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.update(3, np.zeros((3, 8, 8), np.uint8))


def test_probe_is_frozen(media):
    probe = probe_video(media["cfr24"][0])
    with pytest.raises(AttributeError):
        probe.fps = 30.0
    with pytest.raises(ValueError):
        probe.source_pts[0] = 1.0
