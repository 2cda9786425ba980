"""Both video experiment YAMLs parse and train a step through the real `csg` CLI (`csg_lightning.cli.run`) (tiny overrides).

The MimicMotion recipe is pointed at tiny parts saved as a diffusers SVD folder (unet/, vae/,
image_encoder/, scheduler/), so its real from_pretrained loading runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from csg_lightning.cli import run
from csg_lightning.video.svd_parts import build_parts, save_parts

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT / "experiments" / "video"


def _overrides(shards: Path, runs: Path) -> list[str]:
    return [
        f"--data.init_args.data_dir={shards}",
        "--data.init_args.batch_size=1",
        "--data.init_args.num_workers=0",
        "--data.init_args.num_frames=2",
        "--data.init_args.height=32",
        "--data.init_args.width=32",
        "--model.init_args.num_inference_steps=2",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.max_steps=1",
        "--trainer.max_epochs=1",
        "--trainer.val_check_interval=1",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_model_summary=false",
        f"--runs_root={runs}",
        "--run=test",
    ]


def _fit(config: Path, extra: list[str], shards: Path, runs: Path):
    cli = run(["fit", f"--config={config}"] + _overrides(shards, runs) + extra)
    experiment = yaml.safe_load(config.read_text())["experiment"]
    run_dir = runs / experiment / "test"
    assert Path(cli.trainer.default_root_dir) == run_dir and cli.trainer.global_step == 1
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert list((run_dir / "samples").glob("*.mp4")), "the sample callback wrote no video"
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    return cli, run_dir


def test_demo_yaml_trains_a_step(demo_shards_video, tmp_path):
    tiny = [f"--config={COMPONENTS / 'parts_tiny.yaml'}"]  # no fitted VAE here (tests/test_vae_autoencoder.py)
    cli, run_dir = _fit(VIDEO / "demo.yaml", tiny, demo_shards_video, tmp_path)
    from csg_lightning.video.video_generator import VideoGenerator

    loaded = VideoGenerator.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert (loaded.hparams.image_height, loaded.hparams.image_width) == (32, 32)


@pytest.fixture(scope="module")
def tiny_svd_folder(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_parts(build_parts(preset="tiny"), tmp_path_factory.mktemp("svd") / "svd-xt")


def test_mimicmotion_yaml_trains_a_step_with_tiny_parts(
    demo_shards_video, tmp_path, tiny_svd_folder, monkeypatch
):
    monkeypatch.setenv(
        "CSG_SVD", str(tiny_svd_folder)
    )  # the parts' class_path entries read ${oc.env:CSG_SVD}
    extra = [
        "--trainer.strategy=auto",
        "--trainer.precision=32-true",
        "--model.init_args.frozen_dtype=float32",
        "--model.init_args.tile_size=2",
        "--model.init_args.tile_overlap=1",  # MimicMotion meaning: frame 0 shared
    ]
    cli, run_dir = _fit(VIDEO / "mimicmotion.yaml", extra, demo_shards_video, tmp_path)
    model = cli.model
    assert model.hparams.gradient_checkpointing and model.net.unet.is_gradient_checkpointing
    assert not any(p.requires_grad for p in model.vae.parameters())
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)[
        "state_dict"
    ]
    assert not any(k.startswith(("vae.", "image_encoder.")) for k in state)  # rebuilt from the SVD folder
    assert any(k.startswith("net.pose_net.") for k in state)
    from csg_lightning.video.video_generator import VideoGenerator

    loaded = VideoGenerator.load_from_checkpoint(
        run_dir / "checkpoints" / "last.ckpt"
    )  # the checkpoint alone
    assert loaded.hparams.unet["class_path"].endswith("pretrained_unet")
    assert torch.equal(
        loaded.vae.encoder.conv_in.weight.float(), model.vae.encoder.conv_in.weight.float().cpu()
    )


COMPONENTS = Path(__file__).resolve().parents[1] / "experiments" / "components" / "video"


@pytest.mark.parametrize(
    "recipe, parts", [("demo.yaml", "parts_tiny.yaml"), ("mimicmotion.yaml", "parts_svd_xt.yaml")]
)
def test_recipe_parts_are_the_component_fragments(recipe, parts):
    """Each recipe's parts are one fragment of experiments/components/video/: stacked as a layer, or the same
    entries in its model block (no drift)."""
    config = yaml.safe_load((VIDEO / recipe).read_text())
    model = config["model"]["init_args"]
    fragment = yaml.safe_load((COMPONENTS / parts).read_text())["model"]["init_args"]
    if f"../components/video/{parts}" in config.get("layers", []):
        assert not set(fragment) & set(model), "the recipe repeats entries of its parts layer"
    else:  # demo.yaml's vae is the fitted one (experiments/video/vae_demo.yaml), the other parts the fragment's
        fitted = {"vae"} if recipe == "demo.yaml" else set()
        assert {k: model.get(k) for k in fragment if k not in fitted} == {k: v for k, v in fragment.items() if k not in fitted}


def _class_paths(node):
    if isinstance(node, dict):
        if "class_path" in node:
            yield node["class_path"]
        for value in node.values():
            yield from _class_paths(value)


@pytest.mark.parametrize("fragment", sorted(p.name for p in COMPONENTS.glob("*.yaml")))
def test_every_video_fragment_stacks_on_the_demo_recipe(fragment, tmp_path):
    """Every fragment is a model overlay whose class paths import; the small ones build the model on top
    of the demo recipe (SVD-sized parts would take GBs: their entries are only resolved)."""
    import importlib

    config = yaml.safe_load((COMPONENTS / fragment).read_text())
    assert set(config) == {"model"} and set(config["model"]) == {"class_path", "init_args"}, fragment
    for path in _class_paths(config):
        module, name = path.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), path
    if "svd_xt" in fragment or "fitted" in fragment:  # SVD-sized, or needs a fitted VAE (tests/test_vae_autoencoder.py)
        return
    from csg_lightning.cli import CSGCLI

    cli = CSGCLI(
        parser_kwargs={"parser_mode": "omegaconf"}, subclass_mode_model=True, subclass_mode_data=True, run=False,
        args=[f"--config={VIDEO / 'demo.yaml'}", f"--config={COMPONENTS / 'parts_tiny.yaml'}",  # no fitted VAE here
              f"--config={COMPONENTS / fragment}", f"--runs_root={tmp_path}",
              "--run=test", "--trainer.logger=false"],
    )  # fmt: skip
    assert cli.model.guider is not None and cli.model.loss is not None


@pytest.fixture(scope="module")
def fitted_vae_checkpoint(demo_shards_video, tmp_path_factory) -> Path:
    """experiments/video/vae_demo.yaml for one step (3 rendered speakers) -> its last.ckpt."""
    runs = tmp_path_factory.mktemp("vae_runs")
    run(["fit", f"--config={VIDEO / 'vae_demo.yaml'}"] + _overrides(demo_shards_video, runs)[:6]
        + ["--data.init_args.num_speakers=3", "--data.init_args.clip_seconds=1.0", "--trainer.max_steps=1",
           "--trainer.max_epochs=1", "--trainer.val_check_interval=1", "--trainer.limit_val_batches=1",
           "--trainer.enable_model_summary=false", f"--runs_root={runs}", "--run=test"])  # fmt: skip
    return runs / "vae-demo" / "test" / "checkpoints" / "last.ckpt"


def test_demo_person_yaml_trains_on_the_fitted_vae(fitted_vae_checkpoint, demo_shards_video, tmp_path):
    """experiments/video/demo_person.yaml (`make train-video`): demo.yaml + the fitted VAE + the 16-channel UNet,
    reference frame first, trained on rendered speakers (2 short ones here), validated on the shards. It trains a
    step, its latents come from the fitted weights and the checkpoint rebuilds that VAE and samples its channel
    count."""
    from csg_lightning.data.rendered_pose_video import RenderedPoseVideoDataModule
    from csg_lightning.video.fitted_vae import fitted_vae
    from csg_lightning.video.video_generator import VideoGenerator

    fitted = COMPONENTS / "vae_fitted_demo.yaml"
    vae_recipe = yaml.safe_load((VIDEO / "vae_demo.yaml").read_text())
    channels = vae_recipe["model"]["init_args"]["vae"]["init_args"]["latent_channels"]
    unet = yaml.safe_load(fitted.read_text())["model"]["init_args"]["unet"]["init_args"]["config"]
    assert (unet["in_channels"], unet["out_channels"]) == (2 * channels, channels)
    cli, run_dir = _fit(VIDEO / "demo_person.yaml", [f"--model.init_args.vae.init_args.checkpoint={fitted_vae_checkpoint}",
                        "--data.init_args.num_speakers=2", "--data.init_args.clip_seconds=1.0"],
                        demo_shards_video, tmp_path)  # fmt: skip
    dm = cli.datamodule
    assert isinstance(dm, RenderedPoseVideoDataModule) and dm.reference_first
    assert dm.examples.speaker_ids == ["spk100", "spk101"] and dm.num_speakers == 2
    expected = fitted_vae(fitted_vae_checkpoint)
    torch.testing.assert_close(cli.model.vae.quant_conv.weight, expected.quant_conv.weight)
    loaded = VideoGenerator.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    torch.testing.assert_close(loaded.vae.decoder.conv_in.weight, expected.decoder.conv_in.weight)
    reference, poses = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 3, 32, 32) * 2 - 1
    latents = loaded.eval().sample_latents(reference, poses, num_steps=1, tile_size=None)
    assert latents.shape == (1, 3, channels, 4, 4) and torch.isfinite(latents).all()
    assert loaded.decode(latents).shape == (1, 3, 32, 32, 3)


def test_the_latent16_overlays_train_the_vae_and_stage_2_on_a_16x16_grid(demo_shards_video, tmp_path):
    """overlays/vae_latent16.yaml on vae_demo.yaml fits a 1/4-size VAE (runs/vae-demo+vae_latent16/); overlays/
    latent16.yaml on demo_person.yaml trains Stage 2 on it with PoseNet and the hand masks on its grid."""
    from csg_lightning.video.video_generator import VideoGenerator

    run(["fit", f"--config={VIDEO / 'vae_demo.yaml'}", f"--config={VIDEO / 'overlays' / 'vae_latent16.yaml'}"]
        + _overrides(demo_shards_video, tmp_path)[:6]
        + ["--data.init_args.num_speakers=2", "--data.init_args.clip_seconds=1.0", "--trainer.max_steps=1",
           "--trainer.max_epochs=1", "--trainer.limit_val_batches=0", "--trainer.enable_model_summary=false",
           f"--runs_root={tmp_path}", "--run=test"])  # fmt: skip
    vae_ckpt = tmp_path / "vae-demo+vae_latent16" / "test" / "checkpoints" / "last.ckpt"
    assert vae_ckpt.is_file()
    overlay = VIDEO / 'overlays' / 'latent16.yaml'
    cli = run(["fit", f"--config={VIDEO / 'demo_person.yaml'}", f"--config={overlay}"]
              + _overrides(demo_shards_video, tmp_path)
              + [f"--model.init_args.vae.init_args.checkpoint={vae_ckpt}", "--data.init_args.num_speakers=2",
                 "--data.init_args.clip_seconds=1.0"])  # fmt: skip
    assert cli.trainer.global_step == 1 and torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    assert cli.model.latent_downsample == 4 and cli.model.net.pose_net.downsample == 4
    assert cli.datamodule.latent_downsample == 4
    run_dir = tmp_path / "video-demo+latent16" / "test"
    loaded = VideoGenerator.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    latents = loaded.eval().sample_latents(torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 2, 3, 32, 32) * 2 - 1,
                                           num_steps=1, tile_size=None)  # fmt: skip
    assert latents.shape == (1, 2, 16, 8, 8) and loaded.decode(latents).shape == (1, 2, 32, 32, 3)
