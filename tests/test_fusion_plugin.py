"""Adding a fusion type is one new class plus one YAML fragment, with no edit elsewhere (issue 12).

``GatedSumFusion`` below is that class (defined here, in the test, on purpose: nothing in the package
knows it); the fragment is written next to the run. The demo recipe trains one step with it through
`csg fit`, and the checkpoint alone rebuilds the model with this fusion and generates.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from csg_lightning.models.fusion import AudioFusion

ROOT = Path(__file__).resolve().parents[1]
TINY_DENOISER = ROOT / "experiments" / "components" / "skeleton" / "denoiser" / "tiny.yaml"


class GatedSumFusion(AudioFusion):
    """pose + tanh(gate) * audio per frame (a trivial third fusion)."""

    def __init__(self, width: int, num_heads: int, dropout: float = 0.0, init_gate: float = 0.5) -> None:
        super().__init__(width, num_heads, dropout)
        self.gate = nn.Parameter(torch.full((width,), float(init_gate)))

    def fuse_input(self, pose: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return pose + torch.tanh(self.gate) * audio


def test_a_new_fusion_is_one_class_and_one_fragment(demo_shards, tmp_path, monkeypatch):
    from csg_lightning.cli import run
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    fragment = tmp_path / "gated_sum.yaml"
    fragment.write_text(f"class_path: {__name__}.GatedSumFusion\ninit_args:\n  init_gate: 0.25\n")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run(["fit", f"--config={ROOT / 'experiments' / 'skeleton' / 'demo.yaml'}",
         f"--model.init_args.denoiser={TINY_DENOISER}",
         f"--model.init_args.denoiser.init_args.fusion={fragment}",
         f"--data.init_args.data_dir={demo_shards}", "--data.init_args.batch_size=2",
         "--data.init_args.num_workers=0", "--data.init_args.window=50", "--data.init_args.num_prefix=10",
         "--model.init_args.crossfade_frames=5", "--trainer.accelerator=cpu", "--trainer.devices=1",
         "--trainer.max_steps=1", "--trainer.max_time=null", "--trainer.val_check_interval=null",
         "--trainer.limit_val_batches=0", f"--runs_root={tmp_path / 'runs'}",
         "--run=plugin"])  # fmt: skip
    (ckpt,) = sorted((tmp_path / "runs").glob("*/plugin/checkpoints/last.ckpt"))
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    fusion = checkpoint["hyper_parameters"]["denoiser"]["init_args"]["fusion"]
    assert fusion["class_path"].endswith("GatedSumFusion") and fusion["init_args"]["init_gate"] == 0.25
    assert "denoiser.fusion.gate" in checkpoint["state_dict"]
    assert not torch.equal(checkpoint["ema_state"]["current"]["denoiser.fusion.gate"], torch.full((32,), 0.25))

    model = SkeletonDiffusion.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    assert type(model.denoiser.fusion).__name__ == "GatedSumFusion"
    keypoints, scores = model.pipeline()(np.zeros(16000, np.float32), seed=0, num_steps=2)
    assert keypoints.shape == (25, 134, 2) and np.isfinite(keypoints[:, :13]).all()
    assert os.environ.get("WANDB_MODE") == "disabled"
