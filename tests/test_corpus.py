"""The synthetic demo corpus: clip folder format, determinism, and motion caused by the audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from csg_lightning.data.corpus import generate_corpus, make_clip
from csg_lightning.data.corpus.generate import KEYPOINT_STEP
from csg_lightning.io.audio import read_audio
from csg_lightning.skeleton.layout import NUM_KEYPOINTS, SkeletonLayout

L = SkeletonLayout
HOP = 640


def _clips(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _load(clip: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    pose = np.load(clip / "pose.npz")
    meta = json.loads((clip / "meta.json").read_text())
    return pose["keypoints"], pose["scores"], read_audio(clip / "audio.wav"), meta


def _loud_onsets(audio: np.ndarray, num_frames: int, fraction: float = 0.25) -> np.ndarray:
    """Onset frames found in the audio alone, keeping the loudest ``fraction`` (the stressed ones)."""
    import librosa

    env = librosa.onset.onset_strength(y=audio, sr=16000, hop_length=HOP)
    onsets = librosa.onset.onset_detect(onset_envelope=env, sr=16000, hop_length=HOP, units="frames")
    rms = np.sqrt((audio[: num_frames * HOP].reshape(num_frames, HOP).astype(np.float64) ** 2).mean(1))
    peak = np.array([rms[o : o + 4].max() for o in onsets])
    return onsets[peak >= np.quantile(peak, 1.0 - fraction)]


def _wrist_speed(keypoints: np.ndarray) -> np.ndarray:
    """[T] summed speed (pixels per frame) of both wrists."""
    wrists = keypoints[:, [L.LEFT_WRIST, L.RIGHT_WRIST]].astype(np.float64)
    speed = np.linalg.norm(np.diff(wrists, axis=0), axis=-1).sum(-1)
    return np.r_[speed[:1], speed]


def _near(signal: np.ndarray, frames: np.ndarray) -> float:
    """Mean of ``signal`` from 1 frame before to 2 frames after each of ``frames`` (circular)."""
    return float(signal[(frames[:, None] + np.arange(-1, 3)[None]) % len(signal)].mean())


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    kwargs = dict(num_speakers=2, clips_per_speaker=1, clip_seconds=4.0, video=False, progress=False)
    a = generate_corpus(tmp_path / "a", seed=5, **kwargs)
    b = generate_corpus(tmp_path / "b", seed=5, workers=2, **kwargs)  # the pool must not change anything
    c = generate_corpus(tmp_path / "c", seed=6, **kwargs)
    assert [p.name for p in a] == ["spk00_clip000", "spk01_clip000"] == [p.name for p in b]
    for pa, pb, pc in zip(a, b, c, strict=True):
        for name in ("pose.npz", "audio.wav", "meta.json"):
            assert (pa / name).read_bytes() == (pb / name).read_bytes(), (
                f"{pa.name}/{name} differs across runs"
            )
        for name in ("pose.npz", "audio.wav"):
            assert (pa / name).read_bytes() != (pc / name).read_bytes(), f"{pa.name}/{name} ignores the seed"
    # Speakers differ from each other within a corpus.
    assert not np.allclose(
        np.load(a[0] / "pose.npz")["keypoints"][0], np.load(a[1] / "pose.npz")["keypoints"][0]
    )


def test_rerun_skips_finished_clips_and_clears_leftovers(tmp_path):
    kwargs = dict(num_speakers=1, clips_per_speaker=2, clip_seconds=1.0, video=False, progress=False)
    first = generate_corpus(tmp_path, **kwargs)
    stamp = (first[0] / "pose.npz").stat().st_mtime_ns
    from csg_lightning.io.atomic import _HOST

    (tmp_path / f".spk00_clip001.tmp-{_HOST}-4194000-deadbeef").mkdir()  # left by a killed writer
    for f in first[1].iterdir():
        f.unlink()
    first[1].rmdir()
    second = generate_corpus(tmp_path, **kwargs)
    assert second == first
    assert (first[0] / "pose.npz").stat().st_mtime_ns == stamp
    assert (first[1] / "meta.json").is_file()
    assert not list(tmp_path.glob(".*tmp-*"))
    assert len(generate_corpus(tmp_path, scale=2.0, **kwargs)) == 2 * 4


def test_clip_folders_follow_the_contract(demo_corpus):
    clips = _clips(demo_corpus)
    assert len(clips) == 6
    all_scores = []
    for clip in clips:
        keypoints, scores, audio, meta = _load(clip)
        t = meta["num_frames"]
        assert t == 300 and meta["fps"] == 25 and meta["width"] == meta["height"] == 512
        assert meta["clip_id"] == clip.name and clip.name.startswith(meta["speaker_id"] + "_")
        assert keypoints.shape == (t, NUM_KEYPOINTS, 2) and keypoints.dtype == np.float32
        assert scores.shape == (t, NUM_KEYPOINTS) and scores.dtype == np.float32
        assert len(audio) == t * HOP
        assert np.isfinite(keypoints).all() and keypoints.min() >= 0 and keypoints.max() <= 511
        assert scores.min() >= 0 and scores.max() <= 1
        neck = 0.5 * (keypoints[:, L.LEFT_SHOULDER] + keypoints[:, L.RIGHT_SHOULDER])
        np.testing.assert_allclose(keypoints[:, L.NECK], neck, atol=KEYPOINT_STEP)  # both rounded to the grid
        np.testing.assert_array_equal(scores[:, L.NECK], np.minimum(scores[:, 5], scores[:, 6]))
        all_scores.append(scores)
    scores = np.concatenate(all_scores)
    assert np.median(scores[:, L.UPPER_BODY]) > 0.85 and np.median(scores[:, L.FACE]) > 0.85
    assert 0.8 < np.median(scores[:, L.HANDS]) < 0.97
    hand_frames = scores[:, L.LEFT_HAND].mean(1)
    assert (hand_frames < 0.5).mean() > 0.005, "expected some low-confidence (occluded) hand frames"
    assert np.median(scores[:, L.FEET]) < 0.1, "feet are below the frame and should score ~0"


def test_wrist_speed_peaks_at_stressed_onsets_found_in_the_audio(demo_corpus):
    near, chance, shifted = 0.0, 0.0, []
    rng = np.random.default_rng(0)
    for clip in _clips(demo_corpus):
        keypoints, _, audio, meta = _load(clip)
        onsets = _loud_onsets(audio, meta["num_frames"])
        assert len(onsets) >= 5, f"{clip.name}: found only {len(onsets)} stressed onsets in the audio"
        speed = _wrist_speed(keypoints)
        shifts = rng.integers(12, len(speed) - 12, 100)
        near += _near(speed, onsets)
        values = np.array([_near(speed, (onsets + k) % len(speed)) for k in shifts])
        chance += values.mean()
        shifted.append(values)
    ratio = near / chance
    print(f"wrist speed near stressed onsets / chance = {ratio:.2f}")
    assert ratio > 1.5
    # Far above chance: beyond every one of the pooled circular shifts.
    assert near > np.sum(shifted, axis=0).max()


def test_coupling_needs_the_matching_audio(demo_corpus):
    """Control: onsets from another clip's audio do not line up with this clip's beats."""
    clips = _clips(demo_corpus)
    near, chance = 0.0, 0.0
    for clip, other in zip(clips, clips[1:] + clips[:1], strict=True):
        keypoints, _, _, meta = _load(clip)
        _, _, audio, _ = _load(other)
        onsets = _loud_onsets(audio, meta["num_frames"])
        speed = _wrist_speed(keypoints)
        near += _near(speed, onsets)
        chance += np.mean([_near(speed, (onsets + k) % len(speed)) for k in range(12, len(speed) - 12, 3)])
    print(f"mismatched audio: {near / chance:.2f}")
    assert near / chance < 1.4


def test_mouth_opening_follows_loudness(demo_corpus):
    for clip in _clips(demo_corpus):
        keypoints, _, audio, meta = _load(clip)
        t = meta["num_frames"]
        rms = np.sqrt((audio.reshape(t, HOP).astype(np.float64) ** 2).mean(1))
        mouth = keypoints[:, L.LOWER_INNER_LIP, 1] - keypoints[:, L.UPPER_INNER_LIP, 1]
        r = np.corrcoef(mouth, rms)[0, 1]
        assert r > 0.5, f"{clip.name}: mouth/loudness correlation {r:.2f}"


def test_head_nods_after_phrase_starts():
    clip = make_clip(seed=0, speaker_index=1, clip_index=0, clip_seconds=12.0)
    nose_drop = clip.pose.keypoints[:, L.NOSE, 1] - clip.pose.keypoints[:, L.NECK, 1]
    starts = np.round(clip.speech.phrase_starts * 25).astype(int)
    after = nose_drop[np.clip(starts + 3, 0, clip.num_frames - 1)].mean()
    assert after > np.median(nose_drop) + 1.0


def _reanimated_wrists(speaker_index: int, clip_index: int, seeds: tuple[int, ...]) -> list[np.ndarray]:
    """Wrists [T, 2, 2] of one clip's speech animated anew with each motion seed (same speaker, same speech)."""
    from csg_lightning.data.corpus.motion import animate
    from csg_lightning.data.corpus.speaker import make_speaker
    from csg_lightning.data.corpus.speech import synthesize_speech

    speaker = make_speaker(0, speaker_index)
    speech = synthesize_speech(speaker, 150, np.random.default_rng([7, speaker_index, clip_index]))
    return [animate(speaker, speech, np.random.default_rng(s)).keypoints[:, [L.LEFT_WRIST, L.RIGHT_WRIST]]
            for s in seeds]  # fmt: skip


