"""Pose importers on hand-built files whose meaning is known: index maps, units, persons, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from csg_lightning.io.validation import InputError, load_skeleton_npz
from csg_lightning.pose.importers import (
    ImportOptions,
    csg405,
    dwpose134,
    dwpose_dict,
    import_poses,
    write_imported,
)

# DWPose 134 index -> our storage index, written out by hand from DWPose's wholebody.py
# (mmpose_idx / openpose_idx after inserting the neck at 17).
DWPOSE_TO_OURS = {0: 0, 1: 17, 2: 6, 3: 8, 4: 10, 5: 5, 6: 7, 7: 9, 8: 12, 9: 14, 10: 16, 11: 11, 12: 13,
                  13: 15, 14: 2, 15: 1, 16: 4, 17: 3, **{i: i for i in range(18, 134)}}  # fmt: skip
# CSG-405 134 index -> ours: neck first, then COCO-WholeBody 133.
CSG405_TO_OURS = {0: 17, **{i: i - 1 for i in range(1, 18)}, **{i: i for i in range(18, 134)}}


def _skeleton(frames: int, seed: int = 0, size: float = 512.0):
    """Random pixel skeletons [T, 134, 2] and scores [T, 134] in (0.5, 1], neck score = min(shoulders)."""
    rng = np.random.default_rng(seed)
    kp = rng.uniform(1.0, size - 1.0, (frames, 134, 2)).astype(np.float32)
    sc = rng.uniform(0.5, 1.0, (frames, 134)).astype(np.float32)
    sc[:, 17] = np.minimum(sc[:, 5], sc[:, 6])
    return kp, sc


def _identity_coded(n_points: int = 134) -> np.ndarray:
    """A [n, 3] array whose point i sits at (10 + i, 1000 + i) with score 0.9 (pixels)."""
    i = np.arange(n_points, dtype=np.float64)
    return np.stack([10 + i, 1000 + i, np.full(n_points, 0.9)], axis=-1)


# -------------------------------------------------------------------------------------------- dwpose134


def test_dwpose134_index_map_and_left_wrist(tmp_path):
    array = _identity_coded()
    array[7, :2] = (100, 200)  # DWPose 7 = left wrist
    np.save(tmp_path / "frame.npy", array)
    out = import_poses(tmp_path / "frame.npy", "dwpose134")
    assert out.keypoints.shape == (1, 134, 2) and out.keypoints.dtype == np.float32
    np.testing.assert_array_equal(out.keypoints[0, 9], [100, 200])  # our 9 = left wrist
    for theirs, ours in DWPOSE_TO_OURS.items():
        if theirs != 7:
            np.testing.assert_array_equal(out.keypoints[0, ours], [10 + theirs, 1000 + theirs])
    np.testing.assert_allclose(out.scores, 0.9, rtol=1e-6)
    assert out.summary["coords"]["mode"] == "pixels"


def test_dwpose134_round_trip_shapes_and_scores(tmp_path):
    kp, sc = _skeleton(6)
    exported = dwpose134.export(kp, sc)
    np.save(tmp_path / "clip.npy", exported)
    back = import_poses(tmp_path / "clip.npy", "dwpose134")
    np.testing.assert_array_equal(back.keypoints, kp)
    np.testing.assert_array_equal(back.scores, sc)
    # [T, 134, 2] keypoints with scores in the same .npz, and with a separate --scores file.
    np.savez(tmp_path / "clip.npz", keypoints=exported[..., :2], scores=exported[..., 2])
    np.testing.assert_array_equal(import_poses(tmp_path / "clip.npz", "dwpose134").keypoints, kp)
    np.save(tmp_path / "xy.npy", exported[..., :2])
    np.save(tmp_path / "sc.npy", exported[..., 2])
    opts = ImportOptions(scores_path=tmp_path / "sc.npy")
    np.testing.assert_array_equal(import_poses(tmp_path / "xy.npy", "dwpose134", opts).scores, sc)
    # Without scores every present point gets 1, and the summary says so.
    plain = import_poses(tmp_path / "xy.npy", "dwpose134")
    assert (plain.scores == 1).all() and any("no scores" in n for n in plain.summary["notes"])


def test_dwpose134_persons_axis_largest_or_chosen(tmp_path):
    kp, sc = _skeleton(3)
    small = kp * 0.1 + 5  # a person a tenth of the size
    both = np.stack([dwpose134.export(small, sc), dwpose134.export(kp, sc)], axis=1)  # [T, 2, 134, 3]
    np.save(tmp_path / "two.npy", both)
    largest = import_poses(tmp_path / "two.npy", "dwpose134")
    np.testing.assert_array_equal(largest.keypoints, kp)
    assert (largest.person == 1).all() and "index 1" in largest.summary["person"]["rule"]
    first = import_poses(tmp_path / "two.npy", "dwpose134", ImportOptions(person=0))
    np.testing.assert_allclose(first.keypoints, small, rtol=1e-6)
    with pytest.raises(InputError, match="--person 2: .* holds 2 person"):
        import_poses(tmp_path / "two.npy", "dwpose134", ImportOptions(person=2))


def test_dwpose134_missing_half_body_and_normalised(tmp_path):
    array = _identity_coded()
    array[:, :2] /= 2048.0  # canvas-normalised [0, 1]
    array[3, :2] = -1  # DWPose 3 = right elbow, marked missing
    array[14, 0] = np.nan  # right eye
    legs = [9, 10, 12, 13, 18, 19, 20, 21, 22, 23]  # knees, ankles, feet (DWPose order)
    array[legs, 2] = 0.0  # half body
    np.save(tmp_path / "norm.npy", array)
    with pytest.raises(InputError, match=r"norm\.npy: coordinates are normalised .*--width and --height"):
        import_poses(tmp_path / "norm.npy", "dwpose134")
    out = import_poses(tmp_path / "norm.npy", "dwpose134", ImportOptions(width=2048, height=1024))
    assert out.summary["coords"]["mode"] == "unit"
    assert np.isfinite(out.keypoints).all()
    for ours in (8, 2, *[DWPOSE_TO_OURS[j] for j in legs]):
        assert out.scores[0, ours] == 0 and (out.keypoints[0, ours] == 0).all()
    np.testing.assert_allclose(out.keypoints[0, 9], [10 + 7, (1000 + 7) / 2], rtol=1e-6)  # y scaled by 1024
    assert out.scores[0, 9] == np.float32(0.9)


def test_dwpose134_scores_above_one_clipped_and_neck_rule(tmp_path):
    array = _identity_coded()
    array[0, 2] = 3.5  # RTMPose SimCC scores can exceed 1
    array[1, 2], array[2, 2], array[5, 2] = 1.0, 0.4, 0.8  # neck 1 (DWPose's 0/1), shoulders 0.4 / 0.8
    np.save(tmp_path / "f.npy", array)
    out = import_poses(tmp_path / "f.npy", "dwpose134")
    assert out.scores[0, 0] == 1.0 and out.summary["scores_clipped_to_1"] == 1
    assert out.scores[0, 17] == np.float32(0.4)  # min(neck, shoulders), as add_neck


# ------------------------------------------------------------------------------------------ dwpose-dict


def _two_person_dict():
    """Person 0 small (missing knees), person 1 large; 512 x 512 canvas; hands stacked left, left, right, right."""
    candidate = np.zeros((36, 2))
    candidate[:18] = 0.1 + 0.01 * np.arange(18)[:, None]  # person 0: a small body
    candidate[18:] = np.linspace(0.1, 0.9, 18)[:, None] * [1.0, 0.8]  # person 1: a big one
    candidate[18 + 7] = (100 / 512, 200 / 512)  # person 1's left wrist (OpenPose 7) at (100, 200) px
    subset = np.arange(36, dtype=np.float64).reshape(2, 18)
    subset[0, [9, 12]] = -1  # person 0's knees missing
    hands = np.full((4, 21, 2), 0.5)
    hands[1, 0] = (0.25, 0.75)  # row 1: person 1's LEFT hand root
    hands[3, 0] = (0.75, 0.25)  # row 3: person 1's RIGHT hand root
    hands[3, 5] = -1  # a missing right-hand point (ControlNet writes -1)
    faces = np.full((2, 68, 2), 0.3)
    faces[1, 48] = (0.5, 0.625)  # person 1's mouth corner -> our 24 + 48
    return {"bodies": {"candidate": candidate, "subset": subset}, "hands": hands, "faces": faces}


def test_dwpose_dict_layout_persons_and_missing(tmp_path):
    path = tmp_path / "pose.npy"
    np.save(path, _two_person_dict(), allow_pickle=True)
    with pytest.raises(InputError, match="--width and --height"):
        import_poses(path, "dwpose-dict")
    out = import_poses(path, "dwpose-dict", ImportOptions(width=512, height=512))
    assert out.person.tolist() == [1]  # the larger
    kp, sc = out.keypoints[0], out.scores[0]
    np.testing.assert_allclose(kp[9], [100, 200], atol=1e-4)  # left wrist
    np.testing.assert_allclose(kp[92], [128, 384])  # left hand root from row N + 0 = 1
    np.testing.assert_allclose(kp[113], [384, 128])  # right hand root from row 2N - 1 = 3
    np.testing.assert_allclose(kp[24 + 48], [256, 320])
    assert sc[113 + 5] == 0 and (kp[113 + 5] == 0).all()
    assert (sc[18:24] == 0).all()  # no feet in the dict: missing
    assert sc[9] == 1 and sc[24] == 1  # no score arrays: present points count as 1
    person0 = import_poses(path, "dwpose-dict", ImportOptions(width=512, height=512, person=0))
    knees = [13, 14]  # OpenPose 12 = L knee -> 13, OpenPose 9 = R knee -> 14
    assert (person0.scores[0, knees] == 0).all() and person0.scores[0, 0] == 1


def test_dwpose_dict_round_trip_with_scores(tmp_path):
    kp, sc = _skeleton(1)
    kp[0, :, 1] /= 2  # a 512 x 256 canvas
    pose = dwpose_dict.export(kp[0], sc[0], width=512, height=256)
    np.save(tmp_path / "p.npy", pose, allow_pickle=True)
    back = import_poses(tmp_path / "p.npy", "dwpose-dict", ImportOptions(width=512, height=256))
    np.testing.assert_array_equal(back.keypoints, kp)
    np.testing.assert_array_equal(back.scores, sc)


def test_dwpose_dict_folder_natural_order_and_skips(tmp_path):
    folder = tmp_path / "poses"
    folder.mkdir()
    kp, sc = _skeleton(3)
    for t, name in enumerate(["frame_2.npy", "frame_10.npy", "frame_1.npy"]):  # numeric order: 1, 2, 10
        np.save(folder / name, dwpose_dict.export(kp[t], sc[t], 512, 512), allow_pickle=True)
    np.save(folder / "frame_3.npy", {"no_bodies": 1}, allow_pickle=True)  # bad: not a pose dict
    (folder / "notes.txt").write_text("not a pose")
    out = import_poses(folder, "dwpose-dict", ImportOptions(width=512, height=512))
    assert out.keypoints.shape == (4, 134, 2)
    np.testing.assert_array_equal(out.keypoints[[0, 1, 3]], kp[[2, 0, 1]])  # frame_1, frame_2, frame_10
    assert (out.scores[2] == 0).all() and out.person.tolist() == [0, 0, -1, 0]
    [skip] = out.summary["skipped"]
    assert skip["frame"] == 2 and skip["file"] == "frame_3.npy" and "'bodies'" in skip["error"]
    assert out.summary["ignored_files"] == ["notes.txt"] and out.summary["empty_frames"] == [2]
    with pytest.raises(InputError, match=r"frame_3\.npy: expected a pose dict"):
        import_poses(folder, "dwpose-dict", ImportOptions(width=512, height=512, strict=True))


def test_dwpose_dict_refuses_pickled_code_in_a_folder(tmp_path):
    folder = tmp_path / "poses"
    folder.mkdir()
    kp, sc = _skeleton(1)
    np.save(folder / "0.npy", dwpose_dict.export(kp[0], sc[0], 512, 512), allow_pickle=True)
    marker = tmp_path / "pwned"
    with open(folder / "1.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        f.write(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    out = import_poses(folder, "dwpose-dict", ImportOptions(width=512, height=512))
    assert not marker.exists()
    assert "os.system" in out.summary["skipped"][0]["error"]
    with pytest.raises(InputError, match=r"1\.npy: refused to unpickle the global os\.system"):
        import_poses(folder / "1.npy", "dwpose-dict", ImportOptions(width=512, height=512))
    assert not marker.exists()


def test_dwpose_dict_list_file_and_mimicmotion_scores(tmp_path):
    pose = _two_person_dict()
    pose["bodies"]["score"] = np.full((2, 18), 0.8)
    pose["hands_score"] = np.full((4, 21), 0.6)
    pose["faces_score"] = np.full((2, 68), 0.7)
    frames = np.empty(2, dtype=object)
    frames[0], frames[1] = pose, pose
    np.save(tmp_path / "clip.npy", frames, allow_pickle=True)
    out = import_poses(tmp_path / "clip.npy", "dwpose-dict", ImportOptions(width=512, height=512))
    assert out.keypoints.shape == (2, 134, 2)
    assert out.scores[0, 9] == np.float32(0.8) and out.scores[0, 92] == np.float32(0.6)
    assert out.scores[0, 24] == np.float32(0.7)


# ----------------------------------------------------------------------------------------------- csg405


def test_csg405_index_map_and_person_axis(tmp_path):
    person = _identity_coded()
    person[10, :2] = (100, 200)  # CSG-405 10 = COCO 9 = left wrist
    small = person.copy()
    small[:, :2] = small[:, :2] * 0.01
    clip = np.stack([small, person])[None].repeat(2, axis=0)  # (T=2, persons=2, 134, 3)
    np.save(tmp_path / "clip.npy", clip)
    out = import_poses(tmp_path / "clip.npy", "csg405")
    assert out.person.tolist() == [1, 1]
    np.testing.assert_array_equal(out.keypoints[0, 9], [100, 200])
    for theirs, ours in CSG405_TO_OURS.items():
        if theirs != 10:
            np.testing.assert_array_equal(out.keypoints[1, ours], [10 + theirs, 1000 + theirs])


def test_csg405_round_trips_pixels_and_signed(tmp_path):
    kp, sc = _skeleton(5)
    np.save(tmp_path / "px.npy", csg405.export(kp, sc))
    back = import_poses(tmp_path / "px.npy", "csg405")
    np.testing.assert_array_equal(back.keypoints, kp)
    np.testing.assert_array_equal(back.scores, sc)
    np.save(tmp_path / "signed.npy", csg405.export(kp, sc, "signed", 512, 512))
    back = import_poses(tmp_path / "signed.npy", "csg405", ImportOptions(width=512, height=512))
    assert back.summary["coords"]["mode"] == "signed"
    np.testing.assert_array_equal(back.keypoints, kp)
    forced = import_poses(
        tmp_path / "signed.npy", "csg405", ImportOptions(width=512, height=512, coords="unit")
    )
    assert forced.summary["coords"]["rule"] == "--coords unit"


def _release_global_to_local(g133: np.ndarray) -> np.ndarray:
    """The CSG-405 release's global_to_local on COCO-WholeBody-133 [T, 133, 3], written out step by step."""
    neck = g133[:, [5, 6], :2].mean(axis=1, keepdims=True)
    local = g133.copy()
    local[:, :, :2] -= neck
    local[:, 23:91, :2] -= local[:, 0:1, :2]  # face relative to the nose
    local[:, 91:112, :2] -= local[:, 9:10, :2]  # left hand relative to the left wrist
    local[:, 112:133, :2] -= local[:, 10:11, :2]  # right hand relative to the right wrist
    neck_row = np.concatenate([neck, np.ones_like(neck[..., :1])], axis=-1)
    return np.concatenate([neck_row, local], axis=1)  # [T, 134, 3], neck first


