"""SkeletonAudioDataModule on real shards: batch contract, DDP/worker splitting, resume, validation."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers_clips import make_clip, make_corpus

from csg_lightning.data.normalization import (
    denormalize,
    features_to_keypoints,
    features_to_local,
    local_features,
    normalize,
)
from csg_lightning.data.records import RecordError
from csg_lightning.data.shards import ShardDirError, read_manifest, write_shards
from csg_lightning.data.skeleton_audio import ClipWindowDataset, SkeletonAudioDataModule
from csg_lightning.io.audio import to_float
from csg_lightning.skeleton.layout import SkeletonLayout
from csg_lightning.skeleton.local import local_confidence

P, W = 10, 40


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    make_corpus(root, num_speakers=4, clips_per_speaker=4, num_frames=120)
    return root


@pytest.fixture(scope="module")
def shards(corpus, tmp_path_factory):
    return write_shards(corpus, tmp_path_factory.mktemp("shards") / "dst", seed=0, progress=False)


def _dm(shards, **kw):
    args = dict(batch_size=2, num_workers=0, window=W, num_prefix=P, seed=3)
    dm = SkeletonAudioDataModule(str(shards), **{**args, **kw})
    dm.setup("fit")
    return dm


def _train_ids(shards):
    return read_manifest(shards)["splits"]["train"]["clip_ids"]


def test_batch_follows_the_contract(corpus, shards):
    dm = _dm(shards)
    assert (dm.num_prefix, dm.window, dm.fps, dm.sample_rate) == (P, W, 25, 16000)
    batch = next(iter(dm.train_dataloader()))
    B, L = 2, P + W
    shapes = {
        "features": (B, L, 246),
        "mask": (B, L, 123),
        "keypoints": (B, L, 134, 2),
        "scores": (B, L, 134),
        "reference_keypoints": (B, 134, 2),
        "reference_scores": (B, 134),
        "audio": (B, L * 640),
    }
    assert set(batch) == set(shapes) | {"clip_id", "speaker_id", "start", "width", "height"}
    for key, shape in shapes.items():
        assert batch[key].shape == shape and batch[key].dtype == torch.float32, key
    assert batch["start"].dtype == torch.int64 and batch["start"].shape == (B,)
    with open(corpus / batch["clip_id"][0] / "meta.json") as fh:
        meta = json.load(fh)
    assert (int(batch["width"][0]), int(batch["height"][0])) == (meta["width"], meta["height"])
    for b in range(B):
        clip, start = batch["clip_id"][b], int(batch["start"][b])
        assert batch["speaker_id"][b] == clip[:5]
        with np.load(corpus / clip / "pose.npz") as pose:
            kp, sc = pose["keypoints"][start : start + L], pose["scores"][start : start + L]
        audio, _ = sf.read(corpus / clip / "audio.wav", dtype="int16")
        assert np.array_equal(batch["keypoints"][b].numpy(), kp) and np.array_equal(
            batch["scores"][b].numpy(), sc
        )
        np.testing.assert_array_equal(
            batch["audio"][b].numpy(), to_float(audio[start * 640 : (start + L) * 640])
        )
        np.testing.assert_allclose(
            batch["features"][b].numpy(), normalize(local_features(kp), dm.stats), atol=1e-5
        )
        assert np.array_equal(batch["mask"][b].numpy(), (local_confidence(sc) > 0.7).astype(np.float32))
        assert np.array_equal(batch["reference_keypoints"][b].numpy(), kp[P - 1])
        assert np.array_equal(batch["reference_scores"][b].numpy(), sc[P - 1])
    ref_kp, ref_sc = dm.default_reference
    assert ref_kp.shape == (134, 2) and ref_sc.shape == (134,) and ref_kp.dtype == np.float32


def test_two_ranks_times_two_workers_cover_every_clip_once(shards, monkeypatch):
    per_rank = []
    for rank in range(2):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("GLOBAL_RANK", str(rank))
        dm = _dm(shards, num_workers=2, batch_size=2)
        assert dm.datasets["train"].distributed_env.world_size == 2
        per_rank.append([c for batch in dm.train_dataloader() for c in batch["clip_id"]])
    assert [len(ids) for ids in per_rank] == [4, 4]
    assert Counter(per_rank[0] + per_rank[1]) == Counter(_train_ids(shards))


def test_resume_from_loader_state_continues_without_repeats(shards):
    full = [
        c for batch in _dm(shards, num_workers=2, batch_size=1).train_dataloader() for c in batch["clip_id"]
    ]
    assert sorted(full) == sorted(_train_ids(shards))
    dm = _dm(shards, num_workers=2, batch_size=1)
    head = []
    for batch in dm.train_dataloader():
        head += batch["clip_id"]
        if len(head) == 3:
            state = dm.state_dict()
            break
    state = json.loads(json.dumps(state))  # survives a checkpoint (plain data)
    resumed = _dm(shards, num_workers=2, batch_size=1)
    resumed.load_state_dict(state)
    loader = resumed.train_dataloader()
    loader.load_state_dict(state["train_loader"])  # Lightning's fit loop restores it again: must be a no-op
    middle = []
    for batch in loader:
        middle += batch["clip_id"]
        if len(middle) == 2:
            state2 = json.loads(json.dumps(resumed.state_dict()))
            break
    # A second resume from the resumed run (its worker bookkeeping must not drift).
    again = _dm(shards, num_workers=2, batch_size=1)
    again.load_state_dict(state2)
    loader = again.train_dataloader()
    loader.load_state_dict(state2["train_loader"])
    tail = [c for batch in loader for c in batch["clip_id"]]
    assert head + middle + tail == full


def _windows(loader):
    return [(c, int(s)) for batch in loader for c, s in zip(batch["clip_id"], batch["start"], strict=True)]


def test_eval_windows_are_fixed_and_train_windows_change_per_epoch(shards):
    dm = _dm(shards, num_workers=2)
    val = _windows(dm.val_dataloader())
    assert val == _windows(dm.val_dataloader()) and len(val) == 4
    loader = dm.train_dataloader()
    epochs = [dict(_windows(loader)) for _ in range(2)]
    assert epochs[0].keys() == epochs[1].keys() and epochs[0] != epochs[1]
    # The same epoch of a fresh datamodule with the same seed reproduces the windows.
    assert dict(_windows(_dm(shards, num_workers=2).train_dataloader())) == epochs[0]


def test_short_clip_is_padded_with_masked_frames(tmp_path):
    for s in range(3):
        make_clip(tmp_path / "clips", f"spk{s:02d}_clip000", f"spk{s:02d}", num_frames=30, seed=s)
    dst = write_shards(tmp_path / "clips", tmp_path / "dst", progress=False)
    batch = next(iter(_dm(dst, batch_size=1).train_dataloader()))
    assert int(batch["start"][0]) == 0
    assert batch["mask"][0, 30:].sum() == 0 and batch["scores"][0, 30:].sum() == 0
    assert torch.equal(batch["keypoints"][0, 30:], batch["keypoints"][0, 29:30].expand(P + W - 30, -1, -1))
    assert batch["audio"][0, 30 * 640 :].abs().sum() == 0 and batch["audio"][0, : 30 * 640].abs().sum() > 0


def _write_raw_split(path, records):
    from litdata.streaming.writer import BinaryWriter

    writer = BinaryWriter(str(path), chunk_bytes="8MB")
    for i, rec in enumerate(records):
        writer.add_item(i, rec)
    writer.done()
    writer._merge_no_wait()


@pytest.mark.parametrize(
    "field, breakage, message",
    [
        ("keypoints", lambda r: r["keypoints"].__setitem__((3, 5, 1), np.inf), "'keypoints' holds 1 NaN/inf"),
        ("audio", lambda r: r.__setitem__("audio", r["audio"][:-1]), "'audio' has"),
        ("scores", lambda r: r.__setitem__("scores", r["scores"][:, :100]), "'scores' has shape"),
    ],
)
def test_malformed_record_is_rejected_naming_clip_and_field(tmp_path, field, breakage, message):
    rng = np.random.default_rng(0)
    records = []
    for i in range(2):
        T = 60
        records.append(
            {
                "clip_id": f"clip{i}",
                "speaker_id": "spk",
                "fps": 25,
                "width": 64,
                "height": 64,
                "keypoints": rng.uniform(0, 64, (T, 134, 2)).astype(np.float32),
                "scores": np.ones((T, 134), np.float32),
                "audio": np.zeros(T * 640, np.int16),
                "video": b"",
            }
        )
    breakage(records[1])
    _write_raw_split(tmp_path / "split", records)
    stats = {"mean": np.zeros(246, np.float32), "std": np.ones(246, np.float32)}
    dataset = ClipWindowDataset(str(tmp_path / "split"), stats, window=W, num_prefix=P, shuffle=False)
    assert dataset[0]["clip_id"] == "clip0"
    with pytest.raises(RecordError) as err:
        list(dataset)
    assert (
        "'clip1'" in str(err.value)
        and message in str(err.value)
        and str(tmp_path / "split") in str(err.value)
    )


def test_incomplete_shard_dirs_are_refused(shards, tmp_path):
    with pytest.raises(ShardDirError, match="manifest.json"):
        SkeletonAudioDataModule(str(tmp_path), num_workers=0).setup("fit")
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(shards, broken)
    (broken / "val" / "split.json").unlink()
    with pytest.raises(ShardDirError, match="split.json"):
        SkeletonAudioDataModule(str(broken), num_workers=0).setup("fit")


def test_normalization_round_trip_numpy_and_torch(shards):
    stats = SkeletonAudioDataModule(str(shards)).stats  # lazy: no setup needed
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 512, (3, 7, 134, 2)).astype(np.float32)
    feats = local_features(kp)
    assert feats.shape == (3, 7, 246)
    z = normalize(feats, stats)
    np.testing.assert_allclose(denormalize(z, stats), feats, atol=1e-3)
    zt = normalize(torch.from_numpy(feats).double(), stats)
    assert zt.dtype == torch.float64
    np.testing.assert_allclose(zt.numpy(), z, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(denormalize(zt, stats), torch.from_numpy(feats).double(), atol=1e-6, rtol=0)
    back = features_to_keypoints(feats, kp[..., SkeletonLayout.NECK, :], kp[..., SkeletonLayout.LEGS, :])
    np.testing.assert_allclose(back, kp, atol=1e-3)
    assert features_to_local(feats).shape == (3, 7, 123, 2)
    with pytest.raises(ValueError, match="246"):
        normalize(feats[..., :200], stats)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_lightning_resumes_exactly_mid_epoch_and_every_epoch_after(shards, tmp_path, num_workers):
    """8 train clips, batch 1: 8 steps an epoch, 3 epochs. Run A stops at step 11 (epoch 1, 3 steps
    in), run B resumes it and stops at step 13 (inside the epoch it resumed), run C resumes B to the
    end. A + B + C must see exactly the uninterrupted run's (clip, window start) per step.

    The measured bugs this guards: after a resume litdata's ``restore`` flag was never cleared under
    Lightning (every later epoch replayed the interrupted one), and with workers a checkpoint taken
    inside the resumed epoch recorded epoch 1 for the dataset (so B -> C replayed epoch 1's order).
    """
    import lightning as L

    class Recorder(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen = []

        def training_step(self, batch, batch_idx):
            self.seen += [
                (self.global_step, c, int(s)) for c, s in zip(batch["clip_id"], batch["start"], strict=True)
            ]
            return (self.w * batch["features"].mean()).sum() + (self.w**2).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    def fit(max_steps, name, ckpt_path=None):
        model = Recorder()
        checkpoint = L.pytorch.callbacks.ModelCheckpoint(
            dirpath=tmp_path / name, every_n_train_steps=max_steps, save_top_k=-1
        )
        trainer = L.Trainer(
            max_steps=max_steps,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            accelerator="cpu",
            callbacks=[checkpoint],
        )
        dm = SkeletonAudioDataModule(
            str(shards), batch_size=1, num_workers=num_workers, window=W, num_prefix=P
        )
        trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
        return model.seen, next((tmp_path / name).glob("*.ckpt"), None)

    full, _ = fit(24, "full")
    assert len(full) == 24  # and each epoch has its own windows:
    assert len({frozenset((c, s) for _, c, s in full[i : i + 8]) for i in (0, 8, 16)}) == 3
    head, a = fit(11, "a")
    middle, b = fit(13, "b", ckpt_path=a)
    tail, _ = fit(24, "c", ckpt_path=b)
    assert head + middle + tail == full
    saved_a = torch.load(a, weights_only=True)["SkeletonAudioDataModule"]["train_loader"]
    assert saved_a["num_samples_yielded"] == 3 and saved_a["current_epoch"] == 2
    saved_b = torch.load(b, weights_only=True)["SkeletonAudioDataModule"]["train_loader"]
    assert saved_b["num_samples_yielded"] == 5
    assert saved_b["dataset"]["current_epoch"] == saved_b["current_epoch"] == 2
