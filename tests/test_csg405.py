"""CSG-405 ingest: names, manifest validation, crop geometry, clip folders from a miniature release."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
from csg405_release import (
    CLIPS,
    EXPECTED_MARKER,
    MARKER,
    PART_SECONDS,
    TIME_CENTRES,
    VID_A,
    VID_B,
    make_release,
    marker_centroid,
    release_pixels,
    source_audio,
    time_code,
)

from csg_lightning.csg405.clip_names import clip_name, parse_time
from csg_lightning.csg405.crop_geometry import square_crop
from csg_lightning.csg405.ingest import IngestOptions, ingest_release
from csg_lightning.csg405.manifest import load_release, read_manifest
from csg_lightning.csg405.test_pairs import read_test_pairs
from csg_lightning.data.clip_folder import read_clip, read_meta
from csg_lightning.io.mp4 import read_frames
from csg_lightning.io.validation import InputError

OPTIONS = dict(part_seconds=PART_SECONDS, crf=12)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return make_release(tmp_path_factory.mktemp("csg405"))


@pytest.fixture(scope="module")
def ingested(release, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    summary = ingest_release(release["release"], release["videos"], out,
                             IngestOptions(poses_dir=release["poses"], **OPTIONS))  # fmt: skip
    return out, summary


# ------------------------------------------------------------------------------------------- names


def test_clip_names_as_the_release_forms_them():
    assert (
        clip_name("abc-DEF_123", 0, "00:01:02.500", "00:01:12.500")
        == "abc-DEF_123_0_00_01_02_500_00_01_12_500"
    )
    assert clip_name("x", 3, "1:02", "75.5") == "x_3_1_02_75_5"
    assert parse_time("01:02:03.25") == 3723.25
    assert parse_time("02:03.5") == 123.5
    assert parse_time("7") == 7.0 and parse_time(12.5) == 12.5
    for bad in ("1:75", "ab", "-3", "", "1:2:3:4", True):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_release_lists_are_read_and_cross_checked(release):
    rel = load_release(release["release"])
    assert [c.name for c in rel.clips] == [c.name for c in CLIPS]
    assert rel.clips[1].crop_box is None and rel.clips[0].crop_box == (40.0, 16.0, 120.0, 80.0)
    assert (rel.clips[0].start, rel.clips[0].end) == (0.4, 1.4)
    assert rel.listed == [c.name for c in CLIPS] and rel.notes == []


def _write(tmp_path, entries) -> str:
    path = tmp_path / "all_with_crop.json"
    path.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    return path


GOOD = {
    "vid": "v1",
    "part": 0,
    "start_time": "00:00:01.00",
    "end_time": "00:00:02.00",
    "crop_box": [0, 0, 10, 10],
}


@pytest.mark.parametrize(
    "entries, expected",
    [
        ("[{", "not valid JSON"),
        ({"vid": "v1"}, "expected a JSON list"),
        ([], "the list is empty"),
        ([GOOD, {k: v for k, v in GOOD.items() if k != "crop_box"}], "entry 1 (v1_0_00_00_01_00_00_00_02_00): missing field(s) ['crop_box']"),
        ([{**GOOD, "start_time": "00:00:xx"}], "field 'start_time': time '00:00:xx'"),
        ([{**GOOD, "end_time": "00:00:00.50"}], "field 'end_time' '00:00:00.50' is not after"),
        ([{**GOOD, "crop_box": [0, 0, 10]}], "field 'crop_box' is [0, 0, 10], expected [x1, y1, x2, y2]"),
        ([{**GOOD, "crop_box": [10, 0, 5, 10]}], "field 'crop_box' [10, 0, 5, 10] is empty or inverted"),
        ([{**GOOD, "crop_box": [0, 0, "a", 10]}], "holds a non-number"),
        ([{**GOOD, "part": -1}], "field 'part' is -1, expected an integer >= 0"),
        ([{**GOOD, "vid": ""}], "field 'vid' is ''"),
        ([GOOD, {**GOOD, "crop_box": [1, 1, 9, 9]}], "entries 0 and 1 are both named"),
    ],
)  # fmt: skip
def test_manifest_errors_name_file_entry_and_field(tmp_path, entries, expected):
    path = _write(tmp_path, entries)
    with pytest.raises(InputError) as err:
        read_manifest(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_manifest_repeats_and_name_list(tmp_path):
    path = _write(tmp_path, [GOOD, dict(GOOD)])
    clips, notes = read_manifest(path)
    assert len(clips) == 1 and notes == ["entry 1 repeats entry 0 (v1_0_00_00_01_00_00_00_02_00): dropped"]
    (tmp_path / "all.txt").write_text("v1_0_00_00_01_00_00_00_02_00.mp4\nother_0_1_2.mp4\n")
    rel = load_release(tmp_path)
    assert any("1 name(s) not in all_with_crop.json" in n and "other_0_1_2" in n for n in rel.notes)
    (tmp_path / "all.txt").write_text("bad name.mp4\n")
    with pytest.raises(InputError, match=r"all.txt: line 1 is 'bad name.mp4'"):
        load_release(tmp_path)
    with pytest.raises(FileNotFoundError, match="all_with_crop.json"):
        load_release(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------ geometry


def test_square_crop_of_a_rectangle_and_of_the_whole_frame():
    rect = square_crop((40, 16, 120, 80), 160, 96)
    assert (rect.x0, rect.y0, rect.size) == (40, 8, 80)
    assert np.allclose(rect.keypoints(np.array(MARKER, float)), EXPECTED_MARKER[CLIPS[0].name], atol=1e-4)
    whole = square_crop(None, 160, 96)
    assert (whole.rect, whole.x0, whole.y0, whole.size) == ((0, 0, 160, 96), 0, -32, 160)
    assert np.allclose(whole.keypoints(np.array(MARKER, float)), EXPECTED_MARKER[CLIPS[1].name], atol=1e-4)
    # the release's framing of the 80 x 64 rectangle: y scaled to int(409.6) = 409 rows after a 51-row bar
    (sx, bx), (sy, by) = rect.release_axes()
    assert (sx, bx, sy, by) == (6.4, 0.0, 409 / 64, 51.0)
    theirs = release_pixels(MARKER, (40, 16, 120, 80))
    assert np.allclose(rect.release_to_source(theirs), MARKER, atol=1e-9)
    # outside the rectangle is black even where the square box covers real picture
    frame = np.full((1, 96, 160, 3), 200, np.uint8)
    out = rect.frames(frame)
    assert out.shape == (1, 512, 512, 3)
    assert out[0, :50].max() == 0 and out[0, 462:].max() == 0 and out[0, 60:450].min() == 200


# ------------------------------------------------------------------------------------------- ingest


def test_ingest_writes_the_present_clips(ingested):
    out, summary = ingested
    present = [c for c in CLIPS if c.vid == VID_A]
    assert sorted(summary.written) == sorted(c.name for c in present)
    assert (summary.skipped, summary.missing_videos, summary.missing_clips) == ([], [VID_B], 1)
    assert sorted(p.name for p in (out / "clips").iterdir()) == sorted(c.name for c in present)
    audio = source_audio()
    for clip in present:
        folder = out / "clips" / clip.name
        record = read_clip(folder)
        meta = read_meta(folder)
        assert (record["width"], record["height"], record["speaker_id"]) == (512, 512, VID_A)
        assert meta["num_frames"] == clip.frames and meta["release_name"] == clip.name
        assert (meta["source"]["start_frame"], meta["source"]["stop_frame"]) == (
            clip.k0,
            clip.k0 + clip.frames,
        )
        assert len(record["audio"]) == clip.frames * 640
        expected_audio = audio[clip.k0 * 640 : (clip.k0 + clip.frames) * 640]
        assert np.abs(record["audio"] / 32767 - expected_audio).max() < 2e-3  # the source's own samples
        # the right source frames: the time block of the first and last frame
        frames = read_frames(folder / "video.mp4")
        crop = square_crop(clip.crop_box or None, 160, 96)
        centres = np.round(crop.keypoints(np.array(TIME_CENTRES)))
        assert [time_code(f, centres) for f in frames] == list(range(clip.k0, clip.k0 + clip.frames))
    assert summary.lines(out)[1].startswith("missing: 1 source video(s) (1 clip(s))")


def test_release_keypoints_land_exactly_on_the_marker(ingested):
    out, _ = ingested
    for clip in CLIPS[:2]:
        folder = out / "clips" / clip.name
        with np.load(folder / "pose.npz") as pose:
            kp, sc = pose["keypoints"], pose["scores"]
        wrist = kp[:, 9]  # our left wrist = CSG-405 point 10
        assert np.allclose(wrist, EXPECTED_MARKER[clip.name], atol=2e-3)
        assert sc[:, 9].min() == pytest.approx(0.9)
        seen = marker_centroid(read_frames(folder / "video.mp4")[3])
        assert np.abs(seen - EXPECTED_MARKER[clip.name]).max() < 1.0  # the picture agrees with the keypoints
    meta = read_meta(out / "clips" / CLIPS[0].name)
    assert (
        meta["crop_box"]["x0"] == 40
        and meta["crop_box"]["size"] == 80
        and meta["crop_box"]["release"] == [40, 16, 120, 80]
    )
    assert meta["poses"]["frame"] == "crop" and "pixels" in meta["poses"]["coords"]
    assert read_meta(out / "clips" / CLIPS[2].name)["source"]["timeline"].startswith("relative to part 1")


def test_missing_report_and_test_pairs(ingested):
    out, _ = ingested
    assert (out / "csg405_missing.txt").read_text() == f"{VID_B}\n"
    pairs = read_test_pairs(out / "test_pairs.json")
    assert [(p["target"], p["ref"], p["same_identity"], p["available"]) for p in pairs] == [
        (CLIPS[0].name, CLIPS[1].name, True, True),
        (CLIPS[0].name, CLIPS[3].name, False, False),
        (CLIPS[2].name, CLIPS[2].name, True, True),
    ]
    assert pairs[1]["ref_speaker"] == VID_B and pairs[0]["ref_clip"] == f"clips/{CLIPS[1].name}"


def test_rerun_skips_finished_clips(release, ingested):
    out, _ = ingested
    stamps = {p: p.stat().st_mtime_ns for p in (out / "clips").glob("*/video.mp4")}
    again = ingest_release(
        release["release"], release["videos"], out, IngestOptions(poses_dir=release["poses"], **OPTIONS)
    )
    assert again.written == [] and again.done_before == 3 and again.skipped == []
    assert {p: p.stat().st_mtime_ns for p in (out / "clips").glob("*/video.mp4")} == stamps


def test_bad_pose_file_is_a_recorded_skip(release, tmp_path):
    poses = tmp_path / "poses"
    shutil.copytree(release["poses"], poses)
    np.save(poses / f"{CLIPS[0].name}.npy", np.zeros((25, 133, 3)))
    np.save(poses / f"{CLIPS[1].name}.npy", np.zeros((40, 1, 134, 3)) + 100)  # 40 frames for a 20-frame cut
    out = tmp_path / "out"
    summary = ingest_release(release["release"], release["videos"], out,
                             IngestOptions(poses_dir=poses, limit=2, **OPTIONS))  # fmt: skip
    reasons = {s["clip"]: s["reason"] for s in summary.skipped}
    assert "133 points" in reasons[CLIPS[0].name]
    assert "40 frames, but the clip" in reasons[CLIPS[1].name] and summary.not_reached == 1
    recorded = json.loads((out / "csg405_skipped.json").read_text())
    assert {s["clip"] for s in recorded} == {CLIPS[0].name, CLIPS[1].name}
    assert not (out / "clips" / CLIPS[0].name).exists()


def test_shard_accepts_the_clip_folders(ingested, tmp_path):
    from csg_lightning.data.shards import read_manifest, write_shards

    out, _ = ingested
    dst = write_shards(out / "clips", tmp_path / "shards", val_speakers=0, test_speakers=0, progress=False)
    manifest = read_manifest(dst)
    assert sorted(manifest["splits"]["train"]["clip_ids"]) == sorted(c.name for c in CLIPS if c.vid == VID_A)


def test_cli_with_an_estimator_from_yaml(release, tmp_path):
    from csg_lightning.csg405.csg405_cli import add_csg405_parser

    yaml_path = tmp_path / "marker.yaml"
    yaml_path.write_text("class_path: csg405_release.MarkerEstimator\ninit_args:\n  threshold: 240\n")
    parser = argparse.ArgumentParser(prog="csg-data")
    add_csg405_parser(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "out"
    args = parser.parse_args(["csg405", str(release["release"]), str(release["videos"]), str(out),
                              "--estimator", str(yaml_path), "--limit", "1", "--quiet", "--part-seconds", "1"])  # fmt: skip
    args.func(args)
    with np.load(out / "clips" / CLIPS[0].name / "pose.npz") as pose:
        kp = pose["keypoints"]
    assert np.abs(kp[:, 9] - EXPECTED_MARKER[CLIPS[0].name]).max() < 1.0
    assert read_meta(out / "clips" / CLIPS[0].name)["poses"]["source"] == "estimator"
    neither = parser.parse_args(["csg405", str(release["release"]), str(release["videos"]), str(out)])
    with pytest.raises(SystemExit, match="give --poses POSE_DIR"):
        neither.func(neither)


def test_part_times_are_placed_on_the_source_timeline(tmp_path):
    from csg_lightning.csg405.manifest import ReleaseClip
    from csg_lightning.csg405.source_videos import Source, find_source, source_start

    def clip(part, start):
        return ReleaseClip(
            0, "n", "v", part, str(start), str(start + 5), float(start), float(start + 5), None
        )

    whole, piece = Source(tmp_path / "v.mp4", False), Source(tmp_path / "v_2.mp4", True)
    assert source_start(clip(0, 12.0), whole)[0] == 12.0
    assert source_start(clip(2, 12.0), whole)[0] == 7212.0  # relative to part 2
    assert source_start(clip(2, 7212.0), whole)[0] == 7212.0  # already absolute
    assert source_start(clip(2, 12.0), piece)[0] == 12.0
    assert source_start(clip(2, 7212.0), piece)[0] == 12.0
    assert find_source(tmp_path, clip(2, 12.0)) is None
    (tmp_path / "v_2.webm").write_bytes(b"x")
    assert find_source(tmp_path, clip(2, 12.0)) == Source(tmp_path / "v_2.webm", True)
    (tmp_path / "v.mkv").write_bytes(b"x")
    assert find_source(tmp_path, clip(2, 12.0)) == Source(tmp_path / "v.mkv", False)


def test_test_list_names_must_be_in_the_manifest(release, tmp_path):
    bad = tmp_path / "test.txt"
    bad.write_text(f"{CLIPS[0].name} nosuch_0_1_2\n")
    options = IngestOptions(poses_dir=release["poses"], test_lists=[bad], **OPTIONS)
    with pytest.raises(
        InputError, match=r"test.txt: line 1: reference 'nosuch_0_1_2' is not a clip of the manifest"
    ):
        ingest_release(release["release"], release["videos"], tmp_path / "out", options)
    assert not (tmp_path / "out").exists()  # checked before anything is written
