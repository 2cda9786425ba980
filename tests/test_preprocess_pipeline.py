"""``csg-data preprocess`` end to end on footage the tests make (tests/raw_footage.py).

The ground-truth estimator returns the people each frame really shows, so the expected segments,
rejection reasons and crop geometry are known exactly; the real media, QC, crop and writing code runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import raw_footage as rf

from csg_lightning.data.clip_folder import list_clip_folders, read_clip
from csg_lightning.data_cli import main as data_main

W, H, FPS = 320, 180, 30
MIN_SECONDS = 1.0
TESTS = Path(__file__).resolve().parent


def _footage(root: Path) -> dict[str, rf.Footage]:
    root.mkdir(parents=True, exist_ok=True)
    kw = dict(width=W, height=H, fps=FPS, corpus_size=128)
    return {
        "a_cut": rf.hard_cut(root / "a_cut.mp4", seconds=(1.6, 1.6), tag=1, **kw),
        "b_two": rf.two_person(root / "b_two.mp4", seconds=(1.6, 1.6), tag=2, **kw),
        "c_silent": rf.silent_segment(root / "c_silent.mp4", seconds=(1.6, 1.6), tag=3, **kw),
        "d_noaudio": rf.no_audio(root / "d_noaudio.mp4", seconds=1.2, tag=4, **kw),
        "e_trunc": rf.truncated(root / "e_trunc.mp4", seconds=1.2, tag=5, **kw),
    }


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    videos = _footage(root / "videos")
    truth = [str(f.save_truth(root / f"{k}.npz")) for k, f in videos.items() if not f.expect_skipped]
    config = root / "preprocess.yaml"
    config.write_text(json.dumps({
        "estimator": {"class_path": "raw_footage.GroundTruthEstimator", "init_args": {"truth_files": truth}},
        "batch_frames": 8, "chunk_frames": 24,
        "qc": {"min_seconds": MIN_SECONDS},
    }))  # fmt: skip
    return root / "videos", videos, config


def _run_cli(videos: Path, out: Path, config: Path, env: dict | None = None, wait: bool = True):
    cmd = [sys.executable, "-m", "csg_lightning.data_cli", "preprocess", str(videos), str(out),
           "--config", str(config), "--quiet"]  # fmt: skip
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
                **(env or {})}  # fmt: skip
    if not wait:
        return subprocess.Popen(
            cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    done = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def single_run(footage, tmp_path_factory):
    videos, _, config = footage
    out = tmp_path_factory.mktemp("single") / "out"
    sys.path.insert(0, str(TESTS))
    data_main(["preprocess", str(videos), str(out), "--config", str(config), "--quiet"])
    return out


def _records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "videos").glob("*.json"))}


def _clip_files(out: Path) -> dict[str, dict]:
    """clip id -> bytes of pose.npz / audio.wav and meta.json, the deterministic parts of a clip."""
    res = {}
    for folder in list_clip_folders(out / "clips"):
        res[folder.name] = {
            "pose": (folder / "pose.npz").read_bytes(),
            "audio": (folder / "audio.wav").read_bytes(),
            "meta": json.loads((folder / "meta.json").read_text()),
        }
    return res


def test_kept_segments_and_rejection_reasons_are_exactly_the_expected_ones(footage, single_run):
    _, videos, _ = footage
    records = _records(single_run)
    assert sorted(records) == sorted(videos)
    for key, f in videos.items():
        rec = records[key]
        if f.expect_skipped:
            assert rec["status"] == "skipped" and rec["segments"] == []
            expected = "no audio track" if key == "d_noaudio" else str(f.path)
            assert expected in rec["skip_reason"], rec["skip_reason"]
            continue
        assert rec["status"] == "done", rec["skip_reason"]
        want = f.expected_segments(min_seconds=MIN_SECONDS)
        got = [{k: s[k] for k in ("start", "stop", "kept", "rejected_by")} for s in rec["segments"]]
        assert got == [{k: w[k] for k in ("start", "stop", "kept", "rejected_by")} for w in want], key
    kept = [s["clip_id"] for r in records.values() for s in r["segments"] if s["kept"]]
    assert sorted(kept) == [p.name for p in list_clip_folders(single_run / "clips")]
    assert len(kept) == 4  # both shots of the cut, the first shot of the other two


def test_clips_are_valid_512_crops_whose_keypoints_lie_on_the_speaker(footage, single_run):
    from csg_lightning.io.mp4 import read_frames

    _, videos, _ = footage
    for folder in list_clip_folders(single_run / "clips"):
        record = read_clip(folder)  # the shard reader's full validation: every frame decoded
        meta = json.loads((folder / "meta.json").read_text())
        assert (record["width"], record["height"]) == (512, 512)
        src = meta["source"]
        f = videos[Path(src["video"]).stem]
        assert record["keypoints"].shape[0] == src["stop_frame"] - src["start_frame"]
        # Where the clip says a confident point is, the cropped video shows the figure, not the room.
        frames = read_frames(folder / "video.mp4")
        room = np.array([s.room for s in f.shots], np.int32)
        hits = total = 0
        for t in range(0, len(frames), 5):
            conf = record["scores"][t] > 0.5
            xy = np.round(record["keypoints"][t][conf]).astype(int)
            inside = (xy >= 2).all(1) & (xy < 510).all(1)
            for x, y in xy[inside]:
                patch = frames[t, y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3).astype(np.int32)
                is_room = (np.abs(patch[:, None, :] - room[None]).max(-1) < 12).any(1)
                hits += int((~is_room).any())
                total += 1
        assert total > 100 and hits / total > 0.9, (folder.name, hits, total)
        # Provenance: the crop box, QC values and the source times are recorded.
        assert set(meta["crop_box"]) >= {"x0", "y0", "size"} and meta["qc"]
        assert src["start_seconds"] == pytest.approx(src["start_frame"] / 25)


def test_crop_maps_the_estimated_keypoints_exactly(footage, single_run):
    """The stored keypoints are the estimator's (smoothed) keypoints mapped by the recorded crop box."""
    from csg_lightning.preprocess.config import load_config
    from csg_lightning.preprocess.crop import CropBox, crop_keypoints
    from csg_lightning.preprocess.decode import VideoFrames
    from csg_lightning.skeleton.smoothing import smooth_skeleton

    _, videos, config = footage
    cfg = load_config(config)
    folder = list_clip_folders(single_run / "clips")[0]
    meta = json.loads((folder / "meta.json").read_text())
    f = videos[Path(meta["source"]["video"]).stem]
    frames = VideoFrames(f.path)
    src = frames.indices[meta["source"]["start_frame"] : meta["source"]["stop_frame"]]
    kp, sc = f.keypoints[src, 0], f.scores[src, 0]
    c = meta["crop_box"]
    box = CropBox(c["x0"], c["y0"], c["size"], c["frame_width"], c["frame_height"])
    want = crop_keypoints(smooth_skeleton(kp, sc, cfg.smoothing), box, 512)
    with np.load(folder / "pose.npz") as data:
        np.testing.assert_allclose(data["keypoints"], want, atol=1e-4)
        visible = data["scores"] > 0
        np.testing.assert_array_equal(data["scores"][visible], sc[visible])


