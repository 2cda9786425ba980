"""``csg-data preprocess`` benchmark: frames/s of each stage and end to end; one JSON line.

The footage is made by ``tests/raw_footage.py`` (two shots joined by a hard cut, one speaker each,
``--width`` x ``--height`` at ``--fps``, ``--seconds`` long, AAC speech). The stages are the pipeline's own
classes and functions, timed one by one on it:

- decode: :class:`~csg_lightning.preprocess.decode.VideoFrames` ``iter_chunks`` (25 fps frames) of the whole video;
- shots: :class:`~csg_lightning.preprocess.shots.ShotDetector` ``update`` on those chunks (decode excluded);
- detect+pose: :class:`~csg_lightning.pose.dwpose_onnx.DWPoseONNX` with the real-size random-weight graphs of
  ``benchmarks/bench_pose.py`` (YOLOX-l, one person box a frame, and RTMPose-l, both batch-1 as released)
  on ``--pose-frames`` source frames, in ``batch_frames`` calls; and the whole-frame variant (``detector: null``,
  a dynamic-batch pose graph) on the same frames;
- qc: :func:`~csg_lightning.preprocess.qc.run_checks` on every segment (the ground-truth track);
- crop+encode: :func:`~csg_lightning.preprocess.crop.crop_frames` to 512 and :func:`~csg_lightning.io.mp4.write_mp4`
  (with the audio) of ``--clip-frames`` frames of the first shot;
- write: the rest of :func:`~csg_lightning.preprocess.clip_writer.write_clip` (pose.npz, audio.wav, meta.json,
  the atomic rename), i.e. its time minus that of its ``write_mp4`` call;
- end to end: :meth:`~csg_lightning.preprocess.pipeline.VideoPreprocessor.process` on the footage with the DWPose
  estimator, and with the ground-truth estimator (tests/raw_footage.py, reads a barcode: no model cost).
  Both use a QC config that keeps every segment (random weights would fail every rule and skip the
  crop, encode and write of the clips), so the times are those of a video whose footage is all kept.

``hours_for_405h`` = 405 h * 3600 * 25 frames / (end-to-end frames/s) / 3600: wall-clock hours for the
CSG-405 footage on this machine (``core_hours``: that times the CPU count). The machine's load average at the
start and end says how much else was running.

    python benchmarks/bench_preprocess.py [--seconds 20] [--width 1280] [--height 720] [--fps 30]
        [--pose-frames 32] [--clip-frames 125]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import raw_footage as rf  # noqa: E402
from bench_pose import YOLOXL, RTMPoseL, one_person_mask  # noqa: E402
from pose_onnx_models import export_onnx  # noqa: E402

from csg_lightning.preprocess import clip_writer  # noqa: E402
from csg_lightning.preprocess.config import load_config  # noqa: E402

FOOTAGE_HOURS = 405
FPS = 25
KEEP_EVERYTHING = {  # QC thresholds every segment passes (see the module docstring)
    "qc": {"min_seconds": 0.0, "second_person_max_fraction": 1.0, "min_person_fraction": 0.0, "min_body_score": 0.0,
           "min_hand_score": 0.0, "min_in_frame_fraction": 0.0, "min_speech_fraction": 0.0,
           "max_av_offset_seconds": 1.0e9},
    "crop": {"min_score": 0.0},
}  # fmt: skip


def _rate(frames: int, seconds: float) -> float:
    return round(frames / max(seconds, 1e-9), 2)


def _loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def export_graphs(folder: Path) -> dict[str, Path]:
    """The real-size random-weight DWPose graphs of bench_pose.py: pose (batch 1 and dynamic), detector."""
    torch.manual_seed(0)
    pose, det = RTMPoseL().eval(), YOLOXL(*one_person_mask()).eval()
    crop, image = torch.zeros(1, 3, 384, 288), torch.zeros(1, 3, 640, 640)
    return {
        "pose_fixed": export_onnx(pose, crop, folder / "pose.onnx", "input", ["simcc_x", "simcc_y"]),
        "pose_dynamic": export_onnx(pose, crop, folder / "pose_dyn.onnx", "input", ["simcc_x", "simcc_y"],
                                    dynamic_batch=True),
        "det_fixed": export_onnx(det, image, folder / "det.onnx", "images", ["output"]),
    }  # fmt: skip


def estimators(files: dict[str, Path], device: str, batch: int) -> dict:
    from csg_lightning.pose.dwpose_onnx import DWPoseONNX

    return {
        "with_detector": DWPoseONNX(str(files["det_fixed"]), str(files["pose_fixed"]), device=device),
        "whole_frame": DWPoseONNX(None, str(files["pose_dynamic"]), device=device, batch_size=batch),
    }


def bench_pose(estimator, frames: np.ndarray, batch: int) -> float:
    """frames/s of ``estimator`` on ``frames`` in calls of ``batch`` frames (after a one-frame warm-up)."""
    estimator(list(frames[:1]))
    start = time.perf_counter()
    for i in range(0, len(frames), batch):
        estimator(list(frames[i : i + batch]))
    return _rate(len(frames), time.perf_counter() - start)


def decode_pass(path: Path, cfg, keep: int, truth: rf.GroundTruthEstimator) -> dict:
    """One pass over the 25 fps frames: decode, shot detection and the ground-truth track, timed apart."""
    from csg_lightning.preprocess.decode import VideoFrames
    from csg_lightning.preprocess.probe import probe_video
    from csg_lightning.preprocess.segments import SpeakerTrack
    from csg_lightning.preprocess.shots import ShotDetector
    from csg_lightning.preprocess.speaker_track import build_track

    start = time.perf_counter()
    probe = probe_video(path)
    frames = VideoFrames(path, probe)
    probe_s = time.perf_counter() - start
    detector = ShotDetector(cfg.shots.threshold, cfg.shots.min_shot_frames, cfg.shots.downscale_width)
    times = dict.fromkeys(("decode", "shots", "truth"), 0.0)
    kept, parts = [], []
    chunks = frames.iter_chunks(chunk=cfg.chunk_frames)
    while True:
        start = time.perf_counter()
        item = next(chunks, None)
        times["decode"] += time.perf_counter() - start
        if item is None:
            break
        t0, chunk = item
        start = time.perf_counter()
        detector.update(t0, chunk)
        times["shots"] += time.perf_counter() - start
        start = time.perf_counter()
        parts.append(build_track(truth(list(chunk))))
        times["truth"] += time.perf_counter() - start
        if sum(len(k) for k in kept) < keep:
            kept.append(chunk[: keep - sum(len(k) for k in kept)].copy())
    return {"probe": probe, "frames": frames, "probe_s": probe_s, "times": times, "cuts": detector.cuts(),
            "track": SpeakerTrack.concatenate(parts), "kept": np.concatenate(kept)}  # fmt: skip


def bench_qc(path: Path, probe, track, cuts, cfg, repeats: int = 3) -> tuple[float, float, np.ndarray]:
    """(audio read seconds, QC frames/s, the audio) of the pipeline's segmenting and checks over the whole video."""
    from csg_lightning.io.audio import read_audio
    from csg_lightning.preprocess.qc import run_checks, split_segment

    start = time.perf_counter()
    audio = read_audio(path, what="video")
    audio_s = time.perf_counter() - start
    n = len(track)
    bounds = [0, *[c for c in cuts if 0 < c < n], n]
    max_frames, min_frames = round(cfg.qc.max_seconds * FPS), round(cfg.qc.min_seconds * FPS)
    start = time.perf_counter()
    for _ in range(repeats):
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            for a, b in split_segment(lo, hi, max_frames, min_frames):
                run_checks(track.slice(a, b), audio[a * 640 : b * 640], probe.width, probe.height,
                           probe.duration, len(audio) / 16000, cfg.qc)  # fmt: skip
    return audio_s, _rate(n * repeats, time.perf_counter() - start), audio


