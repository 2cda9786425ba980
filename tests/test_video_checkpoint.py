"""SVD parts from a local diffusers folder and MimicMotion-style checkpoints."""

from __future__ import annotations

import pytest
import torch

from csg_lightning.video.mimicmotion_weights import load_mimicmotion_checkpoint
from csg_lightning.video.pose_injection import PoseGuidedUNet
from csg_lightning.video.svd_parts import build_parts, save_parts


def test_parts_round_trip_through_an_svd_folder(tmp_path):
    torch.manual_seed(0)
    parts = build_parts(preset="tiny")
    save_parts(parts, tmp_path / "svd")
    loaded = build_parts(tmp_path / "svd")
    for name in ("unet", "vae", "image_encoder"):
        a, b = getattr(parts, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert loaded.scheduler.config.prediction_type == "v_prediction"
    with pytest.raises(FileNotFoundError, match="lacks the subfolder"):
        build_parts(tmp_path)


def test_mimicmotion_style_state_dict_loads_with_a_report(tmp_path):
    torch.manual_seed(0)
    source = PoseGuidedUNet(build_parts(preset="tiny").unet)
    torch.nn.init.normal_(source.pose_net.final_proj.weight)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}  # a DDP save
    state.pop("module.unet.conv_out.bias")
    state["module.unet.extra_layer.weight"] = torch.zeros(1)
    state["optimizer_thing"] = torch.zeros(1)
    path = tmp_path / "mimicmotion.pth"
    torch.save({"state_dict": state}, path)

    target = PoseGuidedUNet(build_parts(preset="tiny").unet)
    report = load_mimicmotion_checkpoint(target, path)
    assert report.missing == ["unet.conv_out.bias"]
    assert report.unexpected == ["optimizer_thing", "unet.extra_layer.weight"]
    assert report.loaded == len(source.state_dict()) - 1
    assert torch.equal(target.pose_net.final_proj.weight, source.pose_net.final_proj.weight)
    assert "missing 1" in str(report)


def test_shape_mismatch_names_the_key():
    target = PoseGuidedUNet(build_parts(preset="tiny").unet)
    with pytest.raises(ValueError, match="pose_net.final_proj.weight"):
        load_mimicmotion_checkpoint(target, {"pose_net.final_proj.weight": torch.zeros(320, 128, 1, 1)})