def test_report_counts_rules_and_draws_a_contact_sheet(single_run):
    report = json.loads((single_run / "report.json").read_text())
    text = json.dumps(report)
    for rule in ("single_speaker", "speech_present"):
        assert rule in text
    assert (single_run / "report.md").is_file() and (single_run / "contact_sheet.png").is_file()
    import cv2

    sheet = cv2.imread(str(single_run / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 100
    assert (single_run / "config.yaml").is_file()


def test_rerun_redoes_nothing_and_changes_nothing(footage, single_run):
    videos, _, config = footage
    before = {p: p.stat().st_mtime_ns for p in (single_run / "videos").glob("*.json")}
    clips = _clip_files(single_run)
    data_main(["preprocess", str(videos), str(single_run), "--config", str(config), "--quiet"])
    assert {p: p.stat().st_mtime_ns for p in (single_run / "videos").glob("*.json")} == before
    assert _clip_files(single_run) == clips


def test_two_ranks_make_the_same_clips_as_one(footage, single_run, tmp_path):
    videos, _, config = footage
    out = tmp_path / "ranks"
    procs = [_run_cli(videos, out, config, {"RANK": str(r), "WORLD_SIZE": "2", "LOCAL_RANK": str(r)}, wait=False)
             for r in range(2)]  # fmt: skip
    for p in procs:
        log, _ = p.communicate(timeout=600)
        assert p.returncode == 0, log
    assert _clip_files(out) == _clip_files(single_run)
    strip = lambda recs: {k: {**v, "timing": None} for k, v in recs.items()}  # noqa: E731
    assert strip(_records(out)) == strip(_records(single_run))


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_completes_the_same_output(footage, single_run, tmp_path):
    videos, _, config = footage
    out = tmp_path / "killed"
    proc = _run_cli(videos, out, config, wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not list(out.glob("clips/*/meta.json")):
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before the kill: nothing was interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(list(out.glob("videos/*.json"))) < 5  # killed mid-run
    for folder in (out / "clips").iterdir():
        if not folder.name.startswith("."):
            assert (folder / "meta.json").is_file()  # visible clip folders are complete
    _run_cli(videos, out, config)
    assert _clip_files(out) == _clip_files(single_run)
    assert not [p for p in out.rglob(".*") if ".tmp-" in p.name]
