"""The sampling command's outputs: skeleton mp4 (with audio) and the .npz beside it."""

from __future__ import annotations

import av
import numpy as np
import pytest

from csg_lightning.generation.sample_skeleton import load_reference, main, write_skeleton_outputs
from csg_lightning.io.mp4 import read_frames

SR = 16000


def _sequence(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(150, 350, (134, 2)).astype(np.float32)
    wobble = 10 * np.sin(np.arange(frames) / 4.0)[:, None, None]
    keypoints = (base[None] + wobble).astype(np.float32)
    scores = rng.uniform(0.5, 1.0, (frames, 134)).astype(np.float32)
    return keypoints, scores


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


@pytest.mark.parametrize("frame", [(512, 512), (None, None)])
def test_writes_npz_and_video_with_audio(tmp_path, frame):
    audio = _tone(2.03)  # 50.75 frames -> T = 51
    keypoints, scores = _sequence(51)
    video, npz = write_skeleton_outputs(
        tmp_path / "out.mp4", keypoints, scores, audio, fps=25, width=frame[0], height=frame[1], size=96
    )
    assert video == tmp_path / "out.mp4" and npz == tmp_path / "out.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "out.npz"]  # no temporaries left
    with np.load(npz) as data:
        assert set(data.files) == {"keypoints", "scores", "fps"}
        assert data["keypoints"].dtype == np.float32 and data["keypoints"].shape == (51, 134, 2)
        assert data["scores"].dtype == np.float32 and data["scores"].shape == (51, 134)
        assert int(data["fps"]) == 25
        np.testing.assert_array_equal(data["keypoints"], keypoints)  # pixels, unchanged by framing
        np.testing.assert_array_equal(data["scores"], scores)
    frames = read_frames(video)
    assert frames.shape == (51, 96, 96, 3)
    assert frames.mean() > 0.5  # skeletons are visible
    with av.open(str(video)) as container:
        assert len(container.streams.audio) == 1
        stream = container.streams.audio[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(2.03, abs=0.1)


def test_frame_count_must_match_audio(tmp_path):
    keypoints, scores = _sequence(40)
    with pytest.raises(ValueError, match=r"expected round\(25 x duration\) = 50"):
        write_skeleton_outputs(tmp_path / "out.mp4", keypoints, scores, _tone(2.0), width=512, height=512)
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"\.mp4"):
        write_skeleton_outputs(tmp_path / "out.avi", *_sequence(50), _tone(2.0), width=512, height=512)


def test_load_reference_first_frame_and_default_scores(tmp_path):
    keypoints, scores = _sequence(3)
    np.savez(tmp_path / "seq.npz", keypoints=keypoints, scores=scores)
    kp, sc = load_reference(tmp_path / "seq.npz")
    np.testing.assert_array_equal(kp, keypoints[0])
    np.testing.assert_array_equal(sc, scores[0])
    np.savez(tmp_path / "one.npz", keypoints=keypoints[1])
    kp, sc = load_reference(tmp_path / "one.npz")
    np.testing.assert_array_equal(kp, keypoints[1])
    assert sc.shape == (134,) and (sc == 1).all()
    np.savez(tmp_path / "bad.npz", keypoints=np.zeros((133, 2)))
    with pytest.raises(ValueError, match="bad.npz.*keypoints"):
        load_reference(tmp_path / "bad.npz")


def test_main_reports_a_missing_checkpoint(tmp_path):
    with pytest.raises(SystemExit, match="checkpoint not found"):
        main(["--ckpt", str(tmp_path / "none.ckpt"), "--audio", "x.wav", "--out", str(tmp_path / "o.mp4")])


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A real (tiny) Stage 1 checkpoint after one training step (built from class_path dicts)."""
    from tiny_skeleton import train_tiny_checkpoint

    return train_tiny_checkpoint(tmp_path_factory.mktemp("stage1"))


def test_main_end_to_end_with_stereo_44k_audio(tmp_path, tiny_checkpoint):
    import soundfile as sf

    seconds = 1.32  # 33 frames
    t = np.arange(round(seconds * 44100)) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 200 * t), 0.5 * np.sin(2 * np.pi * 300 * t)], 1) * 0.3
    sf.write(tmp_path / "speech.wav", stereo.astype(np.float32), 44100)
    out = tmp_path / "result" / "clip.mp4"
    argv = ["--ckpt", str(tiny_checkpoint), "--audio", str(tmp_path / "speech.wav"), "--out", str(out),
            "--steps", "2", "--guidance", "2.0", "--seed", "3", "--size", "64", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    with np.load(out.with_suffix(".npz")) as data:
        keypoints, scores = data["keypoints"], data["scores"]
        assert keypoints.shape == (33, 134, 2) and scores.shape == (33, 134) and int(data["fps"]) == 25
    assert np.isfinite(keypoints[:, :13]).all()
    assert read_frames(out).shape == (33, 64, 64, 3)
    # with a reference skeleton ([T, 134, 2] file: first frame used): its legs, which the model does
    # not generate, are carried into every output frame
    reference = keypoints[:2].copy()
    reference[0, 13:17] += 7.0
    np.savez(tmp_path / "reference.npz", keypoints=reference, scores=scores[:2])
    out_ref = tmp_path / "with_ref.mp4"
    assert main([*argv[:4], "--out", str(out_ref), *argv[6:], "--ref", str(tmp_path / "reference.npz")]) == 0
    with np.load(out_ref.with_suffix(".npz")) as data:
        legs = data["keypoints"][:, 13:17]
    assert legs.shape == (33, 4, 2)
    np.testing.assert_allclose(legs, np.broadcast_to(reference[0, 13:17], legs.shape), atol=1e-3)
