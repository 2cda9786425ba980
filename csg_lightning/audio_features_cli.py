"""`csg-data features SHARDS --encoder ENC`: precompute a frozen audio encoder's features beside the shards.

``ENC`` is an audio-encoder YAML fragment (``class_path`` + ``init_args``, e.g.
``experiments/components/skeleton/audio/wav2vec2.yaml``; ``${oc.env:...}`` is resolved) or a
``SkeletonDiffusion`` checkpoint (its ``audio_encoder``). Writes ``SHARDS/audio_features/`` (or ``--out``);
see ``csg_lightning/data/audio_features.py``. Training on these shards then skips the encoder.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def load_encoder(spec: str):
    """An audio encoder from a YAML fragment or a SkeletonDiffusion checkpoint (frozen, eval mode)."""
    path = Path(spec)
    if not path.is_file():
        raise SystemExit(f"csg-data features: --encoder {spec}: no such file (a YAML fragment or a .ckpt)")
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion, build_part

    if path.suffix in (".yaml", ".yml"):
        import yaml
        from omegaconf import OmegaConf

        config = OmegaConf.to_container(OmegaConf.create(yaml.safe_load(path.read_text())), resolve=True)
        if not isinstance(config, dict) or "class_path" not in config:
            raise SystemExit(f"csg-data features: {path}: expected an audio encoder fragment with a class_path")
        return build_part(SkeletonDiffusion, "audio_encoder", config).eval()
    from csg_lightning.checkpoints.safe_load import load_module

    return load_module(SkeletonDiffusion, path).audio_encoder.eval()


def _features(args: argparse.Namespace) -> None:
    from csg_lightning.data.audio_features import AudioFeaturesError, write_audio_features
    from csg_lightning.data.shards import ShardDirError

    start = time.perf_counter()
    encoder = load_encoder(args.encoder)
    try:
        out = write_audio_features(args.shards, encoder, args.out, dtype=args.dtype, source=str(args.encoder),
                                   device=args.device)  # fmt: skip
    except (AudioFeaturesError, ShardDirError) as err:
        raise SystemExit(f"csg-data features: {err}") from None
    print(f"audio features: {out} ({time.perf_counter() - start:.1f} s)")


def add_features_parser(sub) -> None:
    p = sub.add_parser("features", help="precompute frozen audio-encoder features beside a shard folder")
    p.add_argument("shards", type=Path, help="shard folder written by `csg-data shard`")
    p.add_argument("--encoder", required=True, help="audio encoder YAML fragment or SkeletonDiffusion checkpoint")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: SHARDS/audio_features)")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"], help="stored feature dtype")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_features)