@contextlib.contextmanager
def timed_write_mp4(seconds: list[float]):
    """clip_writer's write_mp4, its time appended to ``seconds`` (to split write_clip's time)."""
    real = clip_writer.write_mp4

    def write_mp4(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    clip_writer.write_mp4 = write_mp4
    try:
        yield
    finally:
        clip_writer.write_mp4 = real


def bench_clip(folder: Path, frames: np.ndarray, track, audio: np.ndarray, probe, cfg) -> dict:
    """crop_frames + write_mp4 of ``frames`` (the first frames of the video), then write_clip."""
    from csg_lightning.io.mp4 import write_mp4
    from csg_lightning.preprocess.crop import crop_box_for_clip, crop_frames, crop_keypoints
    from csg_lightning.preprocess.segments import SpeakerTrack
    from csg_lightning.skeleton.smoothing import smooth_skeleton

    n = len(frames)
    piece = track.slice(0, n)
    smoothed = smooth_skeleton(piece.keypoints, piece.scores, cfg.smoothing)
    smooth_track = SpeakerTrack(**{**piece.__dict__, "keypoints": smoothed})
    box = crop_box_for_clip(smooth_track, probe.width, probe.height, cfg.crop)
    size = cfg.crop.output_size
    start = time.perf_counter()
    cropped = crop_frames(frames, box, size)
    crop_s = time.perf_counter() - start
    sound = audio[: n * 640]
    start = time.perf_counter()
    write_mp4(folder / "encode.mp4", cropped, fps=FPS, audio=sound, crf=cfg.crf)
    encode_s = time.perf_counter() - start
    mp4_s: list[float] = []
    start = time.perf_counter()
    with timed_write_mp4(mp4_s):
        clip_writer.write_clip(folder / "clips", "bench", iter(cropped), sound, crop_keypoints(smoothed, box, size),
                               piece.scores, {"speaker_id": "bench"}, crf=cfg.crf)  # fmt: skip
    clip_s = time.perf_counter() - start
    return {
        "frames": n,
        "crop_frames_per_s": _rate(n, crop_s),
        "encode_frames_per_s": _rate(n, encode_s),
        "crop_encode_frames_per_s": _rate(n, crop_s + encode_s),
        "write_pose_audio_meta_frames_per_s": _rate(n, clip_s - sum(mp4_s)),
        "write_pose_audio_meta_s": round(clip_s - sum(mp4_s), 4),
    }


def end_to_end(path: Path, out: Path, estimator, cfg) -> dict:
    from csg_lightning.preprocess.pipeline import VideoPreprocessor

    worker = VideoPreprocessor(cfg, estimator, out, progress=False)
    start = time.perf_counter()
    record = worker.process(path, Path(path.name))
    seconds = time.perf_counter() - start
    if record["status"] != "done":
        raise RuntimeError(f"end to end: {path} was skipped: {record['skip_reason']}")
    fps = record["frames"] / seconds
    hours = FOOTAGE_HOURS * 3600 * FPS / fps / 3600
    return {
        "frames_per_s": round(fps, 2),
        "seconds": round(seconds, 1),
        "segments_kept": sum(s["kept"] for s in record["segments"]),
        "stage_seconds": {k: round(v, 2) for k, v in record["timing"].items()},
        "hours_for_405h": round(hours, 1),
        "core_hours_for_405h": round(hours * (os.cpu_count() or 1), 1),
    }


def cuda_note() -> str | None:
    """None when onnxruntime can run on CUDA, else why the GPU is not measured."""
    import onnxruntime as ort

    if not torch.cuda.is_available():
        return "not measured: no CUDA device (torch.cuda.is_available() is False)"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"not measured: onnxruntime has no CUDAExecutionProvider ({ort.get_available_providers()})"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="footage length (two shots of half each)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=float, default=30.0, help="source frame rate")
    parser.add_argument("--pose-frames", type=int, default=32, help="frames of the detect+pose stage")
    parser.add_argument(
        "--clip-frames", type=int, default=125, help="frames of the crop+encode and write stages"
    )
    args = parser.parse_args()
    import onnxruntime as ort

    result: dict = {"benchmark": "preprocess", "loadavg_start": _loadavg(), "cpu_count": os.cpu_count(),
                    "onnxruntime": ort.__version__,
                    "footage": {"seconds": args.seconds, "width": args.width, "height": args.height, "fps": args.fps}}  # fmt: skip
    cfg = load_config(None, KEEP_EVERYTHING)
    result["config"] = {"batch_frames": cfg.batch_frames, "chunk_frames": cfg.chunk_frames,
                        "qc": "every segment kept (KEEP_EVERYTHING)", "thumbnails": cfg.thumbnails}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        footage = rf.hard_cut(tmp / "footage.mp4", seconds=(args.seconds / 2, args.seconds / 2),
                              width=args.width, height=args.height, fps=args.fps, tag=1)  # fmt: skip
        result["footage"]["make_s"] = round(time.perf_counter() - start, 1)
        truth = rf.GroundTruthEstimator(footage)
        keep = max(args.pose_frames, args.clip_frames)
        passed = decode_pass(footage.path, cfg, keep, truth)
        n = len(passed["frames"])
        result["footage"]["frames_25fps"] = n
        result["footage"]["cuts"] = {"detected": passed["cuts"], "true": footage.cut_frames}
        stages = {
            "probe_s": round(passed["probe_s"], 3),
            "decode_frames_per_s": _rate(n, passed["times"]["decode"]),
            "shots_frames_per_s": _rate(n, passed["times"]["shots"]),
            "ground_truth_estimator_frames_per_s": _rate(n, passed["times"]["truth"]),
        }
        audio_s, stages["qc_frames_per_s"], audio = bench_qc(footage.path, passed["probe"], passed["track"],
                                                             passed["cuts"], cfg)  # fmt: skip
        stages["audio_read_s"] = round(audio_s, 3)
        stages["crop_encode_write"] = bench_clip(tmp, passed["kept"][: args.clip_frames], passed["track"], audio,
                                                 passed["probe"], cfg)  # fmt: skip
        files = export_graphs(tmp / "onnx")
        frames = passed["kept"][: args.pose_frames]
        models = estimators(files, "cpu", cfg.batch_frames)
        stages["detect_pose"] = {
            "frames": len(frames),
            f"with_detector_{args.width}x{args.height}_frames_per_s": bench_pose(models["with_detector"], frames,
                                                                                 cfg.batch_frames),
            f"whole_frame_no_detector_{args.width}x{args.height}_frames_per_s": bench_pose(models["whole_frame"],
                                                                                           frames, cfg.batch_frames),
        }  # fmt: skip
        result["cpu"] = stages
        result["end_to_end"] = {
            "dwpose_with_detector": end_to_end(
                footage.path, tmp / "out_dwpose", models["with_detector"], cfg
            ),
            "ground_truth_estimator": end_to_end(footage.path, tmp / "out_truth", truth, cfg),
        }
        note = cuda_note()
        if note is None:
            gpu = estimators(files, "cuda", cfg.batch_frames)
            result["gpu"] = {
                "detect_pose_with_detector_frames_per_s": bench_pose(gpu["with_detector"], frames, cfg.batch_frames),
                "detect_pose_whole_frame_frames_per_s": bench_pose(gpu["whole_frame"], frames, cfg.batch_frames),
                "end_to_end_dwpose": end_to_end(footage.path, tmp / "out_gpu", gpu["with_detector"], cfg),
            }  # fmt: skip
        else:
            result["gpu"] = note
    result["loadavg_end"] = _loadavg()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
