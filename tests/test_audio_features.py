"""Precomputed frozen audio-encoder features (`csg-data features`, data/audio_features.py): the datamodule
streams them, SkeletonDiffusion skips its encoder on them, checkpoints still generate from raw audio."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from csg_lightning.data.audio_features import AudioFeaturesError, cut_features, encoder_identity
from csg_lightning.data.skeleton_audio import SkeletonAudioDataModule
from csg_lightning.data_cli import main as csg_data

sys.path.insert(0, str(Path(__file__).parent))
from tiny_skeleton import tiny_skeleton_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENCODER_CLASS = "csg_lightning.models.pretrained_speech_encoder.PretrainedSpeechEncoder"


def _save_wav2vec2(folder: Path, seed: int) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(seed)
    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    Wav2Vec2Model(config).eval().save_pretrained(folder)
    fragment = folder.parent / f"{folder.name}.yaml"  # what experiments/components/skeleton/audio/wav2vec2.yaml gives
    fragment.write_text(f"class_path: {ENCODER_CLASS}\ninit_args:\n  path_or_hub_id: {folder}\n")
    return fragment


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    """Two tiny random wav2vec2 encoders (other weights) as YAML fragments."""
    root = tmp_path_factory.mktemp("encoders")
    return _save_wav2vec2(root / "w2v_a", 0), _save_wav2vec2(root / "w2v_b", 1)


@pytest.fixture(scope="module")
def shards_with_features(demo_shards, encoders, tmp_path_factory):
    """A copy of the demo shards (12 s clips = 300 frames) with float32 features of encoder A beside them."""
    shards = tmp_path_factory.mktemp("features") / "shards"
    shutil.copytree(demo_shards, shards)
    csg_data(["features", str(shards), "--encoder", str(encoders[0]), "--dtype", "float32"])
    return shards


def _model(fragment: Path, **kwargs):
    import yaml

    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    torch.manual_seed(0)
    encoder = yaml.safe_load(fragment.read_text())
    return SkeletonDiffusion.from_config({**tiny_skeleton_config(**kwargs), "audio_encoder": encoder})


def _count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_features_folder_records_the_encoder_and_every_clip(shards_with_features, encoders):
    meta = json.loads((shards_with_features / "audio_features" / "encoder.json").read_text())
    manifest = json.loads((shards_with_features / "manifest.json").read_text())
    model = _model(encoders[0])
    assert meta["encoder"]["id"] == encoder_identity(model.audio_encoder)["id"] == model.audio_encoder_id()
    assert meta["encoder"]["options"]["layers"] == [-1] and meta["dtype"] == "float32"
    for split in ("train", "val", "test"):
        assert meta["splits"][split]["clip_ids"] == manifest["splits"][split]["clip_ids"]
    assert encoder_identity(_model(encoders[1]).audio_encoder)["id"] != meta["encoder"]["id"]
    assert not list(shards_with_features.glob(".audio_features.tmp-*"))  # written atomically, nothing left


def test_same_loss_from_features_as_from_raw_audio(shards_with_features, encoders, tmp_path):
    # window + prefix = 300 frames = the whole clip: the encoder sees the very same samples on both paths
    model = _model(encoders[0], window_frames=275, prefix_frames=25).eval()
    dm = SkeletonAudioDataModule(str(shards_with_features), batch_size=2, num_workers=0, window=275, num_prefix=25)
    model.codec.load_stats(dm.stats)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio_features"].shape == (2, 300, 32) and batch["audio_features_id"] == [model.audio_encoder_id()] * 2
    raw = {k: v for k, v in batch.items() if not k.startswith("audio_features")}
    calls = _count_calls(model.audio_encoder)
    with torch.no_grad():
        from_features = model._diffusion_loss(batch, torch.Generator().manual_seed(0))
        assert calls[0] == 0  # the encoder did not run
        from_raw = model._diffusion_loss(raw, torch.Generator().manual_seed(0))
        assert calls[0] == 1
        direct = model.audio_encoder(batch["audio"], 300)
    # The features were computed one clip at a time, the raw path encodes the batch of 2: float32 sums in
    # another order (batched convolutions / matmuls), measured <= 2e-6 on these features; the loss is then
    # equal to ~1e-6 relative. A wrong frame alignment or another encoder moves it by > 1e-2.
    assert torch.allclose(batch["audio_features"], direct, atol=1e-5, rtol=1e-5)
    for key in from_raw:
        assert torch.allclose(from_features[key], from_raw[key], rtol=1e-5, atol=1e-7), key

    # float16 storage (the default): features rounded to 11 significant bits (relative error <= 4.9e-4)
    out16 = tmp_path / "features16"
    csg_data(["features", str(shards_with_features), "--encoder", str(encoders[0]), "--out", str(out16)])
    dm16 = SkeletonAudioDataModule(str(shards_with_features), batch_size=2, num_workers=0, window=275,
                                   num_prefix=25, audio_features=str(out16))  # fmt: skip
    dm16.setup("fit")
    batch16 = next(iter(dm16.train_dataloader()))
    with torch.no_grad():
        loss16 = model._diffusion_loss(batch16, torch.Generator().manual_seed(0))["loss"]
    assert float((loss16 - from_raw["loss"]).abs() / from_raw["loss"]) < 1e-3


def test_training_on_features_skips_the_encoder_and_the_checkpoint_generates_from_raw_audio(
    shards_with_features, encoders, tmp_path
):
    from csg_lightning.checkpoints.safe_load import load_module
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    model = _model(encoders[0], crossfade_frames=5, num_inference_steps=2, ema_decay=0.0)
    calls = _count_calls(model.audio_encoder)
    dm = SkeletonAudioDataModule(str(shards_with_features), batch_size=2, num_workers=0, window=40, num_prefix=10)
    trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=1, val_check_interval=1.0,
                        default_root_dir=str(tmp_path))  # fmt: skip
    trainer.fit(model, dm)
    assert trainer.global_step == 3 and calls[0] == 0  # training and validation used the stored features
    ckpt = tmp_path / "trained_on_features.ckpt"
    trainer.save_checkpoint(ckpt)

    loaded = load_module(SkeletonDiffusion, ckpt)
    assert encoder_identity(loaded.audio_encoder)["id"] == model.audio_encoder_id()  # it carries the encoder
    audio = np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32)
    keypoints, scores = loaded.generate(audio, seed=0)
    assert keypoints.shape == (75, 134, 2) and np.isfinite(keypoints).all() and scores.shape == (75, 134)


def test_features_of_another_encoder_are_an_error_naming_both(shards_with_features, encoders):
    model = _model(encoders[1])
    dm = SkeletonAudioDataModule(str(shards_with_features), batch_size=2, num_workers=0, window=40, num_prefix=10)
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)  # fmt: skip
    written = json.loads((shards_with_features / "audio_features" / "encoder.json").read_text())["encoder"]["id"]
    with pytest.raises(AudioFeaturesError, match=f"encoder {written}.*is encoder {model.audio_encoder_id()}"):
        trainer.fit(model, dm)
    # without the features (audio_features: null) the same model trains on raw audio
    raw_dm = SkeletonAudioDataModule(str(shards_with_features), batch_size=2, num_workers=0, window=40,
                                     num_prefix=10, audio_features=None)  # fmt: skip
    L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, limit_val_batches=0).fit(model, raw_dm)  # fmt: skip


def test_a_trainable_encoder_is_refused(shards_with_features, tmp_path):
    mel = ROOT / "experiments/components/skeleton/audio/mel.yaml"
    with pytest.raises(SystemExit, match="MelAudioEncoder has .* trainable parameters"):
        csg_data(["features", str(shards_with_features), "--encoder", str(mel), "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def test_cut_features_pads_past_the_clip_end():
    feats = np.arange(12, dtype=np.float16).reshape(6, 2)
    out = cut_features(feats, 4, 4)
    assert out.dtype == np.float32 and out.shape == (4, 2)
    assert out[:2].tolist() == [[8, 9], [10, 11]] and not out[2:].any()
