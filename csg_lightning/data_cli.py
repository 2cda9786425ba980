"""`csg-data`: dataset commands.

    csg-data demo  OUT  [--scale S] [--seed N] [--no-video]   synthetic offline demo corpus (clip folders)
    csg-data shard SRC DST [--val-speakers N] [--test-speakers N] [--skip-bad]
                                                  clip folders -> litdata shards + stats
    csg-data features SHARDS --encoder ENC [--out DIR]   frozen audio-encoder features beside the shards
    csg-data import-poses SRC --format F --out OUT.npz   DWPose / CSG-405 pose files -> skeleton .npz
    csg-data pose-image PHOTO --out REF.npz [--estimator YAML | --pose P.onnx [--detector D.onnx]] [--person K]
                                                  photo -> reference skeleton .npz (+ .png) for --ref
    csg-data preprocess VIDEOS OUT [--config YAML] [--estimator YAML | --pose P.onnx [--detector D.onnx]]
                                                  ordinary videos -> QC'd 512x512 clip folders + report
    csg-data csg405 MANIFEST_DIR VIDEOS OUT [--poses DIR | --estimator YAML]
                                                  CSG-405 release + downloaded videos -> clip folders
    csg-data still VIDEO OUT.png [--frame N]      one frame of a video as a photo (e.g. a held-out speaker's)

``shard`` checks every clip in full (every video frame decoded) before writing anything: bad clips
are reported all at once, or left out with ``--skip-bad``. Both are idempotent: re-running skips
finished clips / complete splits and completes the rest.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def _demo(args: argparse.Namespace) -> None:
    from csg_lightning.data.corpus import generate_corpus

    start = time.perf_counter()
    clips = generate_corpus(
        args.out,
        num_speakers=max(1, round(args.speakers * args.scale)),
        clips_per_speaker=max(1, round(args.clips * args.scale)),
        clip_seconds=args.seconds,
        seed=args.seed,
        video=not args.no_video,
        workers=args.workers,
    )
    print(f"demo corpus: {len(clips)} clips in {args.out} ({time.perf_counter() - start:.1f} s)")


def _shard(args: argparse.Namespace) -> None:
    from csg_lightning.data.shards import ShardDirError, read_manifest, write_shards

    start = time.perf_counter()
    try:
        dst = write_shards(
            args.src, args.dst, val_speakers=args.val_speakers, test_speakers=args.test_speakers,
            seed=args.seed, skip_bad=args.skip_bad,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, ShardDirError) as err:  # bad clips, bad SRC / DST: no traceback
        raise SystemExit(f"csg-data shard: {err}") from None
    skipped = read_manifest(dst)["skipped"]
    for entry in skipped:
        print(f"skipped: {entry['error']}")
    print(f"shards: {dst} ({time.perf_counter() - start:.1f} s, {len(skipped)} bad clip(s) skipped)")


def _still(args: argparse.Namespace) -> None:
    import cv2
    import decord

    from csg_lightning.io.atomic import atomic_path

    try:
        reader = decord.VideoReader(str(args.video))
    except (RuntimeError, decord.DECORDError) as err:
        raise SystemExit(f"csg-data still: cannot read {args.video}: {err}") from None
    if not 0 <= args.frame < len(reader):
        raise SystemExit(f"csg-data still: {args.video} has {len(reader)} frames; --frame {args.frame} is outside")
    frame = reader[args.frame].asnumpy()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:  # the temp file keeps the suffix: cv2 picks the format by it
        if not cv2.imwrite(str(tmp), frame[:, :, ::-1]):
            raise SystemExit(f"csg-data still: could not write {args.out} (a .png or .jpg name?)")
    print(f"{args.out}: frame {args.frame} of {args.video} ({frame.shape[1]}x{frame.shape[0]})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csg-data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate the synthetic offline demo corpus (not a CSG-405 substitute)")
    demo.add_argument("out", type=Path, help="output folder of clip folders")
    demo.add_argument("--scale", type=float, default=1.0, help="multiplies speakers and clips per speaker")
    demo.add_argument("--speakers", type=int, default=8)
    demo.add_argument("--clips", type=int, default=12, help="clips per speaker")
    demo.add_argument("--seconds", type=float, default=12.0, help="clip length")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--no-video", action="store_true", help="skip the mp4 renders (Stage 1 needs none)")
    demo.set_defaults(func=_demo)

    shard = sub.add_parser("shard", help="convert clip folders into litdata shards split by speaker")
    shard.add_argument("src", type=Path)
    shard.add_argument("dst", type=Path)
    shard.add_argument("--val-speakers", type=int, default=1)
    shard.add_argument("--test-speakers", type=int, default=1)
    shard.add_argument("--seed", type=int, default=0)
    shard.add_argument(
        "--skip-bad", action="store_true",
        help="leave out clips that fail validation (listed in manifest.json and printed) instead of stopping",
    )  # fmt: skip
    shard.set_defaults(func=_shard)

    still = sub.add_parser("still", help="one frame of a video as a photo (png/jpg)")
    still.add_argument("video", type=Path)
    still.add_argument("out", type=Path)
    still.add_argument("--frame", type=int, default=0)
    still.set_defaults(func=_still)

    from csg_lightning.audio_features_cli import add_features_parser

    add_features_parser(sub)
    from csg_lightning.pose.import_cli import add_import_poses_parser

    add_import_poses_parser(sub)
    from csg_lightning.pose.pose_image_cli import add_pose_image_parser

    add_pose_image_parser(sub)
    from csg_lightning.preprocess.preprocess_cli import add_preprocess_parser

    add_preprocess_parser(sub)
    from csg_lightning.csg405.csg405_cli import add_csg405_parser

    add_csg405_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
