"""Stage 1 side by side with the paper's release: training step and 10 s sampling, paper scale, one JSON line.

The release's own code (``$REFCSG`` = an extracted ``MPI-Lab/Democratizing-CSG/2d_kp_generation``) runs through
the refbench harness (``../shared/tools/refbench/ref_stage1.py``, a child process: THEIR MDM, trainer step and
100-step CFG sampler, a randomly initialised wav2vec2-base inside every forward as shipped, plus its
cached-encoder variant); ours runs in another child of this process, same venv, same ``--threads``. Both use
random weights at the paper's size (16 layers x 1024, 250 + 25 frames, batch 8 for training, CFG 3.5).

Ours: the training step reads precomputed audio features (``csg-data features``: the frozen encoder does not
run in the step); sampling one 10 s window runs the encoder once on the raw audio and the few-step sampler
(``--sampler`` / ``--steps``). Each timing has warm-up runs first; the load average is recorded before and
after every part. ``--quick``: 1 warm-up + 1 timed training step each, the release's sampler timed for
``--release-sample-steps`` (default 5 with --quick) of its 100 steps and extrapolated (said in the JSON).

    REFCSG=/tmp/refcsg/2d_kp_generation .venv/bin/python benchmarks/bench_vs_release.py [--quick]
        [--precisions fp32,bf16-mixed] [--sampler DPMSolverMultistepScheduler --steps 10]
    .venv/bin/python benchmarks/bench_vs_release.py --ours-only --quick     # no snapshot: our timings alone
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HARNESS = ROOT.parent / "shared" / "tools" / "refbench" / "ref_stage1.py"
SAMPLER_KWARGS = {"DPMSolverMultistepScheduler": {"algorithm_type": "dpmsolver++", "solver_order": 2},
                  "UniPCMultistepScheduler": {"solver_order": 2}, "DDIMScheduler": {}}  # fmt: skip
WINDOW, PREFIX, SPF, CFG = 250, 25, 640, 3.5


def load() -> float:
    return round(os.getloadavg()[0], 2)


def run_json(cmd: list[str], env: dict) -> dict:
    """Run a child; its last stdout line that parses as JSON (stderr passes through: progress stays visible)."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"bench_vs_release: {' '.join(cmd[:3])} ... exited {proc.returncode} without a JSON line")


# ---------------------------------------------------------------------------------------------- ours (child)
def build_ours(tmp: str, sampler: str, steps: int):
    import torch
    import yaml
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    path = os.environ.get("CSG_WAV2VEC2") or os.path.join(tmp, "wav2vec2-base-random")
    if not os.path.isdir(path):
        Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(path)  # wav2vec2-base architecture, random weights
    denoiser = yaml.safe_load((ROOT / "experiments/components/skeleton/denoiser/paper.yaml").read_text())
    fusion = denoiser["init_args"]["fusion"]
    if isinstance(fusion, str):
        denoiser["init_args"]["fusion"] = yaml.safe_load(
            (ROOT / "experiments/components/skeleton/denoiser" / fusion).read_text())
    config = {
        "audio_encoder": {"class_path": "csg_lightning.models.pretrained_speech_encoder.PretrainedSpeechEncoder",
                          "init_args": {"path_or_hub_id": path}},
        "denoiser": denoiser,
        "diffusion": {"class_path": "csg_lightning.models.diffusion.DiffusionProcess",
                      "init_args": {"sampler": sampler, "sampler_kwargs": SAMPLER_KWARGS.get(sampler, {}),
                                    "num_inference_steps": steps}},
        "guider": {"class_path": "csg_lightning.pipelines.guider.ConstantGuider", "init_args": {"scale": CFG}},
        "window_frames": WINDOW, "prefix_frames": PREFIX, "ema_decay": 0.0,
    }  # fmt: skip
    torch.manual_seed(0)
    model = SkeletonDiffusion.from_config(config)
    model.codec.load_stats({"mean": torch.zeros(246).numpy(), "std": torch.ones(246).numpy()})
    model.default_reference_keypoints.copy_(256 + 60 * torch.randn(134, 2))
    model.default_reference_scores.fill_(0.9)
    return model


