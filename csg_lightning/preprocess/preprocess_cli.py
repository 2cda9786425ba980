"""``csg-data preprocess VIDEOS OUT``: ordinary videos -> clip folders + a QC report.

    csg-data preprocess VIDEOS/ OUT/ [--config experiments/data/preprocess.yaml]
        [--estimator E.yaml | --pose P.onnx [--detector D.onnx]] [--device cuda] [--limit N] [--no-report]

Re-running the same command redoes only unfinished videos. Spread it over processes / nodes with
the launcher you have; each rank takes a fixed share of the videos (:mod:`.partition`)::

    torchrun --nproc-per-node 8 -m csg_lightning.data_cli preprocess VIDEOS OUT --device cuda
    srun --ntasks-per-node 8 --gpus-per-task 1 csg-data preprocess VIDEOS OUT --device cuda

A rank on a GPU node uses ``cuda:<LOCAL_RANK>``. Every rank refreshes the report when it finishes;
the last one to finish writes the complete report.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from csg_lightning.io.validation import int_at_least
from csg_lightning.pose.estimator_options import add_estimator_arguments

DEFAULT_CONFIG = Path("experiments/data/preprocess.yaml")
log = logging.getLogger("csg_lightning.preprocess")


def add_preprocess_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "preprocess", help="a folder of videos -> QC'd, cropped 512x512 clip folders (+ report)",
        description=__doc__.split("\n\n")[0],
    )  # fmt: skip
    parser.add_argument("videos", type=Path, help="folder of videos (searched recursively) or one video file")
    parser.add_argument("out", type=Path, help="output folder (clips/, videos/, thumbs/, report.*)")
    parser.add_argument(
        "--config", type=Path, default=None, help=f"preprocess YAML (default {DEFAULT_CONFIG} if present)"
    )
    add_estimator_arguments(parser, default=None)
    parser.add_argument(
        "--limit", type=int_at_least(1), default=None, help="process at most N videos (of this rank's share)"
    )
    parser.add_argument("--no-report", action="store_true", help="skip report.json / report.md / the PNGs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def _device_for_rank(spec: dict, local_rank: int) -> dict:
    init = dict(spec.get("init_args") or {})
    device = str(init.get("device", "cpu"))
    if device == "cuda":  # one GPU per rank
        init["device"] = f"cuda:{local_rank}"
    return {**spec, "init_args": init}


def run(args: argparse.Namespace) -> None:
    from csg_lightning.io.validation import InputError

    try:
        _run(args)
    except (InputError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"csg-data preprocess: {err}") from None
    except (
        OSError
    ) as err:  # disk full / permissions: the video in progress stays unfinished, nothing half-written
        raise SystemExit(
            f"csg-data preprocess: stopped by a write error ({err}); re-run to continue"
        ) from None


def _run(args: argparse.Namespace) -> None:
    from omegaconf import OmegaConf
    from tqdm.auto import tqdm

    from csg_lightning.io.atomic import atomic_path
    from csg_lightning.pose.estimator_options import build_estimator_from, estimator_spec
    from csg_lightning.preprocess.config import load_config
    from csg_lightning.preprocess.partition import partition, rank_from_env
    from csg_lightning.preprocess.pipeline import VideoPreprocessor, list_videos, record_path, video_key

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config_path = (
        args.config if args.config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    )
    chosen = estimator_spec(args, default=None)
    config = load_config(config_path, {"estimator": chosen[0]} if chosen else None)
    rank = rank_from_env()
    videos_root = args.videos if args.videos.is_dir() else args.videos.parent
    videos = list_videos(args.videos)
    if not videos:
        raise FileNotFoundError(
            f"VIDEOS {args.videos}: no video files ({', '.join(('.mp4', '.mkv', '.mov', '.webm'))})"
        )
    mine = partition(videos, rank.rank, rank.world_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "config.yaml") as tmp:  # the resolved configuration, next to the outputs
        tmp.write_text(OmegaConf.to_yaml(OmegaConf.structured(config)))
    rels = {p: p.relative_to(videos_root) for p in mine}
    pending = [p for p in mine if not record_path(out, video_key(rels[p])).is_file()]
    todo = pending if args.limit is None else pending[: args.limit]
    log.info(
        f"preprocess: {len(videos)} video(s) in {args.videos}; rank {rank.rank} of {rank.world_size} "
        f"({rank.source}) takes {len(mine)}, {len(mine) - len(pending)} done earlier, {len(todo)} to do now; "
        f"config {config_path or 'defaults'} (hash {config.processing_hash()})"
    )
    if todo:
        spec = _device_for_rank(config.estimator, rank.local_rank)
        estimator = build_estimator_from(spec, f"estimator {spec.get('class_path')}")
        worker = VideoPreprocessor(config, estimator, out, progress=not args.quiet)
        for path in tqdm(todo, desc=f"videos (rank {rank.rank})", unit="video", disable=args.quiet):
            start = time.perf_counter()
            try:
                rec = worker.process(path, rels[path])
            except OSError as err:  # disk full / permissions: name the video; its clips so far are complete
                raise OSError(f"while writing the clips of {rels[path]}: {err}") from err
            took = time.perf_counter() - start
            if rec["status"] == "skipped":
                log.info(f"{rels[path]}: skipped - {rec['skip_reason']}")
            else:
                kept = sum(s["kept"] for s in rec["segments"])
                fps = rec.get("frames", 0) / max(rec["timing"]["decode_detect_pose"], 1e-9)
                log.info(
                    f"{rels[path]}: {rec['seconds']:.1f} s, {len(rec['segments'])} segment(s), {kept} kept "
                    f"({took:.1f} s, pose pass {fps:.1f} frames/s)"
                )
    if not args.no_report:
        from csg_lightning.preprocess.report import load_records, write_report

        records = load_records(out)
        paths = write_report(
            out,
            records,
            {"config": config.to_dict(), "inputs": [str(p.relative_to(videos_root)) for p in videos]},
        )
        log.info(
            f"report: {paths.get('md', out / 'report.md')} ({len(records)} of {len(videos)} video(s) processed)"
        )
    log.info(f"clips: {out / 'clips'} (next: csg-data shard {out / 'clips'} SHARDS)")
