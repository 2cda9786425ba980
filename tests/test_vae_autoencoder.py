"""The demo VAE: experiments/video/vae_demo.yaml trains through the real `csg` CLI, ``fitted_vae`` rebuilds the
VAE from its checkpoint (safe load, latent scale folded into the weights without changing a reconstruction),
bad checkpoints are named, and experiments/video/demo_person.yaml trains Stage 2 on the fitted VAE (in
tests/test_video_experiments.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from csg_lightning.checkpoints.safe_load import CheckpointError
from csg_lightning.cli import run
from csg_lightning.video.fitted_vae import fitted_vae, fold_latent_scale
from csg_lightning.video.svd_parts import TINY_VAE, svd_vae
from csg_lightning.video.vae_autoencoder import VAEAutoencoder, edge_l1, psnr

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT / "experiments" / "video"
VAE_RECIPE = VIDEO / "vae_demo.yaml"
SMALL = [
    "--data.init_args.batch_size=1", "--data.init_args.num_workers=0", "--data.init_args.num_frames=2",
    "--data.init_args.height=32", "--data.init_args.width=32", "--trainer.accelerator=cpu", "--trainer.devices=1",
    "--trainer.max_steps=1", "--trainer.max_epochs=1", "--trainer.val_check_interval=1",
    "--trainer.limit_val_batches=1", "--trainer.enable_model_summary=false", "--run=test",
]  # fmt: skip
RENDER_FEW = ["--data.init_args.num_speakers=3", "--data.init_args.clip_seconds=1.0"]  # seconds, not 150 speakers


@pytest.fixture(scope="module")
def vae_run(demo_shards_video, tmp_path_factory) -> Path:
    """vae_demo.yaml for 1 step through `csg fit` -> the run folder."""
    runs = tmp_path_factory.mktemp("vae_runs")
    cli = run(["fit", f"--config={VAE_RECIPE}", f"--data.init_args.data_dir={demo_shards_video}",
               *SMALL, *RENDER_FEW, f"--runs_root={runs}"])  # fmt: skip
    assert cli.trainer.global_step == 1 and torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    assert isinstance(cli.model, VAEAutoencoder) and int(cli.model.stats_seen) == 1
    return runs / "vae-demo" / "test"


def test_vae_demo_yaml_trains_and_writes_checkpoint_config_and_sheet(vae_run):
    assert (vae_run / "checkpoints" / "last.ckpt").is_file()
    assert (vae_run.parent / "latest").resolve() == vae_run.resolve()
    saved = yaml.safe_load((vae_run / "config.yaml").read_text())
    assert saved["experiment"] == "vae-demo" and saved["model"]["init_args"]["vae"]["class_path"].endswith("DemoVAE")
    sheets = sorted((vae_run / "samples").glob("vae_step*.png"))
    assert sheets, "validation wrote no real | reconstruction sheet"
    import cv2

    sheet = cv2.imread(str(sheets[-1]))
    assert sheet.shape[0] == 2 * 32 and sheet.shape[1] % 32 == 0  # real row over reconstruction row


def test_fitted_vae_folds_the_latent_scale_and_keeps_reconstructions(vae_run):
    ckpt = vae_run / "checkpoints" / "last.ckpt"
    module = VAEAutoencoder.load_from_checkpoint(ckpt, weights_only=True)
    raw = module.vae.eval()
    vae = fitted_vae(ckpt)
    assert not any(p.requires_grad for p in vae.parameters()) and not vae.training
    torch.manual_seed(0)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        z_raw, z = raw.encode(x).latent_dist.mode(), vae.encode(x).latent_dist.mode()
        a = 1.0 / (vae.config.scaling_factor * module.latent_std)
        torch.testing.assert_close(z, z_raw * a.view(1, -1, 1, 1), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(vae.decode(z, num_frames=3).sample, raw.decode(z_raw, num_frames=3).sample,
                                   rtol=1e-4, atol=1e-4)  # fmt: skip
        var_raw, var = raw.encode(x).latent_dist.var, vae.encode(x).latent_dist.var
        torch.testing.assert_close(var, var_raw * a.view(1, -1, 1, 1) ** 2, rtol=1e-3, atol=1e-8)


def test_fold_latent_scale_gives_unit_spread():
    torch.manual_seed(0)
    vae = svd_vae(dict(TINY_VAE)).eval()
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        std = vae.encode(x).latent_dist.mode().std(dim=(0, 2, 3))
        fold_latent_scale(vae, std)
        z = vae.encode(x).latent_dist.mode() * vae.config.scaling_factor
    torch.testing.assert_close(z.std(dim=(0, 2, 3)), torch.ones(4), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="positive finite"):
        fold_latent_scale(vae, torch.tensor([1.0, 0.0, 1.0, 1.0]))


def test_fitted_vae_names_a_missing_or_foreign_checkpoint(tmp_path, tiny_stage1_checkpoint):
    with pytest.raises(FileNotFoundError, match=r"nothere\.ckpt.*vae_demo\.yaml"):
        fitted_vae(tmp_path / "nothere.ckpt")
    with pytest.raises(CheckpointError, match="not a checkpoint of VAEAutoencoder"):
        fitted_vae(tiny_stage1_checkpoint)


def test_losses_and_bad_weights():
    x = torch.zeros(1, 3, 8, 8)
    assert float(psnr(x, x)) == pytest.approx(100.0)  # clamped mse 1e-10
    assert float(psnr(x + 0.2, x)) == pytest.approx(20.0, abs=1e-4)  # error 0.1 of the [0, 1] range
    ramp = torch.linspace(-1, 1, 8).expand(1, 3, 8, 8)
    assert float(edge_l1(ramp, ramp)) == 0.0 and float(edge_l1(ramp, x)) > 0
    with pytest.raises(ValueError, match="kl_weight must be >= 0"):
        VAEAutoencoder(svd_vae(dict(TINY_VAE)), kl_weight=-1.0)
