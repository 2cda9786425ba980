"""`csg generate`: speech + a photo -> a video of that person talking (one row, or a batch on N devices).

    csg generate --pipeline experiments/pipeline/demo.yaml --audio speech.wav --photo person.png \\
        --out out.mp4 [--reference-pose ref.npz] [--skeleton.steps 10 --video.seed 3 ...]
    csg generate --pipeline P --rows rows.csv --out-dir D [--trainer.devices 2 --trainer.accelerator cpu
        --trainer.strategy ddp]

One row writes ``out.mp4`` (audio muxed), ``out.npz`` (skeletons in the photo's pixels),
``out.skeleton.mp4`` and ``out.config.yaml`` (the resolved pipeline); see
:mod:`csg_lightning.generation.talking_video`. ``--rows``: a CSV (columns audio, photo[,
reference_pose][, name]) or a CSG-405 ``test_pairs.json``, run through ``Trainer.predict`` so the
devices split the rows; finished rows are skipped (:mod:`csg_lightning.generation.batch_generation`).
Dotted options other than ``--trainer.*`` override the pipeline YAML
(:mod:`csg_lightning.generation.pipeline_config`). Every input is checked before a model is loaded;
a bad one exits with a message naming it.
"""

from __future__ import annotations

import argparse
import logging
import sys

from csg_lightning.io.validation import InputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csg generate", description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                     epilog="other --a.b VALUE options override the pipeline YAML")  # fmt: skip
    parser.add_argument("--pipeline", required=True, help="pipeline YAML (experiments/pipeline/demo.yaml)")
    parser.add_argument("--audio", help="speech: wav/flac/ogg or a video's audio track (any rate, mono/stereo)")
    parser.add_argument("--photo", help="the person: an image, or a video (its first frame)")
    parser.add_argument("--reference-pose", help="the photo's skeleton (.npz) instead of the estimator's")
    parser.add_argument("--out", help="output video (.mp4); .npz, .skeleton.mp4 and .config.yaml go beside it")
    parser.add_argument("--rows", help="batch: rows CSV (audio, photo[, reference_pose][, name]) or test_pairs.json")
    parser.add_argument("--out-dir", help="batch: output folder (<name>.mp4 ... per row)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def split_options(rest: list[str]) -> tuple[list[str], list[str]]:
    """Dotted options -> (pipeline overrides, trainer options) as ``key=value`` strings."""
    from csg_lightning.generation.pipeline_config import FIELDS, normalise_overrides

    names = [a.removeprefix("--").split("=", 1)[0] for a in rest if a.startswith("--")]
    unknown = [f"--{n}" for n in names if "." not in n and n not in FIELDS]
    if unknown:
        raise InputError(f"{unknown[0]}: unknown option (see csg generate --help)")
    items = normalise_overrides(rest)
    trainer = [i.removeprefix("trainer.") for i in items if i.startswith("trainer.")]
    return [i for i in items if not i.startswith("trainer.")], trainer


def _one(opts, overrides: list[str]) -> int:
    from csg_lightning.generation.pipeline_config import load_pipeline_config
    from csg_lightning.generation.talking_inputs import Request
    from csg_lightning.generation.talking_video import TalkingVideo

    missing = [f"--{n}" for n in ("audio", "photo", "out") if not getattr(opts, n)]
    if missing:
        raise InputError(f"{', '.join(missing)}: required for one video (or give --rows and --out-dir)")
    config = load_pipeline_config(opts.pipeline, overrides)
    request = Request(opts.audio, opts.photo, opts.out, opts.reference_pose)
    from csg_lightning.generation.talking_inputs import check_request

    check_request(request, needs_pose=config.estimator is None)  # before any model is loaded
    chain = TalkingVideo.load(config)
    video = chain(request, progress=not opts.quiet)
    print(f"video:     {video}\nskeletons: {video.with_suffix('.npz')} ({video.with_suffix('.skeleton.mp4').name})"
          f"\nconfig:    {video.with_suffix('.config.yaml')}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    opts, rest = build_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        overrides, trainer = split_options(rest)
        if opts.rows or opts.out_dir:
            if not (opts.rows and opts.out_dir) or opts.audio or opts.photo or opts.out:
                raise InputError("--rows and --out-dir: give both, and no --audio/--photo/--out")
            from csg_lightning.generation.batch_generation import run_batch

            run_batch(opts.pipeline, overrides, opts.rows, opts.out_dir, trainer, progress=not opts.quiet)
            return 0
        if trainer:
            raise InputError(f"--trainer.{trainer[0].split('=', 1)[0]}: trainer options need --rows and --out-dir (a batch)")
        return _one(opts, overrides)
    except InputError as err:
        raise SystemExit(f"csg generate: {err}") from None


if __name__ == "__main__":
    raise SystemExit(main())