def test_csg405_local_inverts_the_release_transform(tmp_path):
    g = np.zeros((1, 133, 3))
    g[..., 2] = 0.9
    g[0, 5, :2], g[0, 6, :2] = (300, 100), (200, 100)  # shoulders -> neck (250, 100)
    g[0, 0, :2] = (250, 60)  # nose
    g[0, 9, :2] = (100, 200)  # left wrist
    g[0, 10, :2] = (400, 220)  # right wrist
    g[0, 23 + 30, :2] = (252, 55)  # a face point (68-point 30, nose tip)
    g[0, 91 + 8, :2] = (90, 170)  # left index fingertip
    g[0, 112, :2] = (405, 230)  # right hand root
    local = _release_global_to_local(g)
    np.testing.assert_array_equal(local[0, 0, :2], [250, 100])  # neck, global
    np.testing.assert_array_equal(local[0, 1 + 91 + 8, :2], [-10, -30])  # fingertip - left wrist
    np.save(tmp_path / "local.npy", local[:, None])  # (T, persons, 134, 3)
    out = import_poses(tmp_path / "local.npy", "csg405-local")
    kp = out.keypoints[0]
    np.testing.assert_array_equal(kp[17], [250, 100])
    np.testing.assert_array_equal(kp[0], [250, 60])
    np.testing.assert_array_equal(kp[9], [100, 200])
    np.testing.assert_array_equal(kp[24 + 30], [252, 55])
    np.testing.assert_array_equal(kp[92 + 8], [90, 170])
    np.testing.assert_array_equal(kp[113], [405, 230])
    assert out.scores[0, 17] == np.float32(0.9)  # the file's neck confidence 1 -> min with shoulders


