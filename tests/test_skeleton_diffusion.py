"""`SkeletonDiffusion` LightningModule: training steps, checkpoints, EMA, sampling and long generation."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion
from csg_lightning.pipelines.window_chain import window_starts

sys.path.insert(0, str(Path(__file__).parent))
from stage1_data import SyntheticSkeletonData  # noqa: E402
from tiny_skeleton import tiny_skeleton_diffusion  # noqa: E402

WINDOW, PREFIX = 20, 5


def _trainer(tmp_path=None, steps: int = 2, **kw) -> L.Trainer:
    args = dict(
        max_steps=steps,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        gradient_clip_val=1.0,
    )
    if tmp_path is None:
        args["enable_checkpointing"] = False
    else:
        args["default_root_dir"] = str(tmp_path)
        args["callbacks"] = [ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)]
    args.update(kw)
    return L.Trainer(**args)


def _model(**kw) -> SkeletonDiffusion:
    torch.manual_seed(0)
    args = dict(
        audio_dim=16,
        warmup_steps=1,
        crossfade_frames=5,
        num_inference_steps=5,
        lr=1e-3,
        ema_decay=0.9,
    )
    args.update(kw)
    return tiny_skeleton_diffusion(**args)


@pytest.fixture(scope="module")
def data():
    return SyntheticSkeletonData(window=WINDOW, num_prefix=PREFIX, batch_size=4)


@pytest.mark.parametrize(
    "variant",
    [
        {"prediction_type": "sample"},
        {"prediction_type": "epsilon", "velocity_weight": 0.5},
        {"prediction_type": "v_prediction"},
        {"fusion": "cross_attention", "timestep_conditioning": "adaln"},
        {"use_prefix": False},
        {"local_representation": False},
    ],
    ids=["sample", "epsilon+velocity", "v", "xattn-adaln", "no-prefix", "absolute"],
)
def test_one_training_step_per_variant(variant, data):
    model = _model(**variant)
    before = [p.detach().clone() for p in model.denoiser.parameters()]
    trainer = _trainer(steps=1, val_check_interval=1)
    trainer.fit(model, data)
    metrics = trainer.callback_metrics
    for key in ("train/loss", "train/loss_body", "train/loss_face", "train/loss_hands", "val/loss"):
        assert key in metrics and torch.isfinite(metrics[key]), key
    model._ema.restore()  # compare the raw trained weights
    assert any(not torch.equal(a, b) for a, b in zip(before, model.denoiser.parameters(), strict=True))
    kp, sc = model.sample_batch(data.one_batch(), num_steps=3)
    assert kp.shape == (4, WINDOW, 134, 2) and sc.shape == (4, WINDOW, 134)
    assert torch.isfinite(kp[:, :, :13]).all()


def test_save_load_same_samples_and_checkpoint_is_self_contained(tmp_path, data):
    model = _model()
    trainer = _trainer(tmp_path, steps=4)  # one epoch of 4 batches; last.ckpt written after its validation
    trainer.fit(model, data)
    ckpt_path = tmp_path / "checkpoints" / "last.ckpt"
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    assert int(ckpt["state_dict"]["window_length"]) == WINDOW and int(ckpt["state_dict"]["prefix_length"]) == PREFIX
    assert ckpt["hyper_parameters"]["_instantiator"] == "lightning.pytorch.cli.instantiate_module"
    assert ckpt["hyper_parameters"]["denoiser"]["class_path"] == "csg_lightning.models.denoiser.SkeletonDenoiser"
    current = ckpt["ema_state"]["current"]
    assert any(
        not torch.equal(current[k], ckpt["state_dict"][k]) for k in current
    )  # state_dict holds EMA weights

    loaded = SkeletonDiffusion.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    assert (loaded.window_frames, loaded.prefix_frames) == (WINDOW, PREFIX)
    assert torch.allclose(loaded.codec.feature_mean, torch.as_tensor(data.stats["mean"]))
    assert torch.allclose(loaded.default_reference_keypoints, torch.as_tensor(data.default_reference[0]))
    for name, p in loaded.named_parameters():
        assert torch.equal(p, ckpt["state_dict"][name])
    batch = data.one_batch()
    a = model.sample_batch(batch, num_steps=4, guidance_scale=2.0, seed=7)[0]
    b = loaded.sample_batch(batch, num_steps=4, guidance_scale=2.0, seed=7)[0]
    c = loaded.sample_batch(batch, num_steps=4, guidance_scale=2.0, seed=8)[0]
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(b, c)
    audio = data.clips[1]["audio"][: 16000 * 2]
    g1 = model.generate(audio, seed=3, num_steps=4)
    g2 = loaded.generate(audio, seed=3, num_steps=4)
    assert np.allclose(g1[0], g2[0], atol=1e-4) and np.array_equal(g1[1], g2[1])
    assert g1[0].shape == (50, 134, 2) and g1[0].dtype == np.float32

    # resuming restores the raw (non-averaged) weights and the EMA shadow
    resumed = _model()
    _trainer(tmp_path / "resume", steps=4).fit(resumed, data, ckpt_path=str(ckpt_path))
    assert resumed.trainer.global_step == 4  # nothing left to do: state fully restored
    resumed._ema.restore()
    for name, p in resumed.named_parameters():
        if name in current:
            assert torch.equal(p.detach(), current[name]), name
    for name, shadow in resumed._ema.shadow.items():
        assert torch.equal(shadow, ckpt["state_dict"][name].float()), name


def test_long_generation_has_no_seam_jumps(data):
    """3x the window: the stated bound is that frame-to-frame jumps in the cross-faded seams stay
    below 1.5x the largest jump inside the windows (smoothing off, so the blend alone is tested)."""
    model = _model()
    _trainer(steps=20, limit_val_batches=0).fit(model, data)
    num_frames = 3 * WINDOW
    audio = np.concatenate([c["audio"] for c in data.clips])[: num_frames * 640]
    kp, sc = model.generate(audio, seed=0, smooth=False)
    assert kp.shape == (num_frames, 134, 2) and sc.shape == (num_frames, 134)
    assert np.isfinite(kp[:, :13]).all() and np.isfinite(kp[:, 24:]).all()
    overlap = model.hparams.crossfade_frames
    starts = window_starts(num_frames, WINDOW, overlap)
    assert len(starts) >= 3
    generated = np.r_[0:17, 24:134]
    jumps = np.abs(np.diff(kp[:, generated], axis=0)).max(axis=(1, 2))  # jump into frame i+1
    seam = np.zeros(len(jumps), bool)
    for s in starts[1:]:
        seam[s - 1 : min(s + overlap, len(jumps))] = True
    assert jumps[seam].max() <= 1.5 * jumps[~seam].max(), (jumps[seam].max(), jumps[~seam].max())
    smooth = model.generate(audio, seed=0, smooth=True)[0]
    assert np.abs(np.diff(smooth[:, generated], 2, 0)).mean() < np.abs(np.diff(kp[:, generated], 2, 0)).mean()
    # a custom reference moves the whole skeleton with it (local representation: neck from the reference)
    ref = data.default_reference[0] + np.float32([30, -10])
    moved = model.generate(audio[:16000], ref, np.full(134, 0.9, np.float32), seed=0, smooth=False)[0]
    assert np.allclose(moved[:, 17], ref[17])
    assert model.generate(np.zeros(0, np.float32))[0].shape == (0, 134, 2)


def test_generate_needs_stats_and_window():
    with pytest.raises(RuntimeError, match="window/stats"):
        _model().generate(np.zeros(16000, np.float32))


def test_window_mismatch_with_the_datamodule_is_an_error(data):
    with pytest.raises(ValueError, match="model.window_frames"):
        _trainer(steps=1).fit(_model(window_frames=WINDOW + 1), data)


def test_parts_as_objects_or_config_dicts():
    """Built in Python from objects: they stay out of the hyper-parameters (given again on load); from
    class_path dicts (as a checkpoint without `_instantiator` holds them): built by the module itself."""
    from tiny_skeleton import tiny_skeleton_config

    from csg_lightning.models.denoiser import SkeletonDenoiser
    from csg_lightning.models.diffusion import DiffusionProcess
    from csg_lightning.models.mel_audio_encoder import MelAudioEncoder

    parts = {"audio_encoder": MelAudioEncoder(dim=8), "diffusion": DiffusionProcess(),
             "denoiser": lambda audio_dim: SkeletonDenoiser(audio_dim, width=16, depth=1, num_heads=2, ff_dim=32)}  # fmt: skip
    model = SkeletonDiffusion(**parts, crossfade_frames=7)
    assert model.hparams.crossfade_frames == 7 and not set(parts) & set(model.hparams)
    assert model.denoiser.audio.proj[0].in_features == 8
    from_dicts = SkeletonDiffusion(**tiny_skeleton_config(audio_dim=12, guidance_scale=1.5))
    assert from_dicts.hparams["denoiser"]["class_path"].endswith("SkeletonDenoiser")
    assert from_dicts.denoiser.audio.proj[0].in_features == 12 and from_dicts.guider.scale == 1.5
