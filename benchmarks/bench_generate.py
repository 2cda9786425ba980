"""Generation speed and peak memory of both stages; prints one JSON line.

    python benchmarks/bench_generate.py [--threads 1] [--audio-seconds 12] [--video-frames 48]
    python benchmarks/bench_generate.py --gpu [--gpu-steps 3] [--gpu-frames 144]

Every measurement runs in its own child process, so each peak is that stage's alone: on the CPU the
child's peak resident set size (``ru_maxrss``, which includes the ~0.4 GB of an imported torch: see
``rss_before_mb``), on a GPU ``torch.cuda.max_memory_allocated``. ``s_per_video_s`` is wall seconds
per second of generated output (Stage 1: skeleton seconds at 25 fps; Stage 2: video seconds at
``--video-fps``, 12.5 = 25 fps / the recipes' frame stride 2). ``os.getloadavg()`` is recorded before
and after (the numbers are only comparable on an idle machine).

- ``stage1_cpu``: ``SkeletonPipeline`` on the demo model (``experiments/skeleton/demo.yaml``'s
  ``model.init_args`` with random weights: 4 s windows + 1 s prefix, 25 DDIM steps, guidance 2.0),
  ``--audio-seconds`` of audio, cross-faded windows, smoothing included.
- ``stage2_cpu``: ``VideoGenerator.from_preset("tiny")`` at the demo size (64 x 64), 25 Euler steps,
  guidance 1 -> 2, tiles of 16 frames (overlap 4), ``--video-frames`` frames + the reference-pose frame,
  VAE decode included.
- ``--gpu``: Stage 2 with the real SVD-xt configuration (``from_preset("svd-xt")``, random weights; UNet,
  PoseNet, VAE and CLIP in bf16) at 576 x 1024, ``--gpu-frames`` frames + the reference, tiles of 16
  (overlap 4) and of 72 (overlap 6, MimicMotion's release config). ``--gpu-steps`` Euler steps are run
  and timed (``step_s``); ``s_per_video_s`` extrapolates to 25 steps plus the decode. Peaks: denoising
  (``peak_denoise_gb``; target <= 16 GB for 72-frame tiles) and decoding (``peak_decode_gb``,
  ``vae_chunk_size`` 8). Stage 1 demo on the GPU too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKELETON_RECIPE = ROOT / "experiments" / "skeleton" / "demo.yaml"
STEPS = 25


def _resolve_fragments(value, base: Path):
    """YAML fragment paths (``../components/....yaml``) -> their contents, recursively (as LightningCLI)."""
    import yaml

    if isinstance(value, str) and value.endswith(".yaml"):
        path = (base / value).resolve()
        if not path.is_file():
            raise FileNotFoundError(
                f"bench_generate: {base} names the fragment {value}, which does not exist"
            )
        return _resolve_fragments(yaml.safe_load(path.read_text()), path.parent)
    if isinstance(value, dict):
        return {k: _resolve_fragments(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_fragments(v, base) for v in value]
    return value


def _peak_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stage1(args, device) -> dict:
    import numpy as np
    import torch
    import yaml

    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    recipe = yaml.safe_load(SKELETON_RECIPE.read_text())
    init_args = _resolve_fragments(recipe["model"]["init_args"], SKELETON_RECIPE.parent)
    data = recipe["data"]["init_args"]
    torch.manual_seed(0)
    model = SkeletonDiffusion.from_config(
        {**init_args, "window_frames": data["window"], "prefix_frames": data["num_prefix"]}
    )
    codec = getattr(model, "codec", model)
    if hasattr(codec, "has_stats"):  # random weights: unit statistics stand in for the corpus's
        codec.has_stats.fill_(True)
    model = model.to(device).eval()
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int(args.audio_seconds * 16000))).astype(np.float32)
    ref_kp = (256 + 60 * rng.standard_normal((134, 2))).astype(np.float32)
    ref_sc = np.full(134, 0.9, np.float32)
    pipe = model.pipeline()
    pipe(audio[:16000], ref_kp, ref_sc, num_steps=2, seed=0)  # warm-up
    rss_before = _rss_mb()
    _sync(device)
    start = time.perf_counter()
    kp, _ = pipe(audio, ref_kp, ref_sc, num_steps=STEPS, seed=0)
    _sync(device)
    elapsed = time.perf_counter() - start
    seconds = len(kp) / 25
    return {"model": "skeleton demo (random weights)", "video_seconds": round(seconds, 2), "steps": STEPS,
            "window_frames": int(data["window"]), "wall_s": round(elapsed, 3),
            "s_per_video_s": round(elapsed / seconds, 4), "rss_before_mb": rss_before,
            "peak_mb": _peak_mb(device)}  # fmt: skip


def _clip(frames: int, height: int, width: int):
    import torch

    g = torch.Generator().manual_seed(0)
    ref = torch.randint(0, 256, (1, 3, height, width), generator=g, dtype=torch.uint8)
    poses = torch.randint(0, 256, (1, frames + 1, 3, height, width), generator=g, dtype=torch.uint8)
    return ref, poses  # poses: reference pose + frames, uint8 on the CPU (moved tile by tile)


def stage2_cpu(args, device) -> dict:
    import torch

    from csg_lightning.pipelines.guider import LinearRampGuider
    from csg_lightning.video.pixel_range import to_model_range
    from csg_lightning.video.video_generator import VideoGenerator

    torch.manual_seed(0)
    model = VideoGenerator.from_preset(
        "tiny", image_height=64, image_width=64, ema_decay=0, frozen_dtype="float32"
    )
    model = model.to(device).eval()
    pipe = model.pipeline()
    pipe.guider = LinearRampGuider(1.0, 2.0)
    ref, poses = _clip(args.video_frames, 64, 64)
    ref = to_model_range(ref).to(device)
    pipe.decode(pipe.sample_latents(ref, poses[:, :5], num_steps=1)[:, 1:])  # warm-up
    rss_before = _rss_mb()
    _sync(device)
    start = time.perf_counter()
    latents = pipe.sample_latents(ref, poses, num_steps=STEPS, tile_size=16, tile_overlap=4)
    frames = pipe.decode(latents[:, 1:])
    _sync(device)
    elapsed = time.perf_counter() - start
    seconds = frames.shape[1] / args.video_fps
    return {"model": "video tiny preset 64x64 (random weights)", "frames": int(frames.shape[1]),
            "video_seconds": round(seconds, 2), "steps": STEPS, "tile_size": 16, "tile_overlap": 4,
            "wall_s": round(elapsed, 3), "s_per_video_s": round(elapsed / seconds, 4),
            "rss_before_mb": rss_before, "peak_mb": _peak_mb(device)}  # fmt: skip


def stage2_gpu(args, device, tile_size: int, tile_overlap: int) -> dict:
    import torch

    from csg_lightning.pipelines.guider import LinearRampGuider
    from csg_lightning.video.pixel_range import to_model_range
    from csg_lightning.video.video_generator import VideoGenerator

    preset, (h, w) = args.gpu_preset, ((576, 1024) if args.gpu_preset == "svd-xt" else (64, 64))
    torch.manual_seed(0)
    with torch.device(device):  # random init directly on the device
        model = VideoGenerator.from_preset(preset, image_height=h, image_width=w, ema_decay=0,
                                           frozen_dtype="bfloat16")  # fmt: skip
    model = model.to(device, torch.bfloat16).eval()
    pipe = model.pipeline()
    pipe.guider = LinearRampGuider(2.0, 2.0)  # MimicMotion's inference: constant 2.0, two passes
    ref, poses = _clip(args.gpu_frames, h, w)
    ref = to_model_range(ref).to(device)
    weights_mb = _peak_mb(device)
    _reset_peak(device)
    _sync(device)
    start = time.perf_counter()
    latents = pipe.sample_latents(
        ref, poses, num_steps=args.gpu_steps, tile_size=tile_size, tile_overlap=tile_overlap
    )
    _sync(device)
    denoise_s = time.perf_counter() - start
    peak_denoise = _peak_mb(device)
    _reset_peak(device)
    start = time.perf_counter()
    frames = pipe.decode(latents[:, 1:])
    _sync(device)
    decode_s = time.perf_counter() - start
    seconds = frames.shape[1] / args.video_fps
    step_s = denoise_s / args.gpu_steps
    return {"model": f"{preset} (random weights, bf16) {h}x{w}", "frames": int(frames.shape[1]),
            "tile_size": tile_size, "tile_overlap": tile_overlap,
            "tiles": len(pipe.tiles(frames.shape[1] + 1, tile_size, tile_overlap)),
            "steps_run": args.gpu_steps, "step_s": round(step_s, 3), "decode_s": round(decode_s, 3),
            "s_per_video_s": round((STEPS * step_s + decode_s) / seconds, 3),
            "weights_gb": round(weights_mb / 1024, 2), "peak_denoise_gb": round(peak_denoise / 1024, 2),
            "peak_decode_gb": round(_peak_mb(device) / 1024, 2),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "none"}  # fmt: skip


def run_one(name: str, args) -> dict:
    import torch

    device = torch.device("cuda" if "_gpu" in name and args.gpu_preset == "svd-xt" else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    if name in ("stage1_cpu", "stage1_gpu"):
        return stage1(args, device)
    if name == "stage2_cpu":
        return stage2_cpu(args, device)
    tile_size, tile_overlap = {"stage2_gpu_tile16": (16, 4), "stage2_gpu_tile72": (72, 6)}[name]
    return stage2_gpu(args, device, tile_size, tile_overlap)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as the demo)")
    parser.add_argument("--audio-seconds", type=float, default=12.0)
    parser.add_argument("--video-frames", type=int, default=48)
    parser.add_argument("--video-fps", type=float, default=12.5)
    parser.add_argument("--gpu", action="store_true", help="also Stage 2 at SVD-xt size on CUDA")
    parser.add_argument("--gpu-steps", type=int, default=3)
    parser.add_argument("--gpu-frames", type=int, default=144)
    parser.add_argument(
        "--gpu-preset", default="svd-xt", help=argparse.SUPPRESS
    )  # "tiny": dry run of the path
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)  # child process: one measurement
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run_one(args.only, args)))
        return {}
    names = ["stage1_cpu", "stage2_cpu"]
    if args.gpu:
        names += ["stage1_gpu", "stage2_gpu_tile16", "stage2_gpu_tile72"]
    passthrough = [a for a in sys.argv[1:] if a != "--gpu"]
    result = {"python": platform.python_version(), "torch_threads": args.threads,
              "cpu_count": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for name in names:
        proc = subprocess.run([sys.executable, __file__, *passthrough, "--only", name], capture_output=True,
                              text=True, env=env, cwd=ROOT)  # fmt: skip
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            result[name] = {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
        else:
            result[name] = json.loads(lines[-1])
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