def features_batch(model, batch_size: int) -> dict:
    """A datamodule-shaped batch with the precomputed features a `csg-data features` folder streams."""
    import torch

    n, g = WINDOW + PREFIX, torch.Generator().manual_seed(0)
    kp = 256 + 60 * torch.randn(batch_size, n, 134, 2, generator=g)
    audio = 0.1 * torch.randn(batch_size, n * SPF, generator=g)
    with torch.no_grad():
        feats = model.audio_encoder(audio[:1], n).expand(batch_size, -1, -1).contiguous()
    return {"features": torch.randn(batch_size, n, 246, generator=g), "mask": torch.ones(batch_size, n, 123),
            "keypoints": kp, "scores": torch.full((batch_size, n, 134), 0.9),
            "reference_keypoints": kp[:, PREFIX - 1], "reference_scores": torch.full((batch_size, 134), 0.9),
            "audio": audio, "audio_features": feats,
            "audio_features_id": [model.audio_encoder_id()] * batch_size}  # fmt: skip


def ours_child(a) -> dict:
    import contextlib

    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    out = {"loadavg_start": load()}
    with tempfile.TemporaryDirectory() as tmp:
        model = build_ours(tmp, a.sampler, a.steps)
    batch = features_batch(model, a.batch)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=5e-5)
    encoder_calls = [0]
    model.audio_encoder.register_forward_hook(lambda *_: encoder_calls.__setitem__(0, encoder_calls[0] + 1))
    out["params_trainable_M"] = round(sum(p.numel() for p in trainable) / 1e6, 2)
    audio = (0.1 * np.random.default_rng(0).standard_normal(10 * 16000)).astype(np.float32)
    for precision in a.precisions.split(","):
        amp = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16-mixed"
               else contextlib.nullcontext())  # fmt: skip
        model.train()
        runs, calls_before = [], encoder_calls[0]
        for i in range(a.warmup + a.reps):  # the body of a training step, as the release's loop times it
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with amp:
                loss = model._diffusion_loss(batch)["loss"]
            loss.backward()
            optimizer.step()
            if i >= a.warmup:
                runs.append(time.perf_counter() - t0)
            print(f"ours {precision}: train step {i}: {time.perf_counter() - t0:.2f} s", file=sys.stderr, flush=True)
        res = {"train_step_s": round(float(np.median(runs)), 3), "train_step_runs_s": [round(r, 3) for r in runs],
               "encoder_ran_in_training": encoder_calls[0] > calls_before, "loadavg_after_train": load()}  # fmt: skip
        with amp:
            model.generate(audio, num_steps=1, seed=0)  # warm-up
            t0 = time.perf_counter()
            kp, _ = model.generate(audio, seed=0)
            res["sample_10s_s"] = round(time.perf_counter() - t0, 3)
        res["sample_output_finite"] = bool(np.isfinite(kp).all())
        res["loadavg_after_sample"] = load()
        out[precision] = res
    return out


