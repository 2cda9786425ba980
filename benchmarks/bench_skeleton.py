"""Stage-1 benchmark: training-step time and time to sample a 10 s window, at demo and paper scale.

Prints one JSON line. Uses batches of the datamodule's shapes filled with random data (the
numbers measure compute, not data loading: see bench_dataloader.py for that). The paper scale
uses a randomly initialised wav2vec2-base (same compute as wav2vec2-base-960h; no download), or
the real one when ``CSG_WAV2VEC2`` points at a local copy.

    python benchmarks/bench_skeleton.py [--scales demo,paper] [--steps 25] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

SPF = 640


def _random_batch(batch_size: int, window: int, prefix: int, device: torch.device) -> dict:
    n = window + prefix
    g = torch.Generator().manual_seed(0)
    kp = 256 + 60 * torch.randn(batch_size, n, 134, 2, generator=g)
    batch = {
        "features": torch.randn(batch_size, n, 246, generator=g),
        "mask": torch.ones(batch_size, n, 123),
        "keypoints": kp,
        "scores": torch.full((batch_size, n, 134), 0.9),
        "reference_keypoints": kp[:, prefix - 1],
        "reference_scores": torch.full((batch_size, 134), 0.9),
        "audio": 0.1 * torch.randn(batch_size, n * SPF, generator=g),
    }
    return {k: v.to(device) for k, v in batch.items()}


def _wav2vec2_path(tmp: str) -> str:
    path = os.environ.get("CSG_WAV2VEC2")
    if path and os.path.isdir(path):
        return path
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    out = os.path.join(tmp, "wav2vec2-base-random")
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(out)
    return out


def _build(scale: str, window: int, prefix: int, tmp: str, device: torch.device) -> SkeletonDiffusion:
    if scale == "demo":
        model = SkeletonDiffusion(
            preset="demo", audio_encoder="mel", window_frames=window, prefix_frames=prefix
        )
    else:
        model = SkeletonDiffusion(
            preset="paper",
            audio_encoder="pretrained",
            audio_encoder_path=_wav2vec2_path(tmp),
            window_frames=window,
            prefix_frames=prefix,
        )
    model.has_stats.fill_(True)
    model.default_reference_keypoints.copy_(256 + 60 * torch.randn(134, 2))
    model.default_reference_scores.fill_(0.9)
    return model.to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, repeats: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def bench_scale(scale: str, args, device: torch.device, tmp: str) -> dict:
    torch.manual_seed(0)
    model = _build(scale, args.window, args.prefix, tmp, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    batch = _random_batch(args.batch_size, args.window, args.prefix, device)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )

    def train_step():
        with amp:
            loss = model._diffusion_loss(batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.train()
    repeats = args.repeats if scale == "demo" or device.type == "cuda" else 1
    step_s = _time(train_step, repeats, 1, device)
    audio = (0.1 * np.random.default_rng(0).standard_normal(10 * 16000)).astype(np.float32)

    def sample():
        with amp:
            model.generate(audio, num_steps=args.steps, guidance_scale=3.5, seed=0)

    sample_s = _time(sample, repeats, 1 if repeats > 1 else 0, device)
    return {
        "params_trainable_M": round(sum(p.numel() for p in trainable) / 1e6, 2),
        "params_total_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "batch_size": args.batch_size,
        "train_step_s": round(step_s, 4),
        "train_frames_per_s": round(args.batch_size * (args.window + args.prefix) / step_s, 1),
        "sample_10s_s": round(sample_s, 4),
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="demo,paper", help="comma list of demo, paper")
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps for sampling (CFG on, scale 3.5)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--window", type=int, default=250)
    parser.add_argument("--prefix", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (paper scale on CPU: 1)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    result = {
        "benchmark": "skeleton",
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu x{torch.get_num_threads()}",
        "precision": "bf16-mixed" if device.type == "cuda" else "fp32",
        "window": args.window,
        "prefix": args.prefix,
        "ddim_steps": args.steps,
        "guidance_scale": 3.5,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for scale in [s.strip() for s in args.scales.split(",") if s.strip()]:
            if scale not in ("demo", "paper"):
                raise SystemExit(f"--scales: unknown scale {scale!r} (expected demo, paper)")
            result[scale] = bench_scale(scale, args, device, tmp)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
