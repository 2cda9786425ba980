"""Shared fixtures: tiny demo corpora and their litdata shards, built once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402


def pytest_ignore_collect(collection_path, config):
    """When torchaudio cannot load, collect only test_environment.py: one named failure, not one per file."""
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    if collection_path.name == "test_environment.py":
        return None
    from environment_check import torchaudio_load_error

    return True if torchaudio_load_error() is not None else None


def pytest_report_header(config):
    from environment_check import torchaudio_load_error, triplet_mismatches

    lines = [f"environment: {p}" for p in triplet_mismatches()]
    if torchaudio_load_error() is not None:
        lines.append("environment: torchaudio does not load: only test_environment.py is collected")
    return lines


def _corpus(tmp_path_factory, name: str, clips_per_speaker: int, seed: int, video: bool):
    from csg_lightning.data.corpus import generate_corpus

    out = tmp_path_factory.mktemp(name)
    generate_corpus(out, num_speakers=3, clips_per_speaker=clips_per_speaker, clip_seconds=12.0, seed=seed,
                    video=video, workers=1, progress=False)  # fmt: skip
    return out


def _shards(corpus, tmp_path_factory, name: str):
    """Shards of ``corpus``: 1 train, 1 val, 1 test speaker."""
    from csg_lightning.data.shards import write_shards

    return write_shards(corpus, tmp_path_factory.mktemp(name) / "demo", val_speakers=1, test_speakers=1,
                        seed=0, progress=False)  # fmt: skip


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory):
    """3 speakers x 2 clips x 12 s of the synthetic corpus, without video."""
    return _corpus(tmp_path_factory, "corpus", clips_per_speaker=2, seed=0, video=False)


@pytest.fixture(scope="session")
def demo_shards(demo_corpus, tmp_path_factory):
    return _shards(demo_corpus, tmp_path_factory, "shards")


@pytest.fixture(scope="session")
def demo_corpus_video(tmp_path_factory):
    """3 speakers x 1 clip x 12 s of the synthetic corpus, with mp4 renders."""
    return _corpus(tmp_path_factory, "corpus_video", clips_per_speaker=1, seed=1, video=True)


@pytest.fixture(scope="session")
def demo_shards_video(demo_corpus_video, tmp_path_factory):
    return _shards(demo_corpus_video, tmp_path_factory, "shards_video")


@pytest.fixture(scope="session")
def tiny_stage1_checkpoint(tmp_path_factory):
    """A real (tiny) Stage 1 checkpoint after one training step on synthetic windows (no EMA)."""
    from tiny_skeleton import train_tiny_checkpoint

    return train_tiny_checkpoint(tmp_path_factory.mktemp("stage1"), audio_dim=16, warmup_steps=1)
