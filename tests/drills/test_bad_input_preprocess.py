"""``csg-data preprocess``: bad videos are recorded skips (or rejections) with their reason, a bad config
is an error naming the field, and a disk that fills up mid-clip stops the run without a half clip.

Everything runs through the real CLI (``csg_lightning.data_cli.main``) on real mp4 files made by
``tests/raw_footage.py``; the ground-truth estimator gives the exact people of each frame, so the good
video's clips are known and must come out whatever else is in the folder.
"""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from bad_inputs import expect_exit, tree

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))  # raw_footage: the footage maker and its GroundTruthEstimator

import raw_footage as rf  # noqa: E402

from csg_lightning.data.clip_folder import list_clip_folders  # noqa: E402
from csg_lightning.data_cli import main as csg_data  # noqa: E402

W, H, FPS = 320, 180, 30
MIN_SECONDS = 1.0
SIZES = dict(width=W, height=H, fps=FPS, corpus_size=128)


def _config(path: Path, truth_files: list[str], **extra) -> Path:
    path.write_text(json.dumps({
        "estimator": {"class_path": "raw_footage.GroundTruthEstimator", "init_args": {"truth_files": truth_files}},
        "batch_frames": 8, "chunk_frames": 24, "qc": {"min_seconds": MIN_SECONDS}, **extra,
    }))  # fmt: skip
    return path


def _nobody(path: Path) -> rf.Footage:
    """A speaker on screen whose truth is emptied: the estimator finds nobody in any frame."""
    footage = rf.one_speaker(path, seconds=1.4, tag=6, **SIZES)
    footage.present[:] = False
    return footage


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """VIDEOS/ with one good video and one of each bad kind; the truth files and the config."""
    root = tmp_path_factory.mktemp("bad_preprocess")
    videos = root / "videos"
    videos.mkdir()
    good = rf.hard_cut(videos / "good.mp4", seconds=(1.6, 1.6), tag=1, **SIZES)  # two kept clips
    nobody = _nobody(videos / "nobody.mp4")
    rf.no_audio(videos / "mute.mp4", seconds=1.2, tag=4, **SIZES)
    rf.truncated(videos / "cut_short.mp4", seconds=1.2, tag=5, **SIZES)
    (videos / "garbage.mp4").write_bytes(
        np.random.default_rng(0).integers(0, 256, 20_000, np.uint8).tobytes()
    )
    (videos / "empty.mp4").write_bytes(b"")
    truth = [str(good.save_truth(root / "good.npz")), str(nobody.save_truth(root / "nobody.npz"))]
    return {"videos": videos, "good": good, "config": _config(root / "preprocess.yaml", truth), "root": root}


def _run(videos: Path, out: Path, config: Path) -> None:
    csg_data(["preprocess", str(videos), str(out), "--config", str(config), "--quiet"])


def _records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "videos").glob("*.json"))}


def _clip_files(out: Path) -> dict[str, dict]:
    """clip id -> the deterministic parts of a clip (pose.npz, audio.wav bytes; meta.json)."""
    return {
        f.name: {
            "pose": (f / "pose.npz").read_bytes(),
            "audio": (f / "audio.wav").read_bytes(),
            "meta": json.loads((f / "meta.json").read_text()),
        }  # fmt: skip
        for f in list_clip_folders(out / "clips")
    }


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _assert_good_video_done(out: Path, good: rf.Footage) -> None:
    rec = _records(out)["good"]
    assert rec["status"] == "done", rec["skip_reason"]
    want = [
        {k: s[k] for k in ("start", "stop", "kept", "rejected_by")}
        for s in good.expected_segments(MIN_SECONDS)
    ]
    got = [{k: s[k] for k in ("start", "stop", "kept", "rejected_by")} for s in rec["segments"]]
    assert got == want and all(s["kept"] for s in want)
    assert sorted(s["clip_id"] for s in rec["segments"]) == _visible(out / "clips")


@pytest.fixture(scope="module")
def clean_run(footage, tmp_path_factory):
    """The good video alone, processed without any fault: the clips every other run must reproduce."""
    only = tmp_path_factory.mktemp("clean_videos")
    (only / "good.mp4").symlink_to(footage["good"].path)
    out = tmp_path_factory.mktemp("clean") / "out"
    _run(only, out, footage["config"])
    return only, out


# ---------------------------------------------------------------------------------------- bad videos

SKIPS = {  # video key -> what its skip reason must say (besides the file's path)
    "garbage": "not a readable video container",
    "empty": "the file is empty (0 bytes)",
    "cut_short": "not a readable video container, or truncated",
    "mute": "the video has no audio track",
}


