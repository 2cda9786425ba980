"""``evaluate_demo_video``: the two stages chained on held-out clips, against the real frames (``csg-eval video-demo``).

For each clip of a split (default: the test split, whose speaker no model saw) the reference is frame 0
with its pose, and the first ``seconds`` of the clip are scored at the Stage-2 model's resolution and
frame stride (its training data's: frames ``stride, 2 stride, ...`` after the reference):

- ``generated``: Stage 1 (``SkeletonDiffusion`` checkpoint, ``model.pipeline()``, reference = frame 0's
  pose; its start anchored to that pose, ``skeleton_anchor_seconds``, as ``csg generate`` with the demo
  pipeline) turns the clip's audio into skeletons; Stage 2 (``VideoGenerator``) renders them with
  :func:`~csg_lightning.video.generate.generate_video` (aligned to the reference body), as ``csg generate``;
- ``upper_bound``: the clip's ground-truth skeletons through Stage 2 (no Stage-1 error);
- ``baseline``: the reference frame repeated (no motion at all).

Real frames and the reference are decoded exactly as ``PoseVideoDataModule`` decodes training frames
(decord scaling + :class:`~csg_lightning.data.cover_crop.CoverCrop`), so every row sees the same pixels.
PSNR and SSIM (torchmetrics, data range 1) per clip and their mean over clips land in ``report.json`` /
``report.md``; ``contact_sheet.png`` shows real / generated / upper bound / baseline rows of the first
clips; ``videos/<clip>_<row>.mp4`` hold every row with the clip's audio; ``config.yaml`` the settings.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from litdata import StreamingDataset
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from tqdm.auto import tqdm

from csg_lightning.data.cover_crop import CoverCrop
from csg_lightning.data.pose_video import decode_video
from csg_lightning.data.records import check_record
from csg_lightning.data.shard_folder import ShardFolder
from csg_lightning.evaluation.report import write_report
from csg_lightning.evaluation.skeleton import file_hash
from csg_lightning.io.atomic import atomic_path
from csg_lightning.io.audio import to_float
from csg_lightning.io.mp4 import write_mp4
from csg_lightning.timing import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME

log = logging.getLogger(__name__)
ROWS = ("generated", "upper_bound", "baseline")
METRICS = ["PSNR", "SSIM"]


@dataclass
class DemoVideoConfig:
    """The settings of one evaluation (written to ``config.yaml``)."""

    skeleton_ckpt: str
    video_ckpt: str
    data_dir: str = "data/demo/shards"
    out_dir: str = "runs/eval/video-demo"
    split: str = "test"
    max_clips: int | None = 4
    seconds: float = 4.0
    frame_stride: int | None = None  # None: the Stage-2 checkpoint's datamodule frame_stride (else 2)
    video_steps: int | None = None  # None: the Stage-2 checkpoint's num_inference_steps
    skeleton_steps: int | None = None
    skeleton_anchor_seconds: float | None = 1.0  # as experiments/pipeline/demo.yaml (None: off)
    seed: int = 0
    device: str = "cpu"
    sheet_clips: int = 2
    sheet_frames: int = 8


@dataclass
class HeldOutClip:
    """One scored clip: frames at the model's size, poses in its pixels, audio of the scored span."""

    clip_id: str
    speaker_id: str
    reference: np.ndarray  # uint8 [H, W, 3] frame 0
    frames: np.ndarray  # uint8 [T, H, W, 3] frames stride, 2 stride, ...
    reference_pose: tuple[np.ndarray, np.ndarray]  # [134, 2] model pixels, [134]
    source_reference_pose: tuple[np.ndarray, np.ndarray]  # [134, 2] the clip's pixels (Stage 1's), [134]
    poses: tuple[np.ndarray, np.ndarray]  # ground truth [T, 134, 2] model pixels, [T, 134]
    audio: np.ndarray  # float32 [N] from frame 0
    crop: CoverCrop
    indices: np.ndarray  # source frame of each scored frame


def frame_stride_of(video_ckpt: str | Path) -> int | None:
    """The ``frame_stride`` of the datamodule a Stage-2 checkpoint was trained with (None if not recorded)."""
    from csg_lightning.checkpoints.safe_load import load_checkpoint_file

    data = load_checkpoint_file(video_ckpt, what="VideoGenerator checkpoint", mmap=True)
    stride = (data.get("datamodule_hyper_parameters") or {}).get("frame_stride")
    return int(stride) if stride is not None else None


