"""The preprocessing report and contact sheet, from per-video records written by hand."""

from __future__ import annotations

import copy
import json

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from csg_lightning.io.validation import InputError, MissingInputError
from csg_lightning.preprocess import contact_sheet as cs
from csg_lightning.preprocess.report import load_records, summarise, write_report
from csg_lightning.skeleton.drawing import draw_pose

RULES = ("min_length", "speech", "second_person", "pose_confidence")
THRESHOLDS = {"min_length": 4.0, "speech": 0.01, "second_person": 0.5, "pose_confidence": 0.6}


def _segment(key: str, start: int, stop: int, values: dict, thumbnail: bool = True) -> dict:
    """A segment whose checks fail where the value is on the wrong side of the threshold."""
    passed = {"min_length": values["min_length"] >= 4.0, "speech": values["speech"] >= 0.01,
              "second_person": values["second_person"] < 0.5, "pose_confidence": values["pose_confidence"] >= 0.6}  # fmt: skip
    checks = [{"name": n, "value": values[n], "threshold": THRESHOLDS[n], "passed": passed[n], "detail": ""}
              for n in RULES]  # fmt: skip
    rejected = [n for n in RULES if not passed[n]]
    seg_id = f"{key}_{start:06d}-{stop:06d}"
    return {"segment_id": seg_id, "start": start, "stop": stop, "seconds": (stop - start) / 25,
            "start_seconds": start / 25, "stop_seconds": stop / 25, "kept": not rejected,
            "clip_id": None if rejected else seg_id, "checks": checks, "rejected_by": rejected,
            "thumbnail": f"thumbs/{seg_id}.jpg" if thumbnail else None}  # fmt: skip


def _records() -> list[dict]:
    a = [
        _segment(
            "a", 0, 250, {"min_length": 10.0, "speech": 0.2, "second_person": 0.1, "pose_confidence": 0.9}
        ),
        _segment(
            "a", 250, 450, {"min_length": 8.0, "speech": 0.3, "second_person": 0.9, "pose_confidence": 0.8}
        ),
        _segment(
            "a", 450, 750, {"min_length": 12.0, "speech": 0.0, "second_person": 0.8, "pose_confidence": 0.7}
        ),
        _segment(
            "a", 750, 900, {"min_length": 6.0, "speech": 0.1, "second_person": 0.05, "pose_confidence": 0.95}
        ),
    ]
    b = [_segment("b", 0, 500, {"min_length": 20.0, "speech": 0.1, "second_person": 0.0,
                                "pose_confidence": 0.3}, thumbnail=False)]  # fmt: skip
    timing = {
        "probe": 1.0,
        "decode_detect_pose": 30.0,
        "qc": 0.5,
        "crop_encode_write": 8.0,
        "thumbnails": 0.5,
    }
    return [
        {"version": 1, "video": "talks/a.mp4", "video_key": "talks_a", "status": "done", "skip_reason": None,
         "frames": 1500, "seconds": 60.0, "config_hash": "abc123", "segments": a, "timing": timing},
        {"version": 1, "video": "talks/b.mp4", "video_key": "talks_b", "status": "done", "skip_reason": None,
         "frames": 500, "seconds": 20.0, "config_hash": "abc123", "segments": b, "timing": timing},
        {"version": 1, "video": "talks/c.mp4", "video_key": "talks_c", "status": "skipped",
         "skip_reason": "/data/videos/talks/c.mp4: the video has no audio track (a clip needs the speech)",
         "probe": {"duration": 36.0}, "config_hash": "abc123", "segments": [], "timing": {"probe": 0.25}},
    ]  # fmt: skip


CONFIG = {
    "config": {"qc": {"min_seconds": 4.0}},
    "inputs": ["talks/a.mp4", "talks/b.mp4", "talks/c.mp4", "talks/d.mp4"],
}


def _write_thumbs(out, records) -> None:
    rng = np.random.default_rng(0)
    for record in records:
        for seg in record["segments"]:
            if seg["thumbnail"]:
                (out / "thumbs").mkdir(exist_ok=True)
                image = rng.integers(0, 255, (54, 96, 3), dtype=np.uint8)
                cv2.imwrite(str(out / seg["thumbnail"]), image)


