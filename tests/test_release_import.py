"""Importing the paper's released Stage-1 model (`csg import-release`) and the release-fidelity options.

Without the release's code: the point-order maps, the ``cosine_tau_2`` schedule against its formula,
diffusers' ``DDPMScheduler`` step against the release's ``sample_xt`` formula, the import of a synthetic
release ``state_dict`` (right key names; wrong shapes, unknown keys and bad statistics refused with the
file and key named), a checkpoint that loads ``weights_only`` and generates, and the fidelity options
(lip windows, low-confidence prefix points).

With ``REFCSG`` (an extracted ``MPI-Lab/Democratizing-CSG/2d_kp_generation``, see
``shared/tools/refbench/README.md`` §1): THEIR ``MDM`` with random weights (small config) is built and run
by ``tests/release_reference.py`` in its own process; its ``state_dict`` is imported and our model gives
the same x0 predictions (<= 1e-5) and the same 100-step CFG sample from the same noise (<= 1e-4).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from csg_lightning.release import point_order
from csg_lightning.skeleton.layout import NUM_KEYPOINTS, SkeletonLayout
from csg_lightning.skeleton.local import LOCAL_INDICES, NUM_LOCAL_FEATURES

TESTS = Path(__file__).resolve().parent
REFCSG = os.environ.get("REFCSG")
AUDIO_DIM = 768  # the release's embed_audio takes wav2vec2-base's 768-d states


# ---------------------------------------------------------------- helpers
def save_tiny_wav2vec2(folder: Path, seed: int = 0) -> Path:
    """A random wav2vec2 with base's output size and frame rate (0 transformer layers, 32-ch convs)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(seed)
    cfg = Wav2Vec2Config(hidden_size=AUDIO_DIM, num_hidden_layers=0, num_attention_heads=12,
                         intermediate_size=AUDIO_DIM, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=16)  # fmt: skip
    Wav2Vec2Model(cfg).save_pretrained(folder)
    return folder


def release_pe(width: int, max_len: int = 5000) -> torch.Tensor:
    """[max_len, 1, width]: sin on even, cos on odd channels (numpy, written from the formula)."""
    pos = np.arange(max_len)[:, None]
    freq = np.exp(np.arange(0, width, 2) * (-math.log(10000.0) / width))
    pe = np.zeros((max_len, width), np.float32)
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos * freq), np.cos(pos * freq)
    return torch.from_numpy(pe)[:, None]