def test_csg405_local_round_trip_and_scales(tmp_path):
    kp, sc = _skeleton(4, seed=3)
    np.save(tmp_path / "local.npy", csg405.export_local(kp, sc))
    back = import_poses(tmp_path / "local.npy", "csg405-local")
    np.testing.assert_array_equal(back.keypoints, kp)
    np.testing.assert_array_equal(back.scores, sc)
    np.save(tmp_path / "scaled.npy", csg405.export_local(kp, sc, face_scale=2.0, mouth_scale=4.0))
    opts = ImportOptions(face_scale=2.0, mouth_scale=4.0)
    np.testing.assert_array_equal(import_poses(tmp_path / "scaled.npy", "csg405-local", opts).keypoints, kp)


def test_csg405_refuses_no_legs_and_133(tmp_path):
    np.save(tmp_path / "noleg.npy", np.zeros((3, 1, 124, 3)))
    with pytest.raises(InputError, match=r"noleg\.npy: shape \[3, 1, 124, 3\].*'no legs'"):
        import_poses(tmp_path / "noleg.npy", "csg405-local")
    np.save(tmp_path / "coco.npy", np.zeros((3, 133, 3)))
    with pytest.raises(InputError, match="without CSG-405's leading neck"):
        import_poses(tmp_path / "coco.npy", "csg405")
    with pytest.raises(InputError, match="hold whole clips"):
        import_poses(tmp_path, "csg405")