def held_out_clips(data_dir: str, split: str, width: int, height: int, stride: int, seconds: float,
                   max_clips: int | None) -> list[HeldOutClip]:  # fmt: skip
    """The first ``max_clips`` records of ``split`` -> :class:`HeldOutClip` (``seconds`` of each after frame 0)."""
    shards = ShardFolder(str(data_dir))
    uri = shards.split_uri(split)
    if uri is None:
        raise ValueError(f"{data_dir}: the {split} split is empty; expected held-out clips with video")
    dataset = StreamingDataset(uri, shuffle=False, **shards.streaming_options())
    count = len(dataset) if max_clips is None else min(len(dataset), int(max_clips))
    clips = []
    for i in range(count):
        record = dataset[i]
        where = f"shard record {record.get('clip_id', '?')!r} (index {i}) of {uri}"
        num_frames = check_record(record, where)
        if not bytes(record["video"]):
            raise ValueError(f"{where}: field 'video' is empty; video-demo needs clips with video.mp4")
        last = min(num_frames - 1, int(round(seconds * FPS)))
        indices = np.arange(stride, last + 1, stride)
        if len(indices) == 0:
            raise ValueError(f"{where}: {num_frames} frames, too short for one frame at stride {stride}")
        crop = CoverCrop.fit(int(record["width"]), int(record["height"]), width, height)
        pixels = crop.crop(decode_video(bytes(record["video"]), [0, *indices.tolist()], crop.scaled, where))
        kp, sc = np.asarray(record["keypoints"], np.float32), np.asarray(record["scores"], np.float32)
        audio = to_float(np.asarray(record["audio"][: (int(indices[-1]) + 1) * SAMPLES_PER_FRAME]))  # to the last scored frame
        clips.append(HeldOutClip(
            str(record["clip_id"]), str(record["speaker_id"]), np.ascontiguousarray(pixels[0]),
            np.ascontiguousarray(pixels[1:]), (crop.keypoints(kp[0]), sc[0]), (kp[0], sc[0]),
            (crop.keypoints(kp[indices]), sc[indices]), audio.astype(np.float32), crop, indices,
        ))  # fmt: skip
    return clips