def synthetic_release_state_dict(width=16, depth=2, ff=32, audio_dim=AUDIO_DIM, seed=0) -> dict:
    """Random tensors under the release MDM's key names (trans_enc, audio_concat,long_video)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    sd = {"input_process.poseEmbedding.weight": r(width, NUM_LOCAL_FEATURES),
          "input_process.poseEmbedding.bias": r(width),
          "concat_to_hidden.0.weight": r(4 * width, 2 * width), "concat_to_hidden.0.bias": r(4 * width),
          "concat_to_hidden.2.weight": r(width, 4 * width), "concat_to_hidden.2.bias": r(width),
          "sequence_pos_encoder.pe": release_pe(width),
          "embed_timestep.sequence_pos_encoder.pe": release_pe(width),
          "embed_timestep.time_embed.0.weight": r(width, width), "embed_timestep.time_embed.0.bias": r(width),
          "embed_timestep.time_embed.2.weight": r(width, width), "embed_timestep.time_embed.2.bias": r(width),
          "embed_audio.weight": r(width, audio_dim), "embed_audio.bias": r(width),
          "audio_learnable": r(width),
          "output_process.poseFinal.weight": r(NUM_LOCAL_FEATURES, width),
          "output_process.poseFinal.bias": r(NUM_LOCAL_FEATURES)}  # fmt: skip
    for i in range(depth):
        p = f"seqTransEncoder.layers.{i}."
        sd.update({p + "self_attn.in_proj_weight": r(3 * width, width), p + "self_attn.in_proj_bias": r(3 * width),
                   p + "self_attn.out_proj.weight": r(width, width), p + "self_attn.out_proj.bias": r(width),
                   p + "linear1.weight": r(ff, width), p + "linear1.bias": r(ff),
                   p + "linear2.weight": r(width, ff), p + "linear2.bias": r(width),
                   p + "norm1.weight": 1 + r(width), p + "norm1.bias": r(width),
                   p + "norm2.weight": 1 + r(width), p + "norm2.bias": r(width)})  # fmt: skip
    return sd


def write_stats(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    mean, std = folder / "Mean.npy", folder / "Std.npy"
    np.save(mean, rng.normal(0, 20, (1, 124, 2)).astype(np.float32))
    np.save(std, rng.uniform(5, 30, (1, 124, 2)).astype(np.float32))
    return mean, std


@pytest.fixture(scope="module")
def wav2vec2(tmp_path_factory) -> Path:
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("wav2vec2") / "tiny")


def run_import(*args: str) -> None:
    from csg_lightning.cli import main

    main(["import-release", *[str(a) for a in args]])


# ---------------------------------------------------------------- point order, schedule, sampler
def test_point_order_maps_round_trip_and_match_names():
    names = SkeletonLayout.names()
    assert [names[i] for i in point_order.RELEASE_134_TO_OURS] == point_order.RELEASE_134_NAMES
    assert point_order.RELEASE_134_NAMES[0] == "neck" and names[SkeletonLayout.NECK] == "neck"
    assert point_order.RELEASE_123_TO_OURS_134.tolist() == LOCAL_INDICES.tolist()
    assert sorted(point_order.RELEASE_134_TO_OURS.tolist()) == list(range(NUM_KEYPOINTS))
    x = np.random.default_rng(0).normal(size=(3, NUM_KEYPOINTS, 2))
    assert np.array_equal(point_order.release_points_to_ours(point_order.our_points_to_release(x)), x)
    assert np.array_equal(point_order.our_points_to_release(x)[:, 0], x[:, SkeletonLayout.NECK])
    release = point_order.our_points_to_release(x)
    assert np.array_equal(release[:, 1], x[:, 0]) and np.array_equal(release[:, 18], x[:, 18])  # nose; COCO 17 toe
    perm = point_order.feature_permutation()
    assert sorted(perm.tolist()) == list(range(NUM_LOCAL_FEATURES))
    with pytest.raises(ValueError, match=r"expected \[\.\.\., 134, C\]"):
        point_order.release_points_to_ours(np.zeros((5, 133, 2)))


def test_cosine_tau_schedule_matches_its_formula():
    from diffusers import DDPMScheduler

    from csg_lightning.models.diffusion import DiffusionProcess
    from csg_lightning.models.noise_schedule import cosine_tau_betas, named_trained_betas

    n = 100
    betas = np.array(cosine_tau_betas(n, 2.0))
    alpha_bar = [math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 4 for t in np.arange(n + 1) / n]
    acp = np.cumprod(1 - betas)
    # alpha_bar(t_i) / alpha_bar(0) until the last step, which is clipped to beta = 0.999
    np.testing.assert_allclose(acp[:-1], np.array(alpha_bar[1:-1]) / alpha_bar[0], rtol=1e-12)
    assert betas[-1] == 0.999 and 0 < betas[0] < 2e-3
    # tau = 1 is diffusers' squaredcos_cap_v2
    ours = torch.tensor(cosine_tau_betas(n, 1.0), dtype=torch.float32)
    assert torch.allclose(ours, DDPMScheduler(n, beta_schedule="squaredcos_cap_v2").betas, atol=1e-7)
    assert named_trained_betas("squaredcos_cap_v2", n) is None
    with pytest.raises(ValueError, match="cosine_tau_<number>"):
        named_trained_betas("cosine_tau_x", n)
    process = DiffusionProcess(beta_schedule="cosine_tau_2", sampler="DDIMScheduler")
    want = torch.tensor(betas, dtype=torch.float32)
    assert torch.equal(process.train_scheduler.betas, want)
    assert torch.equal(process.make_sampler().betas, want)  # samplers share the release's betas
    assert torch.equal(process.make_sampler("DDPMScheduler").betas, want)


def test_ddpm_fixed_small_step_is_the_release_sample_xt():
    """The release samples x_{t-1} = coef1[t] x0 + coef2[t] x_t + sqrt(posterior_var[t]) z over t = 99..0."""
    from csg_lightning.models.diffusion import DiffusionProcess
    from csg_lightning.models.noise_schedule import cosine_tau_betas

    betas = np.array(cosine_tau_betas(100, 2.0))
    acp = np.cumprod(1 - betas)
    acp_prev = np.append(1.0, acp[:-1])
    coef1 = betas * np.sqrt(acp_prev) / (1 - acp)
    coef2 = (1 - acp_prev) * np.sqrt(1 - betas) / (1 - acp)
    var = betas * (1 - acp_prev) / (1 - acp)
    process = DiffusionProcess(beta_schedule="cosine_tau_2", sampler="DDPMScheduler",
                               sampler_kwargs={"variance_type": "fixed_small"}, num_inference_steps=100)  # fmt: skip
    sched = process.make_sampler()
    sched.set_timesteps(100)
    assert sched.timesteps.tolist() == list(range(99, -1, -1))
    x, x0 = torch.randn(2, 7, 5), torch.randn(2, 7, 5)
    for t in (99, 50, 1, 0):
        g1, g2 = torch.Generator().manual_seed(t), torch.Generator().manual_seed(t)
        got = sched.step(x0, t, x, generator=g1).prev_sample
        z = torch.randn(x.shape, generator=g2) if t > 0 else torch.zeros_like(x)
        want = coef1[t] * x0.double() + coef2[t] * x.double() + math.sqrt(var[t]) * z.double()
        # diffusers computes the coefficients in float32 (the release in float64): at t = 1 they differ by ~1e-5
        assert torch.allclose(got.double(), want, atol=5e-5), t


# ---------------------------------------------------------------- import of a synthetic release file
def test_import_synthetic_state_dict_loads_and_generates(tmp_path, wav2vec2):
    from csg_lightning.checkpoints.safe_load import load_module
    from csg_lightning.models.release_denoiser import ReleaseDenoiser
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    sd = synthetic_release_state_dict()
    release = tmp_path / "checkpoint_3000000.pth"
    torch.save({"model": sd, "optimizer": {"state": {}, "param_groups": []}, "step": 3, "mean_loss": 0.1}, release)
    mean, std = write_stats(tmp_path)
    out = tmp_path / "out" / "release.ckpt"
    run_import("--checkpoint", release, "--mean", mean, "--std", std, "--wav2vec2", wav2vec2, "--num-heads", 2,
               "--window", 20, "--prefix", 5, "--out", out)  # fmt: skip
    note = json.loads(out.with_suffix(".import.json").read_text())
    assert note["import"]["sizes"] == {"width": 16, "depth": 2, "ff_dim": 32, "feature_dim": 246,
                                       "audio_dim": AUDIO_DIM, "num_heads": 2}  # fmt: skip
    model = load_module(SkeletonDiffusion, out)
    assert isinstance(model.denoiser, ReleaseDenoiser)
    assert torch.equal(model.denoiser.encoder.layers[1].linear2.bias, sd["seqTransEncoder.layers.1.linear2.bias"])
    assert torch.equal(model.denoiser.audio.null, sd["audio_learnable"])
    assert torch.equal(model.denoiser.head.weight, sd["output_process.poseFinal.weight"])
    np.testing.assert_allclose(model.codec.feature_mean.numpy(), np.load(mean)[0, 1:].reshape(-1))
    assert model.codec.prefix_low_confidence == "mean" and model.lip_windows == (7, 5)
    assert type(model.diffusion.make_sampler()).__name__ == "DDPMScheduler"
    pipe = model.pipeline()
    assert pipe.crossfade_frames == 0 and pipe.lip_windows == (7, 5)
    audio = np.random.default_rng(0).normal(0, 0.1, 16000 * 2).astype(np.float32)  # 2 s = 50 frames, 3 windows
    kp, sc = model.generate(audio, num_steps=3, seed=0)
    assert kp.shape == (50, NUM_KEYPOINTS, 2) and np.isfinite(kp).all() and sc.shape == (50, NUM_KEYPOINTS)
    kp2, _ = model.generate(audio, num_steps=3, seed=0)
    assert np.array_equal(kp, kp2)


def test_import_rejects_wrong_shapes_unknown_keys_and_bad_stats(tmp_path, wav2vec2):
    mean, std = write_stats(tmp_path)
    out = tmp_path / "x.ckpt"
    base = ["--mean", mean, "--std", std, "--wav2vec2", wav2vec2, "--num-heads", 2, "--out", out]

    def refused(sd_or_none, *extra, match):
        path = tmp_path / "bad.pth"
        if sd_or_none is not None:
            torch.save(sd_or_none, path)
        with pytest.raises(SystemExit, match=match):
            run_import("--checkpoint", path, *base, *extra)
        assert not out.exists()

    sd = synthetic_release_state_dict()
    bad = dict(sd, **{"concat_to_hidden.0.weight": torch.zeros(64, 16)})
    refused(bad, match=r"'concat_to_hidden\.0\.weight' has shape \(64, 16\), but our 'denoiser\.fusion\.0\.weight' "
                       r"expects \(64, 32\)")  # fmt: skip
    refused(dict(sd, **{"clip_model.token_embedding.weight": torch.zeros(3, 4)}), match="clip_model.token_embedding")
    refused({k: v for k, v in sd.items() if k != "audio_learnable"}, match="missing 1 weights.*denoiser.audio.null")
    refused(dict(sd, **{"sequence_pos_encoder.pe": torch.zeros(5000, 1, 16)}), match="not the sinusoid table")
    refused(dict(sd, **{"embed_audio.weight": torch.zeros(16, 512)}), match="takes 512-d audio")
    refused({k: v for k, v in sd.items() if not k.startswith("seqTransEncoder.layers.0.")},
            match=r"no 'seqTransEncoder\.layers\.0\.linear1\.weight'")  # fmt: skip
    refused(sd, "--num-heads", 3, match="not divisible by 3 heads")
    np.save(tmp_path / "Bad.npy", np.zeros((1, 133, 2), np.float32))
    torch.save(sd, tmp_path / "ok.pth")
    with pytest.raises(SystemExit, match=r"Bad\.npy: --mean of shape \(1, 133, 2\); expected \[1, 124, 2\]"):
        run_import("--checkpoint", tmp_path / "ok.pth", "--mean", tmp_path / "Bad.npy", "--std", std,
                   "--wav2vec2", wav2vec2, "--num-heads", 2, "--out", out)  # fmt: skip
    (tmp_path / "not_a_checkpoint.pth").write_text("hello")
    with pytest.raises(SystemExit, match="not a PyTorch checkpoint"):
        run_import("--checkpoint", tmp_path / "not_a_checkpoint.pth", *base)
    with pytest.raises(SystemExit, match="not a save_pretrained folder"):
        run_import("--checkpoint", tmp_path / "ok.pth", "--mean", mean, "--std", std, "--wav2vec2", tmp_path,
                   "--out", out)  # fmt: skip
    (tmp_path / "args.json").write_text(json.dumps({"arch": "trans_dec", "num_heads": 2}))
    with pytest.raises(SystemExit, match="field 'arch' is 'trans_dec'"):
        run_import("--checkpoint", tmp_path / "ok.pth", *base, "--args", tmp_path / "args.json")
    assert not out.exists()


# ---------------------------------------------------------------- fidelity options
def test_lip_windows_smooth_the_lips_like_the_release_and_default_is_unchanged():
    from scipy.signal import savgol_filter

    from csg_lightning.pipelines.skeleton_pipeline import SkeletonPipeline
    from csg_lightning.skeleton.smoothing import INNER_LIPS, OUTER_LIPS, savgol_smooth

    kp = np.random.default_rng(1).normal(100, 5, (40, NUM_KEYPOINTS, 2)).astype(np.float32)
    ours = SkeletonPipeline.__new__(SkeletonPipeline)
    ours.smoothing_window, ours.smoothing_order, ours.lip_windows = 11, 2, (None, None)
    assert np.array_equal(ours._smooth_track(kp), savgol_smooth(kp, 11, 2))
    ours.lip_windows = (7, 5)
    got = ours._smooth_track(kp)
    np.testing.assert_allclose(got[:, OUTER_LIPS], savgol_filter(kp[:, OUTER_LIPS], 7, 2, axis=0), atol=1e-4)
    np.testing.assert_allclose(got[:, INNER_LIPS], savgol_filter(kp[:, INNER_LIPS], 5, 2, axis=0), atol=1e-4)
    rest = np.setdiff1d(np.arange(NUM_KEYPOINTS), np.concatenate([OUTER_LIPS, INNER_LIPS]))
    np.testing.assert_allclose(got[:, rest], savgol_filter(kp[:, rest], 11, 2, axis=0), atol=1e-4)


def test_low_confidence_prefix_points_keep_or_dataset_mean():
    from csg_lightning.models.skeleton_codec import SkeletonCodec

    prefix = torch.randn(2, 3, NUM_LOCAL_FEATURES)
    mask = torch.ones(2, 3, 123)
    mask[0, 1, 4] = 0
    assert torch.equal(SkeletonCodec().prefix_points(prefix, mask), prefix)
    release = SkeletonCodec(prefix_low_confidence="mean")
    got = release.prefix_points(prefix, mask)
    assert torch.equal(got[0, 1, 8:10], torch.zeros(2)) and torch.equal(got[0, 1, :8], prefix[0, 1, :8])
    assert torch.equal(got[1], prefix[1])
    kp = torch.rand(NUM_KEYPOINTS, 2) * 512
    scores = torch.ones(NUM_KEYPOINTS)
    scores[SkeletonLayout.LEFT_WRIST] = 0.2  # the left wrist and the whole left hand (its anchor) go to the mean
    ref = release.reference_features(kp, scores).view(123, 2)
    assert torch.equal(ref[81:102], torch.zeros(21, 2)) and torch.equal(ref[9], torch.zeros(2))
    assert (ref[102:] != 0).all()
    assert torch.equal(SkeletonCodec().reference_features(kp, scores), torch.nan_to_num(SkeletonCodec().encode(kp)))
    with pytest.raises(ValueError, match="prefix_low_confidence"):
        SkeletonCodec(prefix_low_confidence="zero")


# ---------------------------------------------------------------- equivalence with THEIR code
SMALL = {"layers": 2, "latent_dim": 64, "ff_size": 128, "num_heads": 4}
W, P, B = 250, 25, 2  # the release's window and prefix (data_loaders/audio_to_2dkp/config.py)


def _release_layout(ours: torch.Tensor) -> torch.Tensor:
    """[B, T, 246] (ours) -> [B, T, 123, 2] points in the release's order."""
    inverse = np.argsort(point_order.feature_permutation())
    return ours[..., inverse].reshape(*ours.shape[:-1], 123, 2)


