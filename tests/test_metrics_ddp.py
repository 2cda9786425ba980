"""Gesture metrics give the same values under a 2-process CPU DDP run (gloo) as in one process."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from csg_lightning.metrics.fgd import SkeletonClipFeatures
from csg_lightning.metrics.frechet import FrechetMoments
from csg_lightning.metrics.gesture_suite import GestureMetrics
from csg_lightning.models.skeleton_autoencoder import SkeletonAutoencoder

WINDOWS, FRAMES, SPF = 8, 64, 640


def _data() -> dict[str, torch.Tensor]:
    """Deterministic windows: ground truth, a noisy prediction, audio with bursts, partly unconfident scores."""
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(WINDOWS, 1, 134, 2, generator=gen) * 200 + 150
    t = torch.arange(FRAMES)[None, :, None, None] / 25
    gt = base + 15 * torch.sin(2 * torch.pi * t * (0.5 + torch.rand(WINDOWS, 1, 134, 1, generator=gen)))
    pred = gt + torch.randn(gt.shape, generator=gen) * 4
    scores = (torch.rand(WINDOWS, FRAMES, 134, generator=gen) * 0.5 + 0.55).clamp(max=1.0)
    audio = torch.randn(WINDOWS, FRAMES * SPF, generator=gen) * 0.01
    for w in range(WINDOWS):
        for k in range(1, 5):
            s = int((0.5 * k + 0.05 * w) * 16000)
            audio[w, s : s + 800] += torch.randn(800, generator=gen) * 0.5
    return {
        "gt": gt,
        "pred": pred,
        "scores": scores,
        "audio": audio,
        "features": torch.randn(40, 5, generator=gen),
    }


def _values(parts: list[slice]) -> dict[str, float]:
    torch.manual_seed(0)
    encoder = SkeletonAutoencoder(hidden=16, latent_dim=6, clip_frames=16)
    stats = {"mean": np.zeros(246, np.float32), "std": np.full(246, 20.0, np.float32)}
    suite = GestureMetrics(SkeletonClipFeatures(encoder, stats), seed=0)
    moments = FrechetMoments(5)
    data = _data()
    for part in parts:
        suite.update(data["pred"][part], torch.ones_like(data["scores"][part]), data["gt"][part],
                     data["scores"][part], data["audio"][part])  # fmt: skip
    for part in parts:  # features: 20 per rank
        f = data["features"][part.start * 5 : part.stop * 5]
        moments.update(f[: len(f) // 2], real=True)
        moments.update(f[len(f) // 2 :] * 1.5 + 0.3, real=False)
    values = suite.compute()
    values["FrechetMoments"] = float(moments.compute())
    values["BC_windows"] = suite.bc_per_window().tolist()
    return values


def _worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        half = WINDOWS // world
        values = _values([slice(rank * half, (rank + 1) * half)])
        if rank == 0:
            torch.save(values, out_file)
    finally:
        dist.destroy_process_group()


def test_metrics_agree_between_two_process_ddp_and_one_process(tmp_path):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=False)
    single = _values([slice(0, WINDOWS // 2), slice(WINDOWS // 2, WINDOWS)])
    assert set(ddp) == set(single)
    for key, value in single.items():
        if key == "BC_windows":
            assert ddp[key] == pytest.approx(value, rel=1e-9)
        elif np.isnan(value):
            assert np.isnan(ddp[key]), key
        else:
            assert ddp[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    # every metric saw data: none is trivially NaN
    assert not any(np.isnan(v) for k, v in single.items() if k != "BC_windows"), single