# ---------------------------------------------------------------------------------------- bad input, CLI


def test_bad_files_are_named(tmp_path):
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(InputError, match=r"text\.npy: not a \.npy file"):
        import_poses(tmp_path / "text.npy", "dwpose134")
    np.save(tmp_path / "shape.npy", np.zeros((5, 133, 3)))
    with pytest.raises(InputError, match=r"shape\.npy: keypoints have shape \[5, 133, 3\], expected"):
        import_poses(tmp_path / "shape.npy", "dwpose134")
    np.save(tmp_path / "dict.npy", {"bodies": 1}, allow_pickle=True)
    with pytest.raises(InputError, match="pickled Python objects .*dwpose-dict"):
        import_poses(tmp_path / "dict.npy", "dwpose134")
    np.save(tmp_path / "array.npy", np.zeros((134, 3)))
    with pytest.raises(InputError, match=r"array\.npy: holds a numeric array .*dwpose134"):
        import_poses(tmp_path / "array.npy", "dwpose-dict", ImportOptions(width=1, height=1))
    np.save(tmp_path / "empty.npy", np.zeros((2, 134, 3)))  # every score 0
    with pytest.raises(InputError, match="no frame holds a person with a point present"):
        import_poses(tmp_path / "empty.npy", "dwpose134")
    with pytest.raises(InputError, match="not found"):
        import_poses(tmp_path / "missing.npy", "csg405")
    with pytest.raises(InputError, match="--scores .*only for one dwpose134 file"):
        import_poses(tmp_path / "empty.npy", "csg405", ImportOptions(scores_path=tmp_path / "empty.npy"))
    with pytest.raises(InputError, match="--face-scale / --mouth-scale: only for --format csg405-local"):
        import_poses(tmp_path / "empty.npy", "csg405", ImportOptions(face_scale=2.0))