# ---------------------------------------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--refcsg", default=os.environ.get("REFCSG"), help="extracted 2d_kp_generation (or $REFCSG)")
    p.add_argument("--harness", default=str(DEFAULT_HARNESS), help="refbench ref_stage1.py")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="1 timed step each; the release's sampler extrapolated")
    p.add_argument("--release-sample-steps", type=int, default=None, help="release steps timed (default 100, quick 5)")
    p.add_argument("--sampler", default="DPMSolverMultistepScheduler")
    p.add_argument("--steps", type=int, default=10, help="our sampling steps")
    p.add_argument("--precisions", default="fp32", help="ours: comma list of fp32, bf16-mixed (the first is headline)")
    p.add_argument("--skip-release", default=None, help="a saved release JSON to reuse instead of running it")
    p.add_argument("--ours-only", action="store_true", help="no release snapshot: time ours only (no ratios)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.quick:
        a.reps = 1
    if a.child == "ours":
        print(json.dumps(ours_child(a)), flush=True)
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "TQDM_DISABLE": "1"}
    result = {"bench": "bench_vs_release", "threads": a.threads, "batch": a.batch, "quick": a.quick,
              "warmup": a.warmup, "reps": a.reps, "loadavg": {"start": load()}}  # fmt: skip
    ours_cmd = [sys.executable, __file__, "--child", "ours", "--threads", str(a.threads), "--batch", str(a.batch),
                "--warmup", str(a.warmup), "--reps", str(a.reps), "--sampler", a.sampler, "--steps", str(a.steps),
                "--precisions", a.precisions] + (["--quick"] if a.quick else [])  # fmt: skip
    if a.ours_only:
        ours = run_json(ours_cmd, env)
        result["loadavg"]["end"] = load()
        result["ours"] = {**ours, "sampler": a.sampler, "steps": a.steps,
                          "training_audio": "precomputed features (csg-data features)"}  # fmt: skip
        result["notes"] = ["--ours-only: no release timings, so no ratios; set REFCSG for those"]
        print(json.dumps(result), flush=True)
        return
    if a.skip_release:
        release = json.loads(Path(a.skip_release).read_text())
        result["release_reused_from"] = a.skip_release
    else:
        if not a.refcsg or not (Path(a.refcsg) / "model" / "mdm.py").is_file():
            raise SystemExit("bench_vs_release: set REFCSG (or --refcsg) to an extracted 2d_kp_generation "
                             "(../shared/tools/refbench/README.md section 1)")
        steps = a.release_sample_steps or (5 if a.quick else 100)
        with tempfile.TemporaryDirectory() as tmp:
            release = run_json([sys.executable, a.harness, "--configs", "paper", "--phases", "train,sample",
                                "--batch", str(a.batch), "--audio-encoder", "base", "--paper-sample-steps", str(steps),
                                "--cached-audio-steps", str(steps), "--warmup", str(a.warmup), "--reps", str(a.reps),
                                "--threads", str(a.threads), "--tmpdir", tmp], {**env, "REFCSG": a.refcsg})  # fmt: skip
    result["loadavg"]["after_release"] = load()
    ours = run_json(ours_cmd, env)
    result["loadavg"]["end"] = load()
    summary = release["summary"]["paper"]
    rel_train = summary.get(f"train_step_B{a.batch}_median_s")
    rel_shipped = summary.get("sample_10s_window_100steps_cfg_s")
    rel_cached = summary.get("sample_10s_window_cached_audio_s")
    result["release"] = {"train_step_s": rel_train, "sample_10s_shipped_s": rel_shipped,
                         "sample_10s_cached_s": rel_cached,
                         "sample_extrapolated_from_steps": summary.get("sample_extrapolated_from_steps"),
                         "audio_encoder": "wav2vec2-base (random init) in every forward",
                         "loadavg": [release.get("loadavg_1min_start"), release.get("loadavg_1min_end")],
                         "refcsg_commit": release.get("refcsg_commit")}  # fmt: skip
    first = a.precisions.split(",")[0]
    result["ours"] = {**ours[first], "precision": first, "sampler": a.sampler, "steps": a.steps,
                      "params_trainable_M": ours["params_trainable_M"],
                      "training_audio": "precomputed features (csg-data features)"}  # fmt: skip
    for prec in a.precisions.split(",")[1:]:
        result[f"ours_{prec}"] = ours[prec]

    def ratio(x, y):
        return round(x / y, 3) if x and y else None

    for prec in a.precisions.split(","):
        tag = "" if prec == first else f"_{prec}"
        result[f"train_step_speedup{tag}"] = ratio(rel_train, ours[prec]["train_step_s"])
        result[f"sample_speedup_vs_cached{tag}"] = ratio(rel_cached, ours[prec]["sample_10s_s"])
        result[f"sample_speedup_vs_shipped{tag}"] = ratio(rel_shipped, ours[prec]["sample_10s_s"])
    result["notes"] = [
        "speedup = release seconds / ours; the release runs fp32 as shipped",
        f"release sampling: {summary.get('sample_extrapolated_from_steps') or 100} of 100 steps timed"
        + (", extrapolated linearly (every step does the same work)" if summary.get("sample_extrapolated_from_steps")
           else ""),
        f"timings are medians of {a.reps} after {a.warmup} warm-up; single runs vary 10-25 % (refbench README); "
        "read them with the load averages",
    ]  # fmt: skip
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
