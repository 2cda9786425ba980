"""Shared fixtures: a tiny demo corpus and its litdata shards, built once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory):
    """3 speakers x 2 clips x 12 s of the synthetic corpus, without video."""
    from csg_lightning.data.corpus import generate_corpus

    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(out, num_speakers=3, clips_per_speaker=2, clip_seconds=12.0, seed=0, video=False,
                    workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def demo_shards(demo_corpus, tmp_path_factory):
    """Shards of ``demo_corpus``: 1 train, 1 val, 1 test speaker."""
    from csg_lightning.data.shards import write_shards

    return write_shards(demo_corpus, tmp_path_factory.mktemp("shards") / "demo", val_speakers=1,
                        test_speakers=1, seed=0, progress=False)


@pytest.fixture(scope="session")
def demo_corpus_video(tmp_path_factory):
    """3 speakers x 1 clip x 12 s of the synthetic corpus, with mp4 renders."""
    from csg_lightning.data.corpus import generate_corpus

    out = tmp_path_factory.mktemp("corpus_video")
    generate_corpus(out, num_speakers=3, clips_per_speaker=1, clip_seconds=12.0, seed=1, video=True,
                    workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def demo_shards_video(demo_corpus_video, tmp_path_factory):
    from csg_lightning.data.shards import write_shards

    return write_shards(demo_corpus_video, tmp_path_factory.mktemp("shards_video") / "demo", val_speakers=1,
                        test_speakers=1, seed=0, progress=False)
