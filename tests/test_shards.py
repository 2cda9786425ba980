"""Clip folders -> litdata shards: exact round trip, speaker split, stats, validation, atomic re-runs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from helpers_clips import make_clip, make_corpus

from csg_lightning.data.clip_folder import read_clip
from csg_lightning.data.normalization import load_stats, local_features
from csg_lightning.data.records import RecordError
from csg_lightning.data.shards import (
    SPLITS,
    ShardDirError,
    check_split_dir,
    iter_split_records,
    read_manifest,
    split_speakers,
    write_shards,
)
from csg_lightning.data.skeleton_audio import SkeletonAudioDataModule
from csg_lightning.skeleton.local import local_confidence


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    make_corpus(root, num_speakers=4, clips_per_speaker=3, num_frames=300)
    make_clip(
        root, "spk01_video", "spk01", num_frames=40, seed=99, width=64, height=64, video=True, extra_audio=123
    )
    return root


@pytest.fixture(scope="module")
def shards(corpus, tmp_path_factory):
    return write_shards(
        corpus,
        tmp_path_factory.mktemp("shards") / "dst",
        val_speakers=1,
        test_speakers=1,
        seed=0,
        progress=False,
    )


def _source(folder):
    with np.load(folder / "pose.npz") as pose:
        kp, sc = pose["keypoints"], pose["scores"]
    audio, _ = sf.read(folder / "audio.wav", dtype="int16")
    video = (folder / "video.mp4").read_bytes() if (folder / "video.mp4").exists() else b""
    return kp, sc, audio, video, json.loads((folder / "meta.json").read_text())


def test_round_trip_exact_and_split_by_speaker(corpus, shards):
    manifest = read_manifest(shards)
    seen, speakers_of = set(), {}
    for split in SPLITS:
        info = check_split_dir(shards / split)
        records = list(iter_split_records(shards / split))
        assert [r["clip_id"] for r in records] == info["clip_ids"] == manifest["splits"][split]["clip_ids"]
        for rec in records:
            kp, sc, audio, video, meta = _source(corpus / rec["clip_id"])
            assert rec["keypoints"].dtype == np.float32 and np.array_equal(rec["keypoints"], kp)
            assert rec["scores"].dtype == np.float32 and np.array_equal(rec["scores"], sc)
            assert rec["audio"].dtype == np.int16 and np.array_equal(rec["audio"], audio)
            assert bytes(rec["video"]) == video
            assert (rec["speaker_id"], rec["fps"], rec["width"], rec["height"]) == (
                meta["speaker_id"],
                25,
                meta["width"],
                meta["height"],
            )
            speakers_of.setdefault(split, set()).add(rec["speaker_id"])
            seen.add(rec["clip_id"])
    assert seen == {p.name for p in corpus.iterdir()}
    assert all(len(speakers_of[a] & speakers_of[b]) == 0 for a in SPLITS for b in SPLITS if a < b)
    assert [len(speakers_of[s]) for s in SPLITS] == [2, 1, 1]
    assert manifest["splits"]["train"]["speakers"] == sorted(speakers_of["train"])
    # Deterministic by seed; another seed gives another assignment for some seed.
    spk = [f"spk{i:02d}" for i in range(4)]
    assert split_speakers(spk, 1, 1, seed=0) == split_speakers(spk, 1, 1, seed=0)
    assert any(split_speakers(spk, 1, 1, seed=s) != split_speakers(spk, 1, 1, seed=0) for s in range(1, 6))


def test_stats_are_confidence_masked_moments_of_train(corpus, shards):
    stats = load_stats(shards)
    feats, masks = [], []
    for clip in read_manifest(shards)["splits"]["train"]["clip_ids"]:
        kp, sc, *_ = _source(corpus / clip)
        feats.append(local_features(kp.astype(np.float64)))
        masks.append(np.repeat(local_confidence(sc) > 0.7, 2, axis=-1))
    f, m = np.concatenate(feats), np.concatenate(masks)
    mean = (f * m).sum(0) / m.sum(0)
    std = np.sqrt((((f - mean) ** 2) * m).sum(0) / m.sum(0))
    np.testing.assert_allclose(stats["mean"], mean, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(stats["std"], std, rtol=1e-4, atol=1e-3)
    assert stats["mean"].dtype == np.float32 and stats["std"].shape == (246,)
    # The reference is a real, confident train frame.
    clip, frame = str(stats["reference_clip_id"]), int(stats["reference_frame"])
    assert clip in read_manifest(shards)["splits"]["train"]["clip_ids"]
    kp, sc, *_ = _source(corpus / clip)
    assert np.array_equal(stats["reference_keypoints"], kp[frame])
    assert np.array_equal(stats["reference_scores"], sc[frame])
    assert (local_confidence(sc[frame]) > 0.7).mean() >= 0.9


def _corrupt(folder, kind):
    pose = dict(np.load(folder / "pose.npz"))
    meta = json.loads((folder / "meta.json").read_text())
    if kind == "nan":
        pose["keypoints"][5, 3, 0] = np.nan
    elif kind == "shape":
        pose["keypoints"] = pose["keypoints"][:, :133]
    elif kind == "scores_frames":
        pose["scores"] = pose["scores"][:-1]
    elif kind == "short_audio":
        audio, _ = sf.read(folder / "audio.wav", dtype="int16")
        sf.write(folder / "audio.wav", audio[:-10], 16000, subtype="PCM_16")
    elif kind == "rate":
        audio, _ = sf.read(folder / "audio.wav", dtype="int16")
        sf.write(folder / "audio.wav", audio, 22050, subtype="PCM_16")
    elif kind == "fps":
        meta["fps"] = 30
    elif kind == "num_frames":
        meta["num_frames"] += 1
    elif kind == "clip_id":
        meta["clip_id"] = "someone_else"
    np.savez(folder / "pose.npz", **pose)
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "kind, field",
    [
        ("nan", "keypoints"),
        ("shape", "keypoints"),
        ("scores_frames", "scores"),
        ("short_audio", "audio"),
        ("rate", "audio"),
        ("fps", "fps"),
        ("num_frames", "num_frames"),
        ("clip_id", "clip_id"),
    ],
)
def test_bad_clip_is_rejected_naming_folder_and_field(tmp_path, kind, field):
    make_corpus(tmp_path / "clips", num_speakers=3, clips_per_speaker=1, num_frames=40)
    bad = tmp_path / "clips" / "spk01_clip000"
    _corrupt(bad, kind)
    with pytest.raises(RecordError) as err:
        read_clip(bad)
    assert str(bad) in str(err.value) and f"'{field}'" in str(err.value), str(err.value)
    with pytest.raises(RecordError, match="spk01_clip000"):
        write_shards(tmp_path / "clips", tmp_path / "dst", progress=False)
    assert not (tmp_path / "dst" / "manifest.json").exists()


def test_skip_bad_records_the_clip_in_the_manifest(tmp_path):
    make_corpus(tmp_path / "clips", num_speakers=3, clips_per_speaker=2, num_frames=40)
    _corrupt(tmp_path / "clips" / "spk00_clip001", "nan")
    (tmp_path / "clips" / "spk02_clip001" / "meta.json").write_text("{not json")
    dst = write_shards(tmp_path / "clips", tmp_path / "dst", skip_bad=True, progress=False)
    manifest = read_manifest(dst)
    skipped = {s["clip_dir"].rsplit("/", 1)[-1]: s["error"] for s in manifest["skipped"]}
    assert set(skipped) == {"spk00_clip001", "spk02_clip001"}
    assert "'keypoints'" in skipped["spk00_clip001"] and "JSON" in skipped["spk02_clip001"]
    kept = [c for s in SPLITS for c in manifest["splits"][s]["clip_ids"]]
    assert sorted(kept) == ["spk00_clip000", "spk01_clip000", "spk01_clip001", "spk02_clip000"]


def test_interrupted_write_is_refused_and_rerun_completes(corpus, tmp_path, monkeypatch):
    import csg_lightning.data.shards as shards_module

    src = tmp_path / "clips"
    shutil.copytree(corpus, src)
    split = split_speakers([f"spk{i:02d}" for i in range(4)], 1, 1, seed=0)
    victim = src / f"{split['test'][0]}_clip001"  # the test split is written last
    audio_backup = (victim / "audio.wav").read_bytes()
    (victim / "audio.wav").write_bytes(b"garbage, not a wav file")
    dst = tmp_path / "dst"
    with pytest.raises(RecordError, match="audio.wav"):
        write_shards(src, dst, progress=False)
    assert not dst.exists()  # every clip is checked before any split is written
    (victim / "audio.wav").write_bytes(audio_backup)
    read_clip = shards_module.read_clip

    def killed_at_victim(folder, include_video=True, decode_video=True):
        if folder == victim and not decode_video:  # writing (not checking) the test split
            raise KeyboardInterrupt("killed while writing the test split")
        return read_clip(folder, include_video=include_video, decode_video=decode_video)

    monkeypatch.setattr(shards_module, "read_clip", killed_at_victim)
    with pytest.raises(KeyboardInterrupt):
        write_shards(src, dst, progress=False)
    monkeypatch.undo()
    assert (dst / "train" / "split.json").exists() and not (dst / "test").exists()
    assert not (dst / "manifest.json").exists() and not list(dst.glob(".tmp-*"))
    # A hard kill leaves a temp dir behind: readers never accept it.
    dead = dst / ".tmp-test-deadbeef"
    shutil.copytree(dst / "train", dead)
    (dead / "split.json").unlink()
    with pytest.raises(ShardDirError, match="split.json"):
        check_split_dir(dead)
    with pytest.raises(ShardDirError, match="manifest.json"):
        SkeletonAudioDataModule(str(dst), num_workers=0).setup("fit")
    train_chunk = next((dst / "train").glob("chunk-*.bin"))
    mtime = train_chunk.stat().st_mtime_ns
    write_shards(src, dst, progress=False)
    assert train_chunk.stat().st_mtime_ns == mtime  # the complete split was kept, not rewritten
    expected = sum(1 for c in src.iterdir() if c.name.startswith(split["test"][0]))
    assert not dead.exists() and read_manifest(dst)["splits"]["test"]["num_records"] == expected
    dm = SkeletonAudioDataModule(str(dst), num_workers=0, batch_size=2, window=50, num_prefix=10)
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["features"].shape == (2, 60, 246)


def test_rerun_keeps_finished_dir_and_rejects_a_changed_plan(corpus, shards):
    before = (shards / "stats.npz").stat().st_mtime_ns
    write_shards(corpus, shards, val_speakers=1, test_speakers=1, seed=0, progress=False)
    assert (shards / "stats.npz").stat().st_mtime_ns == before
    with pytest.raises(ShardDirError, match="different plan"):
        write_shards(corpus, shards, val_speakers=2, test_speakers=1, seed=0, progress=False)


def test_shard_folder_reads_manifest_stats_and_splits(demo_shards, tmp_path):
    """ShardFolder: the one reader of a shard folder both datamodules hold."""
    from csg_lightning.data.shard_folder import ShardFolder
    from csg_lightning.data.shards import ShardDirError
    from csg_lightning.timing import FPS, SAMPLE_RATE

    shards = ShardFolder(str(demo_shards), cache_dir=str(tmp_path / "cache"))
    assert shards.manifest["fps"] == FPS and shards.manifest["sample_rate"] == SAMPLE_RATE
    assert shards.stats["mean"].shape == (246,) and shards.default_reference[0].shape == (134, 2)
    assert shards.split_uri("train") == str(demo_shards / "train")
    assert shards.split_info("val")["num_records"] >= 1
    assert shards.streaming_options() == {"cache_dir": str(tmp_path / "cache"), "max_cache_size": None}
    with pytest.raises(ValueError, match="split must be one of"):
        shards.split_uri("training")
    with pytest.raises(ShardDirError, match="no manifest.json"):
        _ = ShardFolder(str(tmp_path)).manifest
