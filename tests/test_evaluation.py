"""The skeleton evaluation end to end on the demo shards (tiny FGD autoencoder trained through `csg fit`
with experiments/eval/fgd_autoencoder.yaml, tiny Stage-1 model trained one step), and the baselines."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from csg_lightning.evaluation import baselines
from csg_lightning.skeleton.layout import SkeletonLayout

ROOT = Path(__file__).resolve().parents[1]
METRICS = {"FGD", "BC", "Diversity", "L1div", "HKV", "HKC", "MPJPE", "PCK", "LipSync"}


@pytest.fixture(scope="module")
def fgd_ckpt(demo_shards, tmp_path_factory) -> Path:
    from csg_lightning.cli import run

    runs = tmp_path_factory.mktemp("runs")
    run([
        "fit", f"--config={ROOT / 'experiments/eval/fgd_autoencoder.yaml'}",
        f"--data.init_args.data_dir={demo_shards}", "--data.init_args.batch_size=4",
        "--data.init_args.window=50", "--data.init_args.num_prefix=10",
        "--model.init_args.hidden=16", "--model.init_args.latent_dim=8", "--model.init_args.clip_frames=16",
        "--trainer.accelerator=cpu", "--trainer.max_steps=3", "--trainer.limit_val_batches=1",
        f"--runs_root={runs}", "--run=test",
    ])  # fmt: skip
    ckpt = runs / "fgd-autoencoder" / "test" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    return ckpt


@pytest.fixture(scope="module")
def stage1_ckpt(demo_shards, tmp_path_factory) -> Path:
    import lightning as L

    from csg_lightning.data.skeleton_audio import SkeletonAudioDataModule
    torch.manual_seed(0)
    dm = SkeletonAudioDataModule(str(demo_shards), batch_size=2, num_workers=0, window=50, num_prefix=10)
    from tiny_skeleton import tiny_skeleton_diffusion

    model = tiny_skeleton_diffusion(audio_dim=32, crossfade_frames=5, num_inference_steps=2)
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, limit_val_batches=0, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, dm)
    path = tmp_path_factory.mktemp("stage1") / "tiny.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_skeleton_evaluation_end_to_end(stage1_ckpt, fgd_ckpt, demo_shards, tmp_path):
    from csg_lightning.eval_cli import main

    out = tmp_path / "eval"
    main(["skeleton", "--ckpt", str(stage1_ckpt), "--data", str(demo_shards), "--fgd-ckpt", str(fgd_ckpt),
          "--out", str(out), "--num-steps", "2", "--max-windows", "4", "--batch-size", "2", "--seed", "3"])  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert set(report) == {"model", "ground_truth", "mean_pose", "random_clip", "shuffled_audio", "meta"}
    for row in ("model", "ground_truth", "mean_pose", "random_clip", "shuffled_audio"):
        assert set(report[row]) == METRICS, row
    meta = report["meta"]
    assert meta["fgd_encoder_sha256"] == hashlib.sha256(fgd_ckpt.read_bytes()).hexdigest()[:16]
    assert meta["num_windows"] == 4 and meta["seed"] == 3 and meta["checkpoint"] == str(stage1_ckpt)
    gt, still, model = report["ground_truth"], report["mean_pose"], report["model"]
    assert gt["FGD"] == pytest.approx(0.0, abs=1e-6) and gt["MPJPE"] == 0.0 and gt["PCK"] == 1.0
    assert still["L1div"] == pytest.approx(0.0, abs=1e-4) and still["HKV"] == pytest.approx(0.0, abs=1e-6)
    assert still["BC"] == 0.0 and still["LipSync"] == 0.0
    assert all(isinstance(model[m], float) for m in ("FGD", "Diversity", "MPJPE")), model
    assert model["HKC"] == 1.0 and model["FGD"] > 0 and model["MPJPE"] > 0
    for png in ("bc_distribution.png", "speed_spectra.png", "trajectories.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG", png
    md = (out / "report.md").read_text()
    assert "| shuffled_audio |" in md and meta["fgd_encoder_sha256"] in md


def test_missing_fgd_checkpoint_is_a_clear_error(stage1_ckpt, demo_shards, tmp_path):
    from csg_lightning.eval_cli import main
    from csg_lightning.models.fgd_autoencoder_module import load_fgd_encoder

    with pytest.raises(SystemExit, match="fgd_autoencoder.yaml"):
        main(["skeleton", "--ckpt", str(stage1_ckpt), "--data", str(demo_shards),
              "--fgd-ckpt", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "x")])  # fmt: skip
    with pytest.raises(FileNotFoundError, match="fgd_autoencoder.yaml"):
        load_fgd_encoder(tmp_path / "none.ckpt")


def _batch(b: int = 3, frames: int = 20, prefix: int = 5) -> dict:
    gen = torch.Generator().manual_seed(0)
    kp = torch.rand(b, frames, 134, 2, generator=gen) * 300 + 100
    return {"keypoints": kp, "scores": torch.rand(b, frames, 134, generator=gen),
            "reference_keypoints": kp[:, prefix - 1], "reference_scores": torch.full((b, 134), 0.9),
            "audio": torch.arange(b)[:, None].float().expand(b, frames * 640).clone(),
            "speaker_id": ["spk04"] * b}  # fmt: skip


def test_mean_pose_baseline_is_still_and_anchored_at_the_reference_neck():
    batch = _batch()
    mean = np.random.default_rng(0).normal(0, 30, 246).astype(np.float32)
    kp, sc = baselines.mean_pose(batch, mean, 5)
    assert kp.shape == (3, 15, 134, 2) and sc.shape == (3, 15, 134)
    assert torch.equal(kp[:, 0], kp[:, -1])
    assert torch.allclose(kp[:, 0, SkeletonLayout.NECK], batch["reference_keypoints"][:, SkeletonLayout.NECK])
    from csg_lightning.data.normalization import local_features

    assert np.allclose(local_features(kp[0, 0].numpy()), mean, atol=1e-3)


def test_random_clip_comes_from_another_speaker_and_is_moved_to_the_reference_neck():
    batch = _batch()
    gen = torch.Generator().manual_seed(1)
    pool = [{"keypoints": torch.rand(20, 134, 2, generator=gen) * 300, "scores": torch.ones(20, 134), "speaker_id": s}
            for s in ["spk04", "spk01", "spk02"]]  # fmt: skip
    kp, sc = baselines.random_clip(batch, pool, 5, np.random.default_rng(0))
    assert kp.shape == (3, 15, 134, 2) and sc.shape == (3, 15, 134)
    neck = SkeletonLayout.NECK
    assert torch.allclose(kp[:, 0, neck], batch["reference_keypoints"][:, neck])
    for item in kp:  # the motion of a pool clip of another speaker (its last 15 frames), translated
        shape = item - item[0, neck]
        sources = [
            p["speaker_id"]
            for p in pool
            if torch.allclose(shape, p["keypoints"][-15:] - p["keypoints"][-15, neck], atol=1e-3)
        ]
        assert len(sources) == 1 and sources[0] != "spk04"


def test_roll_audio_gives_every_window_another_windows_audio():
    batches = [_batch(2), _batch(1)]
    for i, b in enumerate(batches):
        b["audio"] = torch.full_like(b["audio"], float(i * 10)) + torch.arange(b["audio"].shape[0])[:, None]
    rolled = baselines.roll_audio(batches)
    firsts = [float(a) for b in rolled for a in b["audio"][:, 0]]
    assert firsts == [1.0, 10.0, 0.0]
    assert float(batches[0]["audio"][0, 0]) == 0.0  # the inputs are untouched