def test_the_speech_picks_the_gestures_not_chance():
    """Animated twice from the same speech, the hands go to the same places: the gesture is the speech's. (When the
    spot and hand of each phrase were drawn at random, two animations were as far apart as standing still.)"""
    apart, still = 0.0, 0.0
    for speaker_index in range(3):
        for clip_index in range(2):
            a, b = _reanimated_wrists(speaker_index, clip_index, (1, 2))
            apart += np.linalg.norm(a - b, axis=-1).mean()
            still += np.linalg.norm(a - a[:1], axis=-1).mean()
    assert apart < 0.4 * still, f"two animations of the same speech are {apart / 6:.1f} px apart, standing still {still / 6:.1f}"


def test_the_opening_vowel_picks_the_hand():
    """Front vowel: the right hand rises; back vowel: the left; stressed: both (hands hanging at rest, so a rise is
    plain; phrases half a second or more from their neighbours, so each shows its own hands). A few phrases go without
    gestures."""
    from csg_lightning.data.corpus.speech import VOWEL_FORMANTS

    wrong, still, total = 0, 0, 0
    for speaker_index in range(12):
        clip = make_clip(seed=0, speaker_index=speaker_index, clip_index=0, clip_seconds=20.0)
        if clip.speaker.rest_style != "down":
            continue
        speech, wrists = clip.speech, clip.pose.keypoints[:, [L.LEFT_WRIST, L.RIGHT_WRIST], 1]
        rest = np.percentile(wrists, 95, axis=0)  # hanging: the lowest the wrists go
        openers = speech.phrase_openers()
        for p, (start, end) in enumerate(zip(speech.phrase_starts * 25, speech.phrase_ends * 25, strict=True)):
            before = speech.phrase_ends[p - 1] * 25 if p else -np.inf
            after = speech.phrase_starts[p + 1] * 25 if p + 1 < len(openers) else np.inf
            if start - before < 12 or after - end < 12 or end - start < 15 or end > clip.num_frames:
                continue
            middle = int(round((start + end) / 2))
            raised = rest - wrists[middle] > 0.3 * clip.speaker.upper_arm  # (left, right)
            front = VOWEL_FORMANTS[speech.vowels[openers[p]], 1] > 1500
            expected = (True, True) if speech.stressed[openers[p]] else (not front, front)
            if raised.any():
                wrong += tuple(bool(r) for r in raised) != expected
            else:
                still += 1
            total += 1
    assert total >= 15, f"only {total} isolated phrases"
    assert wrong == 0, f"the hands of {wrong} of {total} phrases are not the opening vowel's"
    assert still <= 0.25 * total, f"{still} of {total} phrases without gestures"