@pytest.mark.slow  # ~75 s on 2 loaded cores (their sampler re-runs the audio encoder in every forward)
@pytest.mark.skipif(not REFCSG, reason="REFCSG is unset: point it at an extracted MPI-Lab/Democratizing-CSG "
                                       "2d_kp_generation folder (shared/tools/refbench/README.md section 1)")  # fmt: skip
def test_imported_release_matches_their_code(tmp_path, wav2vec2):
    from csg_lightning.checkpoints.safe_load import load_module
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion
    from csg_lightning.release.import_cli import import_release
    from csg_lightning.timing import SAMPLES_PER_FRAME

    if not (Path(REFCSG) / "model" / "mdm.py").is_file():
        pytest.fail(f"REFCSG={REFCSG}: no model/mdm.py there (expected the 2d_kp_generation folder)")
    g = torch.Generator().manual_seed(3)
    x_t = torch.randn(B, W, NUM_LOCAL_FEATURES, generator=g)
    prefix = torch.randn(B, P, NUM_LOCAL_FEATURES, generator=g)
    audio = torch.randn(B, (P + W) * SAMPLES_PER_FRAME, generator=g) * 0.1  # prefix audio (ignored) + window
    timesteps = torch.tensor([0, 1, 37, 99])
    noise_gen = torch.Generator().manual_seed(11)  # drawn as SkeletonPipeline.denoise draws: x_T, then per step
    x_T = torch.randn(B, W, NUM_LOCAL_FEATURES, generator=noise_gen)
    step_noises = [torch.randn(B, W, NUM_LOCAL_FEATURES, generator=noise_gen) for _ in range(99)]

    def theirs(t):  # [B, W, 246] -> [B, 123, 2, W]
        return _release_layout(t).permute(0, 2, 3, 1).contiguous()

    inputs = {"config": SMALL, "seed": 0, "x_t": _release_layout(x_t), "prefix": _release_layout(prefix),
              "window_audio": audio[:, P * SAMPLES_PER_FRAME :], "timesteps": timesteps, "x_T": theirs(x_T),
              "step_noises": torch.stack([theirs(z) for z in step_noises])}  # fmt: skip
    torch.save(inputs, tmp_path / "in.pt")
    env = dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1", PYTHONPATH="")
    run = subprocess.run([sys.executable, str(TESTS / "release_reference.py"), "--refcsg", REFCSG, "--work",
                          str(tmp_path), "--wav2vec2", str(wav2vec2), "--inputs", str(tmp_path / "in.pt")],
                         capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    ref = torch.load(tmp_path / "reference_out.pt", weights_only=True)

    mean, std = write_stats(tmp_path)
    out = import_release(tmp_path / "mdm_state_dict.pt", mean, std, tmp_path / "release.ckpt", wav2vec2,
                         args_json=str(tmp_path / "save" / "args.json"), window=W, prefix=P)  # fmt: skip
    model = load_module(SkeletonDiffusion, out).eval()
    assert torch.equal(model.denoiser.positions, ref["pe"][:, 0])
    betas = torch.as_tensor(ref["betas"], dtype=torch.float32)
    assert torch.equal(model.diffusion.train_scheduler.betas, betas)

    def to_ours(y):  # [.., B, 123, 2, W] -> [.., B, W, 246]
        return y.movedim(-1, -3).flatten(-2)[..., point_order.feature_permutation()]

    with torch.no_grad():
        feats = model.audio_encoder(audio, P + W)
        assert torch.equal(feats[:, :P], torch.zeros_like(feats[:, :P]))
        x = torch.cat([prefix, x_t], dim=1)
        diffs = []
        for i, t in enumerate(timesteps.tolist()):
            tb = torch.full((B,), t)
            for drop, key in ((False, "x0_cond"), (True, "x0_uncond")):
                got = model.denoiser(x, tb, feats, torch.full((B,), drop), P)
                diffs.append((got - to_ours(ref[key][i])).abs().max().item())
        sample = model.pipeline().denoise(prefix, feats, W, 100, generator=torch.Generator().manual_seed(11))
    x0_diff, sample_diff = max(diffs), (sample - to_ours(ref["sample"])).abs().max().item()
    print(f"release equivalence: max |x0 diff| {x0_diff:.3g}, max |100-step CFG sample diff| {sample_diff:.3g}, "
          f"sample max |value| {sample.abs().max().item():.3g}")  # fmt: skip
    assert x0_diff <= 1e-5, diffs
    assert sample_diff <= 1e-4
