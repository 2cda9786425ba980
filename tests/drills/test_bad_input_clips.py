"""Bad clip folders and shard dirs: every video decoded in full, every bad clip of a run reported at once
before any shard is written, ``csg-data shard --skip-bad`` keeping every good clip."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from bad_inputs import assert_names, expect_exit, tree, truncate, write_float_wav, zero_middle
from helpers_clips import make_clip

from csg_lightning.data.clip_folder import read_clip
from csg_lightning.data.records import RecordError
from csg_lightning.data.shards import (
    SPLITS,
    BadClipsError,
    ShardDirError,
    check_split_dir,
    iter_split_records,
    read_manifest,
    write_shards,
)
from csg_lightning.data_cli import main as csg_data
from csg_lightning.io.mp4 import write_mp4


def test_zeroed_video_payload_fails_sharding_not_training(demo_corpus_video, tmp_path, capsys):
    """The landed code sharded this clip (exit 0) and decoding failed at frame 92 of 300 in training."""
    src = tmp_path / "clips"
    shutil.copytree(demo_corpus_video, src)
    clip = sorted(p for p in src.iterdir() if p.is_dir())[1]
    zero_middle(clip / "video.mp4", 150_000)
    with pytest.raises(BadClipsError) as info:
        write_shards(src, tmp_path / "dst", progress=False)
    assert [b["clip_dir"] for b in info.value.bad] == [str(clip)]
    message = expect_exit(csg_data, ["shard", str(src), str(tmp_path / "dst")], "csg-data shard",
                          clip / "video.mp4", "field 'video'", "decoding stopped after")  # fmt: skip
    assert "of 300 frames" in message and not (tmp_path / "dst").exists()


def _video_clip(root, name="spk00_clip000", speaker="spk00", seed=0):
    return make_clip(root, name, speaker, num_frames=40, seed=seed, width=64, height=64, video=True)


def _fewer_frames(folder):
    write_mp4(folder / "video.mp4", np.zeros((30, 64, 64, 3), np.uint8), fps=25)


def _wrong_size(folder):
    write_mp4(folder / "video.mp4", np.zeros((40, 32, 64, 3), np.uint8), fps=25)


def _garbage(folder):
    (folder / "video.mp4").write_bytes(bytes(range(256)) * 64)


def _no_video_stream(folder):
    sf.write(folder / "video.mp4", np.zeros(16000, np.float32), 16000, format="WAV")  # a wav named .mp4


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda f: zero_middle(f / "video.mp4", (f / "video.mp4").stat().st_size // 3), "not a readable mp4"),
        (lambda f: truncate(f / "video.mp4", 0.5), "not a readable mp4"),
        (_fewer_frames, "field 'video' decodes to 30 frames, meta.json says num_frames=40"),
        (_wrong_size, "field 'video' is 64x32, meta.json says 64x64"),
        (_garbage, "field 'video' is not a readable mp4"),
        (_no_video_stream, "field 'video'"),
    ],
    ids=["zeroed-third", "truncated", "fewer-frames", "wrong-size", "garbage", "no-video-stream"],
)
def test_damaged_video_is_refused_naming_the_file(tmp_path, damage, expected):
    folder = _video_clip(tmp_path)
    damage(folder)
    with pytest.raises(RecordError, match=expected) as info:
        read_clip(folder)
    assert_names(str(info.value), folder / "video.mp4", "'video'")


def _pose_zip_damaged(folder):
    zero_middle(folder / "pose.npz", 2000)


def _audio_nan(folder):
    audio, _ = sf.read(folder / "audio.wav", dtype="float32")
    audio[77] = np.nan
    write_float_wav(folder / "audio.wav", audio)


def _scores_above_one(folder):
    pose = dict(np.load(folder / "pose.npz"))
    pose["scores"][3, 3] = 1.01
    np.savez(folder / "pose.npz", **pose)


@pytest.mark.parametrize(
    "damage, file, expected",
    [
        (_pose_zip_damaged, "pose.npz", "not a readable npz file"),
        (_audio_nan, "audio.wav", r"field 'audio' holds 1 NaN/inf sample\(s\) \(first at sample 77\)"),
        (_scores_above_one, "", r"field 'scores' must lie in \[0, 1\]"),
    ],
    ids=["pose-zip", "audio-nan", "scores>1"],
)
def test_damaged_clip_arrays_are_refused(tmp_path, damage, file, expected):
    folder = make_clip(tmp_path, "spk00_clip000", "spk00", num_frames=40)
    damage(folder)
    with pytest.raises(RecordError, match=expected) as info:
        read_clip(folder)
    assert_names(str(info.value), folder / file)


def test_a_float_wav_clip_is_kept(tmp_path):
    """Never lose a good sample: finite float audio is converted, not refused."""
    folder = make_clip(tmp_path, "spk00_clip000", "spk00", num_frames=40)
    audio, _ = sf.read(folder / "audio.wav", dtype="float32")
    write_float_wav(folder / "audio.wav", audio)
    record = read_clip(folder)
    assert record["audio"].dtype == np.int16 and len(record["audio"]) == len(audio)


@pytest.fixture
def corpus_with_three_bad_clips(tmp_path):
    """3 speakers x 2 clips with video; one clip of each speaker broken in a different way."""
    src = tmp_path / "clips"
    for s in range(3):
        for c in range(2):
            _video_clip(src, f"spk{s:02d}_clip{c:03d}", f"spk{s:02d}", seed=10 * s + c)
    bad = {
        "spk00_clip001": "not valid JSON",
        "spk01_clip000": "field 'video' is not a readable mp4",
        "spk02_clip001": "field 'keypoints' holds 1 NaN/inf",
    }
    (src / "spk00_clip001" / "meta.json").write_text("{not json")
    zero_middle(
        src / "spk01_clip000" / "video.mp4", (src / "spk01_clip000" / "video.mp4").stat().st_size // 3
    )
    pose = dict(np.load(src / "spk02_clip001" / "pose.npz"))
    pose["keypoints"][5, 3, 0] = np.nan
    np.savez(src / "spk02_clip001" / "pose.npz", **pose)
    return src, bad


def test_every_bad_clip_is_reported_at_once_before_writing(corpus_with_three_bad_clips, tmp_path):
    src, bad = corpus_with_three_bad_clips
    dst = tmp_path / "dst"
    with pytest.raises(BadClipsError) as info:
        write_shards(src, dst, progress=False)
    assert sorted(b["clip_dir"] for b in info.value.bad) == sorted(str(src / c) for c in bad)
    message = str(info.value)
    assert "3 bad clip folder(s), so no shard was written" in message and "--skip-bad" in message
    for clip, reason in bad.items():
        assert str(src / clip) in message and reason in message, (clip, message)
    assert not dst.exists()
    expect_exit(csg_data, ["shard", str(src), str(dst)], "csg-data shard", *[src / c for c in bad])
    assert not dst.exists()


def test_skip_bad_on_the_command_line_keeps_every_good_clip(corpus_with_three_bad_clips, tmp_path, capsys):
    src, bad = corpus_with_three_bad_clips
    dst = tmp_path / "dst"
    csg_data(["shard", str(src), str(dst), "--skip-bad"])
    printed = capsys.readouterr().out
    manifest = read_manifest(dst)
    assert sorted(s["clip_dir"] for s in manifest["skipped"]) == sorted(str(src / c) for c in bad)
    for clip, reason in bad.items():
        assert any(
            line.startswith("skipped: ") and clip in line and reason in line for line in printed.splitlines()
        )
    assert "3 bad clip(s) skipped" in printed
    good = sorted(p.name for p in src.iterdir() if p.name not in bad)
    kept = sorted(c for s in SPLITS for c in manifest["splits"][s]["clip_ids"])
    assert kept == good
    records = [r for s in SPLITS for r in iter_split_records(dst / s)]
    assert sorted(r["clip_id"] for r in records) == good
    for r in records:  # payloads are stored exactly
        assert bytes(r["video"]) == (src / r["clip_id"] / "video.mp4").read_bytes()
    assert not [p for p in tree(dst) if p.startswith(".") or "/." in p]  # no temporaries left


def test_bad_src_and_dst_exit_with_a_message(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("not a folder")
    make_clip(tmp_path / "clips", "spk00_clip000", "spk00", num_frames=40)
    expect_exit(csg_data, ["shard", str(tmp_path / "nowhere"), str(tmp_path / "d1")], tmp_path / "nowhere",
                "clip folder root not found")  # fmt: skip
    expect_exit(csg_data, ["shard", str(tmp_path / "empty"), str(tmp_path / "d2")], tmp_path / "empty",
                "no clip folders found")  # fmt: skip
    expect_exit(csg_data, ["shard", str(tmp_path / "clips"), str(tmp_path / "a_file")], tmp_path / "a_file",
                "DST is a file")  # fmt: skip
    assert not (tmp_path / "d1").exists() and not (tmp_path / "d2").exists()


def test_damaged_shard_metadata_is_named(demo_shards, tmp_path):
    dst = tmp_path / "shards"
    shutil.copytree(demo_shards, dst)
    (dst / "manifest.json").write_text('{"format": "csg-lightning-shards", ')
    with pytest.raises(ShardDirError, match="not a readable JSON file") as info:
        read_manifest(dst)
    assert_names(str(info.value), dst / "manifest.json")
    (dst / "val" / "split.json").write_text(json.dumps(["not", "an", "object"]))
    with pytest.raises(ShardDirError, match="expected a JSON object, got list") as info:
        check_split_dir(dst / "val")
    assert_names(str(info.value), dst / "val" / "split.json")
