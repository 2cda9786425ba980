"""Every experiment YAML parses and trains a step through the real `csg` CLI (tiny overrides).

The overrides only shrink sizes (tiny preset, short windows, CPU, fp32); the classes, loggers,
callbacks and data paths are the ones the YAML names.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from csg_lightning.cli import run

ROOT = Path(__file__).resolve().parents[1]
SKELETON = ROOT / "experiments" / "skeleton"
ABLATIONS = sorted((SKELETON / "ablations").glob("*.yaml"))


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("wav2vec2") / "wav2vec2-base-960h"
    Wav2Vec2Model(config).save_pretrained(path)
    return path


def _tiny_overrides(shards: Path, runs: Path) -> list[str]:
    return [
        f"--data.init_args.data_dir={shards}",
        "--data.init_args.batch_size=2",
        "--data.init_args.num_workers=0",
        "--data.init_args.window=50",
        "--data.init_args.num_prefix=10",
        "--model.init_args.preset=tiny",
        "--model.init_args.crossfade_frames=5",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.max_steps=1",
        "--trainer.val_check_interval=1",
        "--trainer.limit_val_batches=1",
        f"--runs_root={runs}",
        "--run=test",
    ]


def _fit(configs: list[Path], extra: list[str], shards: Path, runs: Path):
    args = ["fit"] + [f"--config={c}" for c in configs] + _tiny_overrides(shards, runs) + extra
    cli = run(args)
    experiment = yaml.safe_load(configs[-1].read_text()).get("experiment")
    run_dir = runs / experiment / "test"
    assert Path(cli.trainer.default_root_dir) == run_dir
    assert cli.trainer.global_step == 1
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["experiment"] == experiment and saved["run"] == "test"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert list((run_dir / "samples").glob("*.mp4")), "the sample callback wrote no video"
    return cli


def test_demo_yaml_trains_a_step(demo_shards, tmp_path):
    cli = _fit([SKELETON / "demo.yaml"], [], demo_shards, tmp_path)
    assert (tmp_path / "skeleton-demo" / "latest").resolve() == (tmp_path / "skeleton-demo" / "test").resolve()
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])


def test_paper_scale_yaml_trains_a_step_with_a_local_wav2vec2(demo_shards, tmp_path, tiny_wav2vec2):
    extra = [
        f"--model.init_args.audio_encoder_path={tiny_wav2vec2}",
        "--trainer.strategy=auto",
        "--trainer.precision=32-true",
        "--data.init_args.num_workers=0",
    ]
    cli = _fit([SKELETON / "csg405.yaml"], extra, demo_shards, tmp_path)
    from csg_lightning.models.pretrained_speech_encoder import PretrainedSpeechEncoder

    encoder = cli.model.audio_encoder
    assert isinstance(encoder, PretrainedSpeechEncoder)
    assert not any(p.requires_grad for p in encoder.parameters()), "wav2vec2 must stay frozen by default"


@pytest.mark.parametrize("ablation", ABLATIONS, ids=lambda p: p.stem)
def test_ablation_overlay_trains_a_step(ablation, demo_shards, tmp_path):
    cli = _fit([SKELETON / "demo.yaml", ablation], [], demo_shards, tmp_path)
    overlay = yaml.safe_load(ablation.read_text())
    for key, value in (overlay.get("model", {}).get("init_args") or {}).items():
        assert cli.model.hparams[key] == value, key
