"""Audio encoders: mel (trainable) and a pretrained transformers speech model loaded offline from disk."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from csg_lightning.models.frame_alignment import interpolate_to_frames, num_frames_for
from csg_lightning.models.mel_audio_encoder import MelAudioEncoder
from csg_lightning.models.pretrained_speech_encoder import PretrainedSpeechEncoder

sys.path.insert(0, str(Path(__file__).parent))
from stage1_data import SyntheticSkeletonData  # noqa: E402
from tiny_skeleton import tiny_skeleton_config  # noqa: E402


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    """A random 2-layer Wav2Vec2 written with save_pretrained (no download)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    model = Wav2Vec2Model(config).eval()
    path = tmp_path_factory.mktemp("wav2vec2") / "tiny-wav2vec2"
    model.save_pretrained(path)
    return path, model


def test_interpolate_to_frames_is_linear_resampling():
    x = torch.arange(10, dtype=torch.float32).view(1, 10, 1)
    y = interpolate_to_frames(x, 5)
    assert y.shape == (1, 5, 1)
    assert torch.allclose(y[0, :, 0], torch.tensor([0.5, 2.5, 4.5, 6.5, 8.5]))
    assert num_frames_for(16000) == 25 and num_frames_for(16000 * 3 + 100) == 75


@pytest.mark.parametrize("num_samples", [640 * 7, 16000, 16000 * 2 + 333])
def test_mel_encoder_gives_one_token_per_frame(num_samples):
    enc = MelAudioEncoder(dim=32, num_transformer_layers=1, num_heads=2)
    frames = num_frames_for(num_samples)
    out = enc(torch.randn(2, num_samples) * 0.1, frames)
    assert out.shape == (2, frames, 32) and torch.isfinite(out).all()
    out.sum().backward()
    assert enc.stem.weight.grad is not None and enc.stem.weight.grad.abs().sum() > 0


def test_mel_encoder_depends_on_audio_content():
    torch.manual_seed(0)
    enc = MelAudioEncoder(dim=16, num_transformer_layers=0).eval()  # local receptive field
    audio = torch.randn(1, 16000) * 0.1
    silent = audio.clone()
    silent[:, 8000:] = 0
    a, b = enc(audio, 25), enc(silent, 25)
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-3)  # early frames see the same audio
    assert not torch.allclose(a[:, 20:], b[:, 20:], atol=1e-3)


def test_pretrained_encoder_loads_offline_and_matches_the_saved_model(tiny_wav2vec2, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path, reference = tiny_wav2vec2
    enc = PretrainedSpeechEncoder(str(path))
    assert enc.output_dim == 32
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.model.training  # a frozen backbone stays in eval mode
    audio = torch.randn(2, 16000) * 0.1
    out = enc(audio, 25)
    assert out.shape == (2, 25, 32) and torch.isfinite(out).all()
    norm = (audio - audio.mean(1, keepdim=True)) / torch.sqrt(audio.var(1, keepdim=True) + 1e-7)
    with torch.no_grad():
        expected = interpolate_to_frames(reference(norm).last_hidden_state, 25)
    assert torch.allclose(out, expected, atol=1e-5)


def test_pretrained_encoder_top_layers_and_layer_choice(tiny_wav2vec2):
    path, _ = tiny_wav2vec2
    enc = PretrainedSpeechEncoder(str(path), layers=[-1, -2], train_top_layers=1)
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("model.encoder.layers.1.") for n in trainable)
    out = enc(torch.randn(1, 8000) * 0.1, 12)
    assert out.shape == (1, 12, 32)
    out.pow(2).mean().backward()
    assert enc.model.encoder.layers[1].feed_forward.output_dense.weight.grad is not None
    with pytest.raises(ValueError, match="train_top_layers"):
        PretrainedSpeechEncoder(str(path), train_top_layers=5)


def test_missing_pretrained_path_names_the_field(tmp_path):
    with pytest.raises(OSError, match="path_or_hub_id"):
        PretrainedSpeechEncoder(str(tmp_path / "nope"))


def test_skeleton_diffusion_trains_with_frozen_pretrained_encoder(tiny_wav2vec2):
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    path, _ = tiny_wav2vec2
    torch.manual_seed(0)
    encoder = {"class_path": "csg_lightning.models.pretrained_speech_encoder.PretrainedSpeechEncoder",
               "init_args": {"path_or_hub_id": str(path)}}  # what audio/wav2vec2.yaml gives
    model = SkeletonDiffusion.from_config({**tiny_skeleton_config(warmup_steps=1), "audio_encoder": encoder})
    before = {k: v.clone() for k, v in model.audio_encoder.state_dict().items()}
    trainer = L.Trainer(
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, SyntheticSkeletonData(window=10, num_prefix=5, batch_size=2))
    after = model.audio_encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(n.startswith("audio_encoder.") for n in model._ema.params)