def test_summary_counts_exact():
    report = summarise(_records(), CONFIG)
    assert report["inputs"] == {
        "listed": 4,
        "records": 3,
        "done": 2,
        "skipped": 1,
        "pending": ["talks/d.mp4"],
    }
    assert (
        report["segments"]["total"] == 5
        and report["segments"]["kept"] == 2
        and report["segments"]["rejected"] == 3
    )
    assert report["segments"]["failed_by_rule"] == {
        "min_length": 0,
        "speech": 1,
        "second_person": 2,
        "pose_confidence": 1,
    }
    # Segment 3 fails speech and second_person: counted under speech only as the first failing rule.
    assert report["segments"]["first_failing_rule"] == {"min_length": 0, "speech": 1, "second_person": 1,
                                                        "pose_confidence": 1}  # fmt: skip
    assert list(report["rules"]) == list(RULES)
    assert report["hours"]["input"] == pytest.approx(80 / 3600)
    assert report["hours"]["skipped_videos"] == pytest.approx(36 / 3600)
    assert report["hours"]["segments"] == pytest.approx(56 / 3600)
    assert report["hours"]["kept"] == pytest.approx(16 / 3600)
    assert report["hours"]["kept_fraction_of_input"] == pytest.approx(16 / 80)
    assert report["skip_reasons"] == {"the video has no audio track (a clip needs the speech)": 1}
    second = report["rules"]["second_person"]
    assert second["threshold"] == 0.5 and second["checked"] == 5 and second["passed"] == 3
    assert second["values"]["kept"] == pytest.approx({"count": 2, "mean": 0.075, "min": 0.05, "p05": 0.0525,
                                                      "p25": 0.0625, "median": 0.075, "p75": 0.0875, "p95": 0.0975,
                                                      "max": 0.1})  # fmt: skip
    assert second["values"]["rejected"]["median"] == pytest.approx(0.8)
    assert report["segment_seconds"]["all"]["max"] == 20.0 and report["segment_seconds"]["kept"]["count"] == 2
    assert (
        report["timing_seconds"]["decode_detect_pose"] == 60.0 and report["timing_seconds"]["probe"] == 2.25
    )
    assert report["config_hashes"] == ["abc123"] and report["config"] == {"qc": {"min_seconds": 4.0}}
    assert [v["kept"] for v in report["videos"]["done"]] == [2, 0]


def test_write_report_files(tmp_path):
    records = _records()
    _write_thumbs(tmp_path, records)
    paths = write_report(tmp_path, records, CONFIG, thumb=48, columns=3)
    assert set(paths) == {"json", "md", "segment_seconds", "contact_sheet", *(f"qc_{r}" for r in RULES)}
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["segments"]["failed_by_rule"]["second_person"] == 2
    assert report["rules"]["speech"]["plot"] == "report_plots/qc_speech.png"
    assert report["contact_sheet"] == {
        "kept_shown": 2,
        "kept_total": 2,
        "rejected_shown": 3,
        "rejected_total": 3,
    }
    md = (tmp_path / "report.md").read_text()
    for rule in RULES:
        assert f"| {rule} |" in md and f"![{rule}](report_plots/qc_{rule}.png)" in md
    assert "![contact sheet](contact_sheet.png)" in md and "talks/d.mp4" in md
    assert "| the video has no audio track (a clip needs the speech) | 1 |" in md
    for key, path in paths.items():
        if key not in ("json", "md"):
            with Image.open(path) as image:
                image.verify()
            with Image.open(path) as image:
                assert image.format == "PNG"
                if key != "contact_sheet":
                    assert image.size == (640, 400)
    assert not list(tmp_path.rglob(".*tmp*"))  # atomic writes leave no temp files


def test_threshold_line_drawn(tmp_path):
    """The plot of a rule differs from the same plot without a threshold only by the dashed line."""
    from csg_lightning.preprocess.report import rule_histogram

    values = {"kept": [0.1, 0.2, 0.3], "rejected": [0.7, 0.9]}
    with_line = np.asarray(Image.open(rule_histogram(tmp_path / "a.png", "r", values, 0.5)).convert("L"))
    without = np.asarray(Image.open(rule_histogram(tmp_path / "b.png", "r", values, None)).convert("L"))
    dark_columns = ((with_line < 60) & (without > 200)).sum(0)
    assert dark_columns.max() > 100  # a long vertical line
    assert (dark_columns > 100).sum() <= 3