def frame_scores(generated: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """uint8 [T, H, W, 3] each -> {"PSNR": dB, "SSIM": mean} over the T frames (data range 1)."""
    g = torch.from_numpy(np.ascontiguousarray(generated)).permute(0, 3, 1, 2).float() / 255
    r = torch.from_numpy(np.ascontiguousarray(real)).permute(0, 3, 1, 2).float() / 255
    return {"PSNR": float(peak_signal_noise_ratio(g, r, data_range=1.0)),
            "SSIM": float(structural_similarity_index_measure(g, r, data_range=1.0))}  # fmt: skip


def contact_sheet(blocks: list[tuple[str, dict[str, np.ndarray]]], columns: int, cell: int = 128) -> np.ndarray:
    """[(clip_id, {row: uint8 [T, H, W, 3]})] -> one RGB image: per clip, a labelled row per entry,
    ``columns`` frames spread over the clip."""
    lines = []
    for clip_id, rows in blocks:
        for name, frames in rows.items():
            picks = np.linspace(0, len(frames) - 1, min(columns, len(frames))).round().astype(int)
            cells = [cv2.resize(frames[t], (cell, cell), interpolation=cv2.INTER_NEAREST) for t in picks]
            label = np.full((cell, cell, 3), 255, np.uint8)
            for k, text in enumerate((clip_id, name.replace("_", " "))):
                cv2.putText(label, text, (4, 24 + 22 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
            lines.append(np.concatenate([label, *cells], axis=1))
        lines.append(np.full((6, lines[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(lines[:-1], axis=0)


def _write_png(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(image[:, :, ::-1])):
            raise OSError(f"could not write {path}")


def _load(cls, ckpt: str, device: str, make: str):
    from csg_lightning.checkpoints.safe_load import load_module

    if not Path(ckpt).is_file():
        raise FileNotFoundError(f"{cls.__name__} checkpoint not found: {ckpt} (train one with `{make}`)")
    return load_module(cls, ckpt, map_location=device).eval()


def evaluate_demo_video(config: DemoVideoConfig) -> dict:
    """Score the chain on held-out clips; writes and returns the report ({row: {metric}}, "meta")."""
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion
    from csg_lightning.video.generate import generate_video
    from csg_lightning.video.video_generator import VideoGenerator

    began, c = time.time(), config
    out = Path(c.out_dir)
    video_model = _load(VideoGenerator, c.video_ckpt, c.device, "make train-video")
    skeleton = _load(SkeletonDiffusion, c.skeleton_ckpt, c.device, "make train-skeleton").pipeline()
    h = video_model.hparams
    if h.image_height is None or h.image_width is None:
        raise ValueError(f"{c.video_ckpt}: the Stage-2 model has no image_height/image_width (train it with data)")
    width, height = int(h.image_width), int(h.image_height)
    stride = c.frame_stride or frame_stride_of(c.video_ckpt) or 2
    clips = held_out_clips(c.data_dir, c.split, width, height, stride, c.seconds, c.max_clips)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "config.yaml") as tmp:
        settings = {k: str(v) if isinstance(v, os.PathLike) else v for k, v in asdict(c).items()}
        Path(tmp).write_text(yaml.safe_dump({**settings, "frame_stride": stride, "width": width, "height": height}))
    per_clip: dict[str, dict[str, dict[str, float]]] = {}
    blocks = []
    for clip in tqdm(clips, desc="video-demo clips", unit="clip"):
        kp, sc = skeleton(clip.audio, *clip.source_reference_pose, num_steps=c.skeleton_steps, seed=c.seed,
                          anchor_seconds=c.skeleton_anchor_seconds)  # fmt: skip
        driving = (clip.crop.keypoints(kp[clip.indices]), sc[clip.indices])
        run = {"align": False, "model": video_model, "reference_pose": clip.reference_pose,
               "num_steps": c.video_steps, "seed": c.seed}  # fmt: skip
        rows = {
            "real": clip.frames,
            "generated": generate_video(clip.reference, driving, **{**run, "align": True}),
            "upper_bound": generate_video(clip.reference, clip.poses, **run),
            "baseline": np.broadcast_to(clip.reference, clip.frames.shape).copy(),
        }
        per_clip[clip.clip_id] = {name: frame_scores(rows[name], clip.frames) for name in ROWS}
        audio = clip.audio[clip.indices[0] * SAMPLES_PER_FRAME :]
        for name, frames in rows.items():
            write_mp4(out / "videos" / f"{clip.clip_id}_{name}.mp4", _even(frames), fps=FPS / stride,
                      audio=audio, sample_rate=SAMPLE_RATE)  # fmt: skip
        if len(blocks) < c.sheet_clips:
            blocks.append((clip.clip_id, rows))
        log.info("%s: %s", clip.clip_id, per_clip[clip.clip_id])
    _write_png(out / "contact_sheet.png", contact_sheet(blocks, c.sheet_frames))
    means = {name: {m: float(np.mean([v[name][m] for v in per_clip.values()])) for m in METRICS} for name in ROWS}
    table = {**means, **{f"{cid} {name}": v[name] for cid, v in per_clip.items() for name in ROWS}}
    gain = {m: means["generated"][m] - means["baseline"][m] for m in METRICS}
    meta = {
        "split": c.split, "clips": len(clips), "speakers": sorted({cl.speaker_id for cl in clips}),
        "frames_per_clip": int(len(clips[0].frames)), "frame_stride": stride, "resolution": f"{width}x{height}",
        "skeleton_ckpt": c.skeleton_ckpt, "skeleton_ckpt_sha256": file_hash(c.skeleton_ckpt),
        "video_ckpt": c.video_ckpt, "video_ckpt_sha256": file_hash(c.video_ckpt),
        "generated_minus_baseline": gain, "seconds": round(time.time() - began, 1),
    }  # fmt: skip
    verdict = "beats" if gain["PSNR"] > 0 and gain["SSIM"] > 0 else "does NOT beat"
    notes = [
        f"generated {verdict} the repeated reference frame: PSNR {gain['PSNR']:+.2f} dB, SSIM {gain['SSIM']:+.4f} "
        f"(mean over {len(clips)} held-out clips)",
        "reference = frame 0 with its pose; scored frames: every frame_stride-th source frame after it, at the "
        "Stage-2 model's resolution; rows 'CLIP row' are per clip",
    ]  # fmt: skip
    return write_report(out, "Demo video: generated vs baseline vs upper bound", table, meta, METRICS, notes)


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad to even height and width (the mp4 encoder's need)."""
    t, hh, ww, _ = frames.shape
    return np.pad(frames, ((0, 0), (0, hh % 2), (0, ww % 2), (0, 0)), mode="edge")