def test_dwpose_dict_frame_without_people(tmp_path):
    """DWPose finds nobody: empty candidate/subset/hands/faces -> an empty frame, listed, timing kept."""
    folder = tmp_path / "poses"
    folder.mkdir()
    kp, sc = _skeleton(2)
    nobody = {"bodies": {"candidate": np.zeros((0, 2)), "subset": np.zeros((0, 18))},
              "hands": np.zeros((0, 21, 2)), "faces": np.zeros((0, 68, 2))}  # fmt: skip
    np.save(folder / "0.npy", dwpose_dict.export(kp[0], sc[0], 512, 512), allow_pickle=True)
    np.save(folder / "1.npy", nobody, allow_pickle=True)
    np.save(folder / "2.npy", dwpose_dict.export(kp[1], sc[1], 512, 512), allow_pickle=True)
    out = import_poses(folder, "dwpose-dict", ImportOptions(width=512, height=512))
    assert out.person.tolist() == [0, -1, 0] and out.summary["empty_frames"] == [1]
    assert out.summary["skipped"] == [] and (out.scores[1] == 0).all()
    np.testing.assert_array_equal(out.keypoints[2], kp[1])


def test_cli_writes_what_sample_skeleton_reads(tmp_path, capsys):
    from csg_lightning.data_cli import main
    from csg_lightning.generation.sample_skeleton import load_reference

    kp, sc = _skeleton(3)
    folder = tmp_path / "dicts"
    folder.mkdir()
    for t in range(3):
        np.save(folder / f"{t:04d}.npy", dwpose_dict.export(kp[t], sc[t], 512, 512), allow_pickle=True)
    out = tmp_path / "ref.npz"
    main(["import-poses", str(folder), "--format", "dwpose-dict", "--out", str(out), "--width", "512",
          "--height", "512", "--fps", "30"])  # fmt: skip
    printed = capsys.readouterr().out
    assert "3 frame(s) at 30 fps" in printed and "coordinates: unit x 512 x 512" in printed
    keypoints, scores = load_skeleton_npz(out, "ref", sequence=True)
    np.testing.assert_array_equal(keypoints, kp)
    ref_kp, ref_sc = load_reference(out)
    np.testing.assert_array_equal(ref_kp, kp[0])
    with np.load(out) as data:
        assert int(data["fps"]) == 30 and data["person"].tolist() == [0, 0, 0]
        assert json.loads(str(data["summary"]))["format"] == "dwpose-dict"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dicts", "ref.npz"]  # no temp file left
    with pytest.raises(SystemExit, match="csg-data import-poses: .*--width and --height"):
        main(["import-poses", str(folder), "--format", "dwpose-dict", "--out", str(tmp_path / "x.npz")])
    with pytest.raises(SystemExit, match=r"--out .*x\.txt: expected a path ending in \.npz"):
        main(["import-poses", str(folder), "--format", "dwpose-dict", "--out", str(tmp_path / "x.txt")])
    assert not (tmp_path / "x.npz").exists()


def test_write_imported_round_trip(tmp_path):
    kp, sc = _skeleton(2)
    np.save(tmp_path / "a.npy", dwpose134.export(kp, sc))
    out = write_imported(tmp_path / "a.npz", import_poses(tmp_path / "a.npy", "dwpose134"))
    keypoints, scores = load_skeleton_npz(out, "ref", sequence=True)
    np.testing.assert_array_equal(keypoints, kp)
    np.testing.assert_array_equal(scores, sc)
