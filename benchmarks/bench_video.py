"""Video generator speed and memory; one JSON line.

    python benchmarks/bench_video.py [--steps 10] [--frames 16] [--skip-gpu] [--threads N]

- ``demo_train_step_s``: median training step (forward, backward, AdamW) of the demo config (tiny
  parts, batch 4 x 4 frames at 64x64, fp32) on the current device, with ``torch_threads`` threads;
- ``demo_generate_s_per_frame``: ``--frames`` frames generated with 25 Euler steps and guidance (two
  UNet passes per step), including the VAE decode, divided by the frame count;
- with CUDA: ``svd_step_peak_memory_gb`` / ``svd_step_s``: one training step of the real SVD-xt
  configuration (random weights; UNet + PoseNet trained, VAE/CLIP frozen in bf16) at batch 1 x 16
  frames x 576x1024, bf16 autocast, gradient checkpointing incl. temporal blocks, AdamW.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from csg_lightning.video.video_generator import VideoGenerator


def synthetic_batch(b: int, f: int, h: int, w: int, device) -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "frames": torch.randint(0, 256, (b, f, 3, h, w), generator=g, dtype=torch.uint8).to(device),
        "reference": torch.randint(0, 256, (b, 3, h, w), generator=g, dtype=torch.uint8).to(device),
        "poses": torch.randint(0, 256, (b, f, 3, h, w), generator=g, dtype=torch.uint8).to(device),
        "hand_mask": (torch.rand(b, f, h // 8, w // 8, generator=g) > 0.9).float().to(device),
    }


def train_step_times(model: VideoGenerator, batch: dict, steps: int, autocast_dtype=None) -> list[float]:
    device = batch["frames"].device
    opt = torch.optim.AdamW([p for p in model.net.parameters() if p.requires_grad], lr=1e-5)
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = model.diffusion_loss(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def bench_demo(steps: int, frames: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = VideoGenerator.from_preset(
        "tiny", image_height=64, image_width=64, ema_decay=0, frozen_dtype="float32"
    )
    model = model.to(device).train()
    times = train_step_times(model, synthetic_batch(4, 4, 64, 64, device), steps + 2)[2:]
    model.eval()
    ref = torch.rand(1, 3, 64, 64, device=device) * 2 - 1
    poses = torch.rand(1, frames + 1, 3, 64, 64, device=device) * 2 - 1
    start = time.perf_counter()
    latents = model.sample_latents(ref, poses, num_steps=25, min_guidance=1.0, max_guidance=2.0, tile_size=16)
    model.decode(latents[:, 1:])
    gen = time.perf_counter() - start
    return {
        "demo_train_step_s": round(statistics.median(times), 4),
        "demo_generate_s_per_frame": round(gen / frames, 4),
    }


def bench_svd_memory(device: torch.device) -> dict:
    torch.manual_seed(0)
    model = VideoGenerator.from_preset("svd-xt", frozen_dtype="bfloat16", gradient_checkpointing=True, ema_decay=0)
    model = model.to(device).train()
    batch = synthetic_batch(1, 16, 576, 1024, device)
    torch.cuda.reset_peak_memory_stats(device)
    times = train_step_times(model, batch, 3, autocast_dtype=torch.bfloat16)
    return {
        "svd_step_peak_memory_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2),
        "svd_step_s": round(statistics.median(times[1:]), 3),
        "svd_trainable_params_m": round(sum(p.numel() for p in model.net.parameters()) / 1e6, 1),
        "gpu": torch.cuda.get_device_name(device),
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--skip-gpu", action="store_true", help="no SVD-size memory measurement")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default on CPU: 1, as the demo)"
    )
    opts = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if opts.threads or device.type == "cpu":
        torch.set_num_threads(opts.threads or 1)
    result = {
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    result.update(bench_demo(opts.steps, opts.frames, device))
    if device.type == "cuda" and not opts.skip_gpu:
        result.update(bench_svd_memory(device))
    else:
        result["svd_step_peak_memory_gb"] = None  # needs CUDA
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