def test_load_records_round_trip_and_refusals(tmp_path):
    with pytest.raises(MissingInputError, match="videos"):
        load_records(tmp_path)
    videos = tmp_path / "videos"
    videos.mkdir()
    records = _records()
    for record in records:
        (videos / f"{record['video_key']}.json").write_text(json.dumps(record))
    (videos / ".talks_z.tmp-host-1-abcd.json").write_text("{")  # a writer's temp file: ignored
    assert load_records(tmp_path) == records

    (videos / "talks_x.json").write_text('{"video": "x.mp4",\n "status": }')
    with pytest.raises(InputError, match=r"talks_x\.json: not valid JSON \(line 2"):
        load_records(tmp_path)
    bad = copy.deepcopy(records[0])
    bad["segments"][1]["kept"] = True
    (videos / "talks_x.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"talks_x\.json: field 'segments\[1\]\.kept' must be False"):
        load_records(tmp_path)
    bad = copy.deepcopy(records[0])
    bad["segments"][2]["rejected_by"] = ["second_person"]
    (videos / "talks_x.json").write_text(json.dumps(bad))
    with pytest.raises(
        InputError,
        match=r"segments\[2\]\.rejected_by' must list the failed checks \['speech', 'second_person'\]",
    ):
        load_records(tmp_path)
    bad = {**records[0], "status": "finished"}
    (videos / "talks_x.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="field 'status' must be 'done' or 'skipped'"):
        load_records(tmp_path)


def test_sample_evenly():
    assert cs.sample_evenly(list(range(10)), 4) == [0, 3, 6, 9]
    assert cs.sample_evenly([1, 2], 5) == [1, 2]


def _rings(sheet: np.ndarray, colour) -> int:
    mask = (sheet == np.array(colour, np.uint8)).all(-1)
    labels, n = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())[1:]
    return int((sizes > 100).sum())


def test_contact_sheet_tiles(tmp_path):
    records = _records()
    _write_thumbs(tmp_path, records)
    sheet = cs.contact_sheet(records, tmp_path, tmp_path / "sheet.png", columns=2, thumb=40, max_tiles=2)
    assert (sheet.kept_total, sheet.kept_shown, sheet.rejected_total, sheet.rejected_shown) == (2, 2, 3, 2)
    image = cv2.cvtColor(cv2.imread(str(sheet.path)), cv2.COLOR_BGR2RGB)
    cell_w, cell_h = 40 + 2 * cs.FRAME, 40 + 2 * cs.FRAME + cs.LABEL_LINES * cs.LINE
    assert image.shape == (2 * (cs.HEADER + cell_h + cs.GAP), cs.GAP + 2 * (cell_w + cs.GAP), 3)
    assert sheet.size == (image.shape[1], image.shape[0])
    assert _rings(image, cs.KEPT_COLOUR) == 2 and _rings(image, cs.REJECTED_COLOUR) == 2
    # All five when the cap allows; the segment of video b has no thumbnail: a grey tile.
    sheet = cs.contact_sheet(records, tmp_path, tmp_path / "all.png", columns=2, thumb=40)
    image = cv2.cvtColor(cv2.imread(str(sheet.path)), cv2.COLOR_BGR2RGB)
    assert _rings(image, cs.KEPT_COLOUR) == 2 and _rings(image, cs.REJECTED_COLOUR) == 3
    assert (image == 90).all(-1).sum() > 40 * 40 // 2


def test_draw_thumbnail_blends_skeleton():
    rng = np.random.default_rng(1)
    frame = rng.integers(40, 200, (90, 160, 3), dtype=np.uint8)
    keypoints = rng.uniform([10, 10], [150, 80], (134, 2)).astype(np.float32)
    scores = np.ones(134, np.float32)
    thumb = cs.draw_thumbnail(frame, keypoints, scores, size=64)
    assert thumb.shape == (36, 64, 3) and thumb.dtype == np.uint8
    pose = draw_pose(keypoints, scores, 160, 90, out_size=(36, 64), canvas_size=None, swap_rb=False)
    drawn = pose.max(-1) > 0
    assert 0.05 < drawn.mean() < 0.95
    np.testing.assert_array_equal(thumb[drawn], pose[drawn])
    np.testing.assert_array_equal(
        thumb[~drawn], cv2.resize(frame, (64, 36), interpolation=cv2.INTER_AREA)[~drawn]
    )
    with pytest.raises(ValueError, match="RGB uint8"):
        cs.draw_thumbnail(frame.astype(np.float32), keypoints, scores)