def test_bad_videos_are_recorded_skips_and_the_good_one_is_processed(footage, clean_run, tmp_path):
    out = tmp_path / "out"
    _run(footage["videos"], out, footage["config"])
    records = _records(out)
    assert sorted(records) == sorted([*SKIPS, "good", "nobody"])
    for key, reason in SKIPS.items():
        rec = records[key]
        assert rec["status"] == "skipped" and rec["segments"] == [], rec
        assert reason in rec["skip_reason"] and str(footage["videos"] / f"{key}.mp4") in rec["skip_reason"]
        assert "Traceback" not in rec["skip_reason"]
    # nobody on screen: the video is read, every segment is rejected (no clip), the reason is recorded
    nobody = records["nobody"]
    assert nobody["status"] == "done" and nobody["segments"]
    for seg in nobody["segments"]:
        assert not seg["kept"] and seg["clip_id"] is None
        assert seg["rejected_by"][0] == "person_present", seg["rejected_by"]
        present = next(c for c in seg["checks"] if c["name"] == "person_present")
        assert present["value"] == 0.0 and "0/" in present["detail"]
    # the good video: exactly the clips of a run without the bad ones
    _assert_good_video_done(out, footage["good"])
    assert _clip_files(out) == _clip_files(clean_run[1])
    # report.json lists every skip with its reason, and the nobody segment under its first failing rule
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"]["skipped"] == len(SKIPS) and report["inputs"]["done"] == 2
    skipped = {v["video_key"]: v["reason"] for v in report["videos"]["skipped"]}
    assert skipped == {k: records[k]["skip_reason"] for k in SKIPS}
    assert sum(report["skip_reasons"].values()) == len(SKIPS)
    assert report["segments"]["first_failing_rule"]["person_present"] == len(nobody["segments"])
    assert "## Skipped videos" in (out / "report.md").read_text()
    assert not [p for p in tree(out) if ".tmp-" in p], tree(out)


# --------------------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    "text, field, expected",
    [
        ("qc:\n  min_secs: 1.0\n", "qc.min_secs", "Key 'min_secs' not in 'QCConfig'"),
        ("colour: red\n", "colour", "Key 'colour' not in 'PreprocessConfig'"),
        ("batch_frames: lots\n", "batch_frames", "could not be converted to Integer"),
        ("qc:\n  min_seconds: four\n", "qc.min_seconds", "could not be converted to Float"),
        ("shots: 27\n", "shots", "must be a mapping of settings"),
        ("chunk_frames: 0\n", "chunk_frames", "must be >= 1"),
    ],
    ids=[
        "unknown-nested-key",
        "unknown-key",
        "str-for-int",
        "str-for-float",
        "int-for-section",
        "zero-chunk",
    ],
)
def test_a_corrupt_config_is_an_error_naming_the_file_and_field(footage, tmp_path, text, field, expected):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    out = tmp_path / "out"
    argv = ["preprocess", str(footage["videos"]), str(out), "--config", str(config), "--quiet"]
    expect_exit(csg_data, argv, "csg-data preprocess", config, field, expected)
    assert not out.exists()  # refused before anything is written


# ------------------------------------------------------------------------------------- disk full


def _fill_disk_after(monkeypatch, clip_number: int, frames: int) -> dict:
    """From the ``clip_number``-th clip on (1-based), writing its video fails with ENOSPC after ``frames``
    frames went into the real encoder. Returns the counters."""
    import csg_lightning.preprocess.clip_writer as clip_writer

    real = clip_writer.write_mp4
    seen = {"clips": 0, "frames_before_fault": 0}

    def write_mp4(path, frame_iter, **kw):
        seen["clips"] += 1
        if seen["clips"] < clip_number:
            return real(path, frame_iter, **kw)

        def until_full():
            for i, frame in enumerate(frame_iter):
                if i == frames:
                    raise OSError(errno.ENOSPC, "No space left on device", str(path))
                seen["frames_before_fault"] += 1
                yield frame

        return real(path, until_full(), **kw)

    monkeypatch.setattr(clip_writer, "write_mp4", write_mp4)
    return seen


def test_disk_full_mid_clip_stops_cleanly_and_a_rerun_completes(footage, clean_run, tmp_path, monkeypatch):
    videos, clean = clean_run
    out = tmp_path / "out"
    seen = _fill_disk_after(monkeypatch, clip_number=2, frames=5)
    message = expect_exit(csg_data, ["preprocess", str(videos), str(out), "--config", str(footage["config"]),
                                     "--quiet"], "csg-data preprocess", "No space left on device", "re-run")  # fmt: skip
    assert "stopped by a write error" in message
    assert seen == {"clips": 2, "frames_before_fault": 5}
    # the first clip is complete; the second left no visible folder; the video has no done record
    first, second = sorted(_clip_files(clean))
    assert _visible(out / "clips") == [first]
    assert _clip_files(out) == {first: _clip_files(clean)[first]}
    assert not (out / "videos" / "good.json").exists() and _visible(out / "videos") == []
    assert all(p.name.startswith(".") for p in (out / "clips").iterdir() if p.name != first)
    # the fault removed: the re-run finishes the video with the same clips as a clean run
    monkeypatch.undo()
    _run(videos, out, footage["config"])
    _assert_good_video_done(out, footage["good"])
    assert _clip_files(out) == _clip_files(clean)
    assert not [p for p in tree(out) if ".tmp-" in p], tree(out)
