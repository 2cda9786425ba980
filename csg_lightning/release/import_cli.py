"""``csg import-release``: the paper's released Stage-1 checkpoint -> a `SkeletonDiffusion` checkpoint.

    csg import-release --checkpoint checkpoint_3000000.pth --mean Mean.npy --std Std.npy \\
        --wav2vec2 pretrained_weights/wav2vec2-base-960h [--args args.json] --out release.ckpt

The release file is read with ``weights_only=True`` (nothing pickled runs). Sizes come from the weights'
shapes; the number of heads (not in the weights) from ``--args`` (the release's ``args.json``) or
``--num-heads`` (default 16, the paper's). Writes ``--out`` and, next to it, ``<out>.import.json`` (the
resolved model config and where everything came from). The result generates as the release does
(``release_model.py``); ``SkeletonDiffusion.load_from_checkpoint(out)`` / ``csg_lightning.generation``
take it like any of ours.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

from csg_lightning.release.state_dict_map import ReleaseImportError

DEFAULT_WAV2VEC2 = os.environ.get("CSG_WAV2VEC2", "checkpoints/wav2vec2-base-960h")
SCHEDULES = {"cosine": "squaredcos_cap_v2"}  # the release's names diffusers knows by another; cosine_tau_<x> as is


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="csg import-release", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="the release's checkpoint_<step>.pth (or an MDM state_dict)")
    ap.add_argument("--mean", required=True, help="the release's Mean_*.npy ([1, 124, 2], neck first)")
    ap.add_argument("--std", required=True, help="the release's Std_*.npy")
    ap.add_argument("--out", required=True, help="the SkeletonDiffusion checkpoint to write (.ckpt)")
    ap.add_argument("--wav2vec2", default=DEFAULT_WAV2VEC2,
                    help="save_pretrained folder of the release's wav2vec2-base-960h (default $CSG_WAV2VEC2 or "
                         "checkpoints/wav2vec2-base-960h); its weights are not in the release's .pth")  # fmt: skip
    ap.add_argument("--args", default=None, help="the release's args.json (heads, dropout, schedule; checked)")
    ap.add_argument("--num-heads", type=int, default=None, help="attention heads (default: args.json, else 16)")
    ap.add_argument("--window", type=int, default=250, help="generated frames per window (release: 250)")
    ap.add_argument("--prefix", type=int, default=25, help="prefix frames (release: 25)")
    ap.add_argument("--guidance-scale", type=float, default=3.5, help="CFG scale (release: 3.5)")
    return ap.parse_args(argv)


def release_training_args(path: str | None) -> dict:
    """The parts of the release's args.json we use, checked to be the architecture we import."""
    if path is None:
        return {}
    path = Path(path)
    try:
        args = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ReleaseImportError(f"{path}: cannot read the release's args.json ({err})") from err
    checks = {"arch": "trans_enc", "model_mean_type": "x_start", "sigma_small": True}
    for key, want in checks.items():
        if key in args and args[key] != want:
            raise ReleaseImportError(f"{path}: field '{key}' is {args[key]!r}; only {want!r} can be imported")
    cond = set(str(args.get("cond", "audio_concat,long_video")).split(","))
    if not {"audio_concat", "long_video"} <= cond or cond - {"audio", "audio_concat", "long_video"}:
        raise ReleaseImportError(f"{path}: field 'cond' is {args.get('cond')!r}; expected audio_concat,long_video")
    schedule = str(args.get("noise_schedule", "cosine_tau_2"))
    if not (schedule.startswith("cosine_tau_") or schedule in SCHEDULES):
        raise ReleaseImportError(f"{path}: field 'noise_schedule' is {schedule!r}; expected cosine_tau_<x> or cosine")
    out = {"beta_schedule": SCHEDULES.get(schedule, schedule)}
    for src, dst in (("num_heads", "num_heads"), ("dropout", "dropout"), ("cond_mask_prob", "cond_drop_prob"),
                     ("diffusion_steps", "num_train_timesteps"), ("lr", "lr")):  # fmt: skip
        if src in args:
            out[dst] = args[src]
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_release(checkpoint: str | os.PathLike, mean: str | os.PathLike, std: str | os.PathLike,
                   out: str | os.PathLike, wav2vec2: str | os.PathLike = DEFAULT_WAV2VEC2,
                   args_json: str | None = None, num_heads: int | None = None, window: int = 250,
                   prefix: int = 25, guidance_scale: float = 3.5) -> Path:  # fmt: skip
    """Convert (see the module docstring) -> the path of the written checkpoint."""
    from csg_lightning.checkpoints.safe_load import load_checkpoint_file
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion
    from csg_lightning.release.release_model import (
        fill_model,
        load_release_stats,
        release_model_config,
        write_checkpoint,
    )
    from csg_lightning.release.state_dict_map import infer_sizes, map_state_dict, release_state_dict

    checkpoint, out = Path(checkpoint), Path(out)
    wav2vec2 = Path(wav2vec2)
    if not (wav2vec2 / "config.json").is_file():
        raise FileNotFoundError(
            f"--wav2vec2 {wav2vec2}: not a save_pretrained folder (no config.json); give the release's "
            "pretrained_weights/wav2vec2-base-960h"
        )
    trained = release_training_args(args_json)
    heads = int(num_heads if num_heads is not None else trained.get("num_heads", 16))
    sd = release_state_dict(load_checkpoint_file(checkpoint, what="release checkpoint"), str(checkpoint))
    sizes = infer_sizes(sd, str(checkpoint))
    if sizes["width"] % heads:
        raise ReleaseImportError(f"{checkpoint}: width {sizes['width']} is not divisible by {heads} heads (--num-heads)")
    mean_arr, std_arr = load_release_stats(mean, "--mean"), load_release_stats(std, "--std")
    config = release_model_config(
        wav2vec2.resolve(), sizes["width"], sizes["depth"], heads, sizes["ff_dim"],
        dropout=float(trained.get("dropout", 0.1)), cond_drop_prob=float(trained.get("cond_drop_prob", 0.1)),
        window_frames=window, prefix_frames=prefix, guidance_scale=guidance_scale,
        num_train_timesteps=int(trained.get("num_train_timesteps", 100)),
        beta_schedule=trained.get("beta_schedule", "cosine_tau_2"), lr=float(trained.get("lr", 5e-5)),
    )  # fmt: skip
    model = SkeletonDiffusion.from_config(config)
    audio_dim = int(model.audio_encoder.output_dim)
    if audio_dim != sizes["audio_dim"]:
        raise ReleaseImportError(
            f"{checkpoint}: 'embed_audio.weight' takes {sizes['audio_dim']}-d audio, but the wav2vec2 in "
            f"{wav2vec2} outputs {audio_dim}"
        )
    weights = map_state_dict(sd, model.state_dict(), str(checkpoint))
    fill_model(model, weights, mean_arr, std_arr)
    note = {
        "source": str(checkpoint.resolve()), "source_sha256": _sha256(checkpoint),
        "mean": str(Path(mean).resolve()), "std": str(Path(std).resolve()), "wav2vec2": str(wav2vec2.resolve()),
        "audio_encoder_weights": "checkpoint" if any(k.startswith("aud_m.") for k in sd) else "wav2vec2 folder",
        "sizes": {**sizes, "num_heads": heads},
    }  # fmt: skip
    path = write_checkpoint(model, out, note)
    from csg_lightning.io.atomic import atomic_path

    with atomic_path(out.with_suffix(".import.json")) as tmp:
        tmp.write_text(json.dumps({"model": {"init_args": config}, "import": note}, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    from csg_lightning.checkpoints.safe_load import CheckpointError

    a = parse_args(argv)
    try:
        path = import_release(a.checkpoint, a.mean, a.std, a.out, a.wav2vec2, a.args, a.num_heads, a.window,
                              a.prefix, a.guidance_scale)  # fmt: skip
    except (ReleaseImportError, CheckpointError, FileNotFoundError) as err:
        raise SystemExit(f"csg import-release: {err}") from None
    print(f"csg import-release: wrote {path} (config: {path.with_suffix('.import.json')})")


if __name__ == "__main__":
    main()