def test_video_has_frames_size_and_audio(demo_corpus_video):
    import decord

    for clip in _clips(demo_corpus_video):
        meta = json.loads((clip / "meta.json").read_text())
        reader = decord.VideoReader(str(clip / "video.mp4"))
        assert len(reader) == meta["num_frames"]
        first, later = reader[0].asnumpy(), reader[len(reader) // 2].asnumpy()
        assert first.shape == (meta["height"], meta["width"], 3)
        assert np.abs(first.astype(int) - later.astype(int)).mean() > 0.1, "the figure does not move"
        sound = decord.AudioReader(str(clip / "video.mp4"), sample_rate=16000, mono=True)
        assert sound.shape[1] >= meta["num_frames"] * HOP * 0.98


@pytest.mark.parametrize("size", [64])
def test_small_video_size_scales_keypoints(tmp_path, size):
    (clip,) = generate_corpus(tmp_path, num_speakers=1, clips_per_speaker=1, clip_seconds=0.4,
                              video=True, video_size=size, progress=False)  # fmt: skip
    keypoints, _, _, meta = _load(clip)
    assert meta["width"] == meta["height"] == size and keypoints.max() <= size - 1
    big = make_clip(0, 0, 0, 0.4)
    expected = np.clip((big.keypoints + 0.5) * size / 512 - 0.5, 0, size - 1)
    np.testing.assert_allclose(keypoints, expected, rtol=0, atol=KEYPOINT_STEP)  # each rounded to the 1/256 px grid


def _last_bit_noise(monkeypatch, rng: np.random.Generator) -> None:
    """Move the results of numpy's transcendental functions by up to 4 ulp (float64 and float32), as
    another CPU's SIMD implementations of sin / cos / exp / log may (the cause of machine-dependent
    pose.npz bytes)."""
    for name in ("sin", "cos", "exp", "tanh", "arctan2", "arccos", "sqrt", "log2", "power"):
        original = getattr(np, name)

        def noisy(*args, _f=original, **kwargs):
            out = _f(*args, **kwargs)
            if isinstance(out, np.ndarray) and out.dtype in (np.float32, np.float64):
                ulps = rng.integers(-4, 5, out.shape).astype(out.dtype)
                out = (out + ulps * np.spacing(out)).astype(out.dtype)
            return out

        monkeypatch.setattr(np, name, noisy)


def test_generator_tracks_stay_float64_until_the_grid():
    """float32 intermediates would carry a CPU's float32 SIMD differences (1e-7 relative) into the pose,
    far above what the float64 grid rounding absorbs."""
    clip = make_clip(0, 0, 0, 2.0)
    for owner in (clip.speech, clip.pose):
        for field, value in vars(owner).items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not (owner is clip.speech and field == "audio"):
                assert value.dtype == np.float64, f"{type(owner).__name__}.{field} is {value.dtype}"


@pytest.mark.parametrize("size", [512, 64])
def test_pose_files_do_not_depend_on_the_cpus_last_bit(monkeypatch, size):
    """The same seed must write the same pose.npz on every machine (the golden fingerprints hash it)."""
    exact = [make_clip(0, s, c, 6.0, size) for s in range(2) for c in range(2)]
    with monkeypatch.context() as patch:
        _last_bit_noise(patch, np.random.default_rng(0))
        noisy = [make_clip(0, s, c, 6.0, size) for s in range(2) for c in range(2)]
    raw_exact = [np.asarray(c.pose.keypoints) for c in exact]
    assert any(not np.array_equal(a, np.asarray(b.pose.keypoints)) for a, b in zip(raw_exact, noisy, strict=True)), (
        "the last-bit noise did not reach the generator's float64 pose"
    )
    for a, b in zip(exact, noisy, strict=True):
        assert a.keypoints.dtype == np.float32 and a.scores.dtype == np.float32
        np.testing.assert_array_equal(a.keypoints, b.keypoints, err_msg=f"{a.clip_id} keypoints")
        np.testing.assert_array_equal(a.scores, b.scores, err_msg=f"{a.clip_id} scores")
