"""Runs the paper's released Stage-1 code (from ``$REFCSG``) on given inputs, in a process of its own.

Used by ``tests/test_release_import.py`` (the release's top-level packages ``model``, ``utils``, ``train``
... must not enter the test process). Contains none of the release's code: it imports it from
``--refcsg`` and leaves every file unmodified. In memory it changes only:

- P1 ``import clip`` (OpenAI CLIP, not installed; unused for ``--cond audio_concat,long_video``): a stub;
- P3 ``model.mdm.Wav2Vec2Model.from_pretrained(...)``: loads ``--wav2vec2`` (a tiny random wav2vec2 the
  test saved) instead of their ``./pretrained_weights/wav2vec2-base-960h``;
- P5 during ``sample_with_cfg`` only, ``torch.randn_like`` returns the per-step noises given in the inputs
  (drawn by the test the way our pipeline draws them, rearranged into their [B, 123, 2, T] layout), so
  both samplers see the same noise. Their last draw (t = 0, multiplied by a zero std) gets zeros.

Steps: THEIR parser (``utils.parser_utils.train_args``) with ``commands/train_sample.sh``'s flags and the
small sizes -> THEIR ``create_model_and_diffusion`` (``MDM`` + ``SpacedDiffusion``, seeded) -> save the
MDM's ``state_dict`` -> THEIR ``collate_with_mask`` builds the batch -> x0 predictions (cond and
learnable-uncond) at the given timesteps -> THEIR ``DiffusionTrainer.sample_with_cfg`` over 99..0.

    python tests/release_reference.py --refcsg $REFCSG --work DIR --wav2vec2 DIR --inputs in.pt
writes DIR/mdm_state_dict.pt, DIR/save/args.json (their Trainer's) and DIR/reference_out.pt.
"""

from __future__ import annotations

import argparse
import os
import sys
import types
from copy import deepcopy
from pathlib import Path


def _patch_imports(wav2vec2: str) -> None:
    import importlib

    try:
        importlib.import_module("clip")
    except ImportError:  # P1
        stub = types.ModuleType("clip")

        def _unavailable(*a, **k):
            raise RuntimeError("OpenAI CLIP is stubbed (text conditions are not used)")

        stub.load = stub.tokenize = _unavailable
        stub.model = types.SimpleNamespace(convert_weights=_unavailable)
        sys.modules["clip"] = stub
    import model.mdm as mdm  # noqa: E402  (their module, after P1)
    import transformers

    class _Loader:  # P3
        @staticmethod
        def from_pretrained(path, *a, **k):
            return transformers.Wav2Vec2Model.from_pretrained(wav2vec2)

    mdm.Wav2Vec2Model = _Loader


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--refcsg", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--wav2vec2", required=True)
    ap.add_argument("--inputs", required=True)
    a = ap.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    sys.path.insert(0, a.refcsg)
    import numpy as np
    import torch

    torch.set_num_threads(1)
    inputs = torch.load(a.inputs, weights_only=True)
    _patch_imports(a.wav2vec2)
    from data_loaders.audio_to_2dkp.dataset import collate_with_mask
    from train import test_saved_ckpt
    from train.train_platforms import NoPlatform
    from transformers import Wav2Vec2FeatureExtractor
    from utils import dist_utils
    from utils.model_utils import create_model_and_diffusion
    from utils.parser_utils import train_args

    cfg = inputs["config"]
    work = Path(a.work)
    argv = ["train_mdm", "--save_dir", str(work / "save"), "--dataset_config",
            "data_loaders.audio_to_2dkp.config.train_from_3000000_steps", "--cond", "audio_concat,long_video",
            "--arch", "trans_enc", "--emb_trans_dec", "True", "--train_platform_type", "NoPlatform",
            "--diffusion_steps", "100", "--cond_mask_prob", "0.1", "--lr", "5e-5", "--train_batch_size", "2",
            "--layers", str(cfg["layers"]), "--num_heads", str(cfg["num_heads"]),
            "--latent_dim", str(cfg["latent_dim"]), "--ff_size", str(cfg["ff_size"]), "--device", "0",
            "--loss_weight", "mean", "--overwrite_model"]  # fmt: skip
    sys.argv = argv
    args, _ = train_args()
    dist_utils.setup_dist(args.device, False)
    torch.manual_seed(int(inputs["seed"]))
    model, diffusion = create_model_and_diffusion(args)
    with torch.no_grad():  # perturb every weight, so that biases torch starts at zero are checked too
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    torch.save(model.state_dict(), work / "mdm_state_dict.pt")
    trainer = test_saved_ckpt.DiffusionTrainer(diffusion, args, model, None, None, NoPlatform(None))

    # THEIR batch: items as Audio_to_2dkp_Dataset.__getitem__ returns them, through THEIR collate_with_mask.
    processor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True)
    x_t, prefix, wave = inputs["x_t"], inputs["prefix"], inputs["window_audio"]  # [B,W,123,2], [B,P,123,2], [B,N]
    b, w = x_t.shape[:2]
    items = []
    for i in range(b):
        values = np.squeeze(processor(wave[i].numpy(), sampling_rate=16000).input_values)
        cond = {"audio": torch.as_tensor(values), "audio_attention": torch.ones(len(values)),
                "initial_frames": prefix[i].numpy(), "initial_frames_ref": prefix[i].numpy(),
                "start_frame": prefix.shape[1], "start_frame_initial": 0, "start_frame_initial_ref": 0}  # fmt: skip
        fp = {"audio": f"/none/{i}.wav", "video": f"/none/{i}.mp4"}
        items.append((f"s{i}", f"s{i}", fp, fp, x_t[i].numpy(), np.ones((w, x_t.shape[2]), bool), w, cond))
    motion, cond = collate_with_mask(items)  # motion = x_t in their layout [B, 123, 2, W]
    uncond = deepcopy(cond)
    uncond["y"]["use_learnable_uncond"] = True
    model.eval()
    out = {"x0_cond": [], "x0_uncond": [], "pe": model.sequence_pos_encoder.pe.clone()}
    with torch.no_grad():
        for t in inputs["timesteps"].tolist():
            tb = torch.full((b,), int(t), dtype=torch.long)
            out["x0_cond"].append(model(motion.float(), tb, **cond))
            out["x0_uncond"].append(model(motion.float(), tb, **uncond))
        noises = list(inputs["step_noises"])  # their layout, one per step with t > 0
        used = []
        real_randn_like = torch.randn_like

        def given_noise(x, *args, **kwargs):  # P5
            if noises:
                used.append(1)
                return noises.pop(0).to(x.dtype)
            return torch.zeros_like(x)

        torch.randn_like = given_noise
        try:
            steps = list(range(trainer.num_timesteps - 1, -1, -1))
            sample, _ = trainer.sample_with_cfg(inputs["x_T"], steps, cond, 3.5)
        finally:
            torch.randn_like = real_randn_like
    assert len(used) == trainer.num_timesteps - 1, f"{len(used)} noises drawn"
    out["x0_cond"], out["x0_uncond"] = torch.stack(out["x0_cond"]), torch.stack(out["x0_uncond"])
    out["sample"] = sample
    out["betas"] = torch.as_tensor(diffusion.betas)
    out["posterior_variance"] = torch.as_tensor(diffusion.posterior_variance)
    torch.save(out, work / "reference_out.pt")


if __name__ == "__main__":
    main()
