"""`csg-eval`: score skeletons (Stage 1 + baselines) or videos; reports land in ``runs/eval/<run>/``.

    csg-eval skeleton --ckpt runs/skeleton-demo/latest/checkpoints/last.ckpt --data data/demo/shards \
        [--fgd-ckpt runs/fgd-autoencoder/latest/checkpoints/last.ckpt] [--out DIR | --run NAME]
    csg-eval video --generated GEN_DIR --reference REF_DIR [--fid-weights F] [--fvd-weights F] [--lpips-weights F]
    csg-eval video-demo --skeleton-ckpt S --video-ckpt V --data data/demo/shards [--clips 4] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

DEFAULT_FGD_CKPT = "runs/fgd-autoencoder/latest/checkpoints/last.ckpt"


def _out_dir(args) -> Path:
    return (
        Path(args.out)
        if args.out
        else Path(args.runs_root) / "eval" / (args.run or time.strftime("%Y%m%d-%H%M%S"))
    )


def _skeleton(args) -> dict:
    from csg_lightning.evaluation.skeleton import evaluate_skeleton

    fgd = Path(args.fgd_ckpt)
    if not fgd.is_file():
        raise SystemExit(
            f"csg-eval skeleton: FGD encoder checkpoint {fgd} not found; train one with "
            "`csg fit --config experiments/eval/fgd_autoencoder.yaml` or pass --fgd-ckpt"
        )
    return evaluate_skeleton(
        args.ckpt, args.data, fgd, _out_dir(args), num_steps=args.num_steps, guidance_scale=args.guidance_scale,
        seed=args.seed, max_windows=args.max_windows, batch_size=args.batch_size, device=args.device,
        smooth=not args.no_smooth, sampler=args.sampler,
        sampler_kwargs=json.loads(args.sampler_kwargs) if args.sampler_kwargs else None,
        num_resamples=args.bootstrap,
    )  # fmt: skip


def _video(args) -> dict:
    from csg_lightning.evaluation.video import evaluate_video

    kwargs = {k: json.loads(v) if v else None for k, v in
              (("fid_forward_kwargs", args.fid_kwargs), ("fvd_forward_kwargs", args.fvd_kwargs))}  # fmt: skip
    return evaluate_video(
        args.generated, args.reference, _out_dir(args), fid_weights=args.fid_weights, fvd_weights=args.fvd_weights,
        lpips_weights=args.lpips_weights, lpips_net=args.lpips_net, max_frames=args.max_frames, **kwargs,
    )  # fmt: skip


def _video_demo(args) -> dict:
    from csg_lightning.evaluation.demo_video import DemoVideoConfig, evaluate_demo_video

    return evaluate_demo_video(DemoVideoConfig(
        args.skeleton_ckpt, args.video_ckpt, args.data, _out_dir(args), split=args.split, max_clips=args.clips,
        seconds=args.seconds, frame_stride=args.frame_stride, video_steps=args.video_steps,
        skeleton_steps=args.skeleton_steps, skeleton_anchor_seconds=args.skeleton_anchor_seconds or None,
        seed=args.seed, device=args.device,
    ))  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csg-eval", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sk = sub.add_parser("skeleton", help="score a Stage-1 checkpoint and baselines on the test split")
    sk.add_argument("--ckpt", required=True, help="SkeletonDiffusion checkpoint")
    sk.add_argument("--data", default="data/demo/shards", help="shard dir (its test split is scored)")
    sk.add_argument("--fgd-ckpt", default=DEFAULT_FGD_CKPT, help="FGDAutoencoderModule checkpoint")
    sk.add_argument("--num-steps", type=int, default=None, help="sampling steps (default: the checkpoint's)")
    sk.add_argument("--guidance-scale", type=float, default=None)
    sk.add_argument("--sampler", default=None,
                    help="diffusers scheduler for the model rows, e.g. DPMSolverMultistepScheduler (default: the checkpoint's)")
    sk.add_argument("--sampler-kwargs", default=None, help='JSON, e.g. \'{"algorithm_type": "dpmsolver++"}\'')
    sk.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the 95%% intervals (0: none)")
    sk.add_argument("--seed", type=int, default=0)
    sk.add_argument("--max-windows", type=int, default=48)
    sk.add_argument("--batch-size", type=int, default=8)
    sk.add_argument("--device", default="cpu")
    sk.add_argument("--no-smooth", action="store_true", help="score raw samples (no Savitzky-Golay filter)")
    sk.set_defaults(fn=_skeleton)
    vd = sub.add_parser("video", help="score generated videos against reference videos")
    vd.add_argument("--generated", required=True, help="folder of <name>.mp4")
    vd.add_argument(
        "--reference", required=True, help="folder of <name>.mp4 or clip folders <name>/video.mp4"
    )
    vd.add_argument("--fid-weights", default=None, help="TorchScript Inception feature network")
    vd.add_argument(
        "--fid-kwargs", default=None, help="JSON forward kwargs, e.g. '{\"return_features\": true}'"
    )
    vd.add_argument("--fvd-weights", default=None, help="I3D TorchScript file")
    vd.add_argument("--fvd-kwargs", default=None, help="JSON forward kwargs of the I3D module")
    vd.add_argument(
        "--lpips-weights", default=None, help="LPIPS state dict (python -m csg_lightning.metrics.lpips)"
    )
    vd.add_argument("--lpips-net", default="alex", choices=["alex", "vgg", "squeeze"])
    vd.add_argument("--max-frames", type=int, default=None, help="frames per video (default: all)")
    vd.set_defaults(fn=_video)
    vdemo = sub.add_parser("video-demo", help="Stage 1 -> Stage 2 on held-out clips vs the repeated reference frame")
    vdemo.add_argument("--skeleton-ckpt", required=True, help="SkeletonDiffusion checkpoint (Stage 1)")
    vdemo.add_argument("--video-ckpt", required=True, help="VideoGenerator checkpoint (Stage 2)")
    vdemo.add_argument("--data", default="data/demo/shards", help="shard dir with video")
    vdemo.add_argument("--split", default="test", choices=["train", "val", "test"])
    vdemo.add_argument("--clips", type=int, default=4, help="clips scored (the split's first ones)")
    vdemo.add_argument("--seconds", type=float, default=4.0, help="seconds of each clip after frame 0")
    vdemo.add_argument("--frame-stride", type=int, default=None, help="default: the Stage-2 training data's")
    vdemo.add_argument("--video-steps", type=int, default=None, help="Stage-2 sampling steps (default: model's)")
    vdemo.add_argument("--skeleton-steps", type=int, default=None, help="Stage-1 sampling steps")
    vdemo.add_argument("--skeleton-anchor-seconds", type=float, default=1.0,
                       help="Stage 1 starts at the reference pose, the correction fading over this (0: off)")
    vdemo.add_argument("--seed", type=int, default=0)
    vdemo.add_argument("--device", default="cpu")
    vdemo.set_defaults(fn=_video_demo)
    for p in (sk, vd, vdemo):
        p.add_argument("--out", default=None, help="output folder (default: <runs-root>/eval/<run>)")
        p.add_argument("--run", default=None, help="run name (default: a timestamp)")
        p.add_argument("--runs-root", default="runs")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Console-script entry."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("litdata").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    args.out = str(_out_dir(args))  # fixed once (the default name is a timestamp)
    report = args.fn(args)
    from csg_lightning.evaluation.report import markdown_table

    rows = {k: v for k, v in report.items() if k != "meta"}
    metrics = list(next(iter(rows.values())))
    print(markdown_table(rows, metrics, (report["meta"].get("intervals") or {}).get("rows")))
    print(f"\nreport: {Path(args.out) / 'report.md'}")


if __name__ == "__main__":
    main()
