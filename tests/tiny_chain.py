"""A tiny audio + photo -> video chain for the `csg generate` tests, built once per test session.

:func:`tiny_chain` trains a tiny Stage-1 (``experiments/skeleton/demo.yaml`` with the tiny denoiser) and
a tiny Stage-2 (``experiments/video/demo.yaml`` with the tiny random parts, 32 x 32) checkpoint for one step each through the
real ``csg fit`` on the demo video corpus, takes a demo speaker's photo (frame 0 of a clip's
``video.mp4``) and its skeleton (frame 0 of ``pose.npz``), and writes a pipeline YAML naming both
checkpoints with 2 sampling steps. Built under the session's base temp folder, so every test module
that asks shares one copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
CPU = ["--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.max_steps=1", "--trainer.max_epochs=1",
       "--trainer.limit_val_batches=0", "--trainer.enable_model_summary=false", "--trainer.logger=false",
       f"--trainer.callbacks=[{ROOT / 'callbacks/checkpoint.yaml'}]", "--run=test"]  # fmt: skip
STAGE1 = ["--data.init_args.batch_size=2", "--data.init_args.window=50", "--data.init_args.num_prefix=10",
          f"--model.init_args.denoiser={ROOT / 'experiments/components/skeleton/denoiser/tiny.yaml'}",
          "--model.init_args.crossfade_frames=5"]  # fmt: skip
STAGE2 = [f"--config={ROOT / 'experiments/components/video/parts_tiny.yaml'}",  # random parts: no fitted VAE here
          "--data.init_args.batch_size=1", "--data.init_args.num_workers=0", "--data.init_args.num_frames=2",
          "--data.init_args.height=32", "--data.init_args.width=32"]  # fmt: skip
FAST = {"skeleton": {"steps": 2}, "video": {"steps": 2, "segment_frames": 16, "segment_overlap": 2}}


@dataclass(frozen=True)
class TinyChain:
    root: Path
    skeleton_checkpoint: Path
    video_checkpoint: Path
    pipeline: Path  # demo.yaml with the two checkpoints and FAST settings
    photo: Path  # 512 x 512 PNG of a demo speaker
    reference_pose: Path  # .npz: its skeleton (keypoints [134, 2], scores [134])
    clips: Path  # the demo corpus (clip folders with audio.wav, video.mp4, pose.npz)


def pipeline_yaml(path: Path, skeleton_checkpoint: Path, video_checkpoint: Path, **sections) -> Path:
    """experiments/pipeline/demo.yaml with the given checkpoints and FAST (+ ``sections``) merged in."""
    config = yaml.safe_load((ROOT / "experiments/pipeline/demo.yaml").read_text())
    config["skeleton"]["checkpoint"], config["video"]["checkpoint"] = str(skeleton_checkpoint), str(video_checkpoint)
    for key, value in {**FAST, **sections}.items():
        if isinstance(value, dict):
            config[key] = {**config.get(key, {}), **value}
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def build(root: Path, clips: Path, shards: Path) -> TinyChain:
    import decord
    from PIL import Image

    from csg_lightning.cli import run

    runs = root / "runs"
    for recipe, extra in (("skeleton/demo.yaml", STAGE1), ("video/demo.yaml", STAGE2)):
        run(["fit", f"--config={ROOT / 'experiments' / recipe}", f"--data.init_args.data_dir={shards}",
             f"--runs_root={runs}", *extra, *CPU])  # fmt: skip
    skeleton = runs / "skeleton-demo" / "test" / "checkpoints" / "last.ckpt"
    video = runs / "video-demo" / "test" / "checkpoints" / "last.ckpt"
    clip = sorted(p.parent for p in clips.glob("*/video.mp4"))[-1]
    photo = root / "speaker.png"
    Image.fromarray(decord.VideoReader(str(clip / "video.mp4"))[0].asnumpy()).save(photo)
    pose = np.load(clip / "pose.npz")
    reference = root / "speaker.npz"
    np.savez(reference, keypoints=pose["keypoints"][0], scores=pose["scores"][0])
    pipeline = pipeline_yaml(root / "pipeline.yaml", skeleton, video)
    return TinyChain(root, skeleton, video, pipeline, photo, reference, clips)


def tiny_chain(tmp_path_factory, clips: Path, shards: Path) -> TinyChain:
    """The session's chain (built on first use; a FileLock-free marker file: tests run in one process)."""
    root = tmp_path_factory.getbasetemp() / "tiny_chain"
    marker = root / "chain.yaml"
    if not marker.is_file():
        root.mkdir(parents=True, exist_ok=True)
        chain = build(root, clips, shards)
        marker.write_text(yaml.safe_dump({k: str(v) for k, v in chain.__dict__.items()}))
    return TinyChain(**{k: Path(v) for k, v in yaml.safe_load(marker.read_text()).items()})
