"""PoseNet, pose injection, EDM preconditioning and gradient checkpointing of the video generator."""

from __future__ import annotations

import math

import pytest
import torch

from csg_lightning.video.edm import denoise, edm_loss_weight, edm_scalings, sample_sigmas
from csg_lightning.video.gradient_checkpointing import enable_checkpointing, temporal_blocks
from csg_lightning.video.pose_injection import PoseGuidedUNet
from csg_lightning.video.pose_net import PoseNet
from csg_lightning.video.svd_parts import build_parts


def _unet_inputs(b=2, f=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, f, 8, 8, 8, generator=g),
        torch.tensor([0.1, -0.3])[:b],
        torch.randn(b, 1, 32, generator=g),
        torch.tensor([[6.0, 127.0, 0.0]] * b),
    )


def test_pose_net_shapes_params_and_init():
    net = PoseNet(320)
    assert 0.19e6 < sum(p.numel() for p in net.parameters()) < 0.22e6  # ~0.2M for SVD's 320 channels
    out = net(torch.randn(2, 3, 576 // 4, 1024 // 4))
    assert out.shape == (2, 320, 18, 32)
    assert torch.count_nonzero(out) == 0  # zero-initialised final projection
    assert net.scale.detach().tolist() == [2.0]
    for conv in [m for m in net.conv_layers if isinstance(m, torch.nn.Conv2d)]:
        fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        assert torch.count_nonzero(conv.bias) == 0
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.35)
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.randn(1, 3, 60, 64))
    scratch = PoseNet(320, zero_init=False)  # for a UNet trained from scratch: the projection He-normal too
    assert torch.count_nonzero(scratch.final_proj.bias) == 0
    assert scratch.final_proj.weight.std().item() == pytest.approx(math.sqrt(2 / 128), rel=0.1)
    assert torch.count_nonzero(scratch(torch.randn(1, 3, 64, 64))) > 0


def test_untrained_pose_net_leaves_the_unet_unchanged_and_trained_one_changes_it():
    torch.manual_seed(0)
    unet = build_parts(preset="tiny").unet.eval()
    net = PoseGuidedUNet(unet).eval()
    sample, t, clip, ids = _unet_inputs()
    poses = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        plain = unet(sample, t, clip, ids).sample
        posed = net(sample, t, clip, ids, pose_images=poses)
        assert torch.equal(plain, posed)
        torch.nn.init.normal_(net.pose_net.final_proj.weight, std=0.1)
        changed = net(sample, t, clip, ids, pose_images=poses)
        assert not torch.allclose(plain, changed)
        # the hook is only active inside PoseGuidedUNet.forward
        assert torch.equal(unet(sample, t, clip, ids).sample, plain)
    assert set(k.split(".")[0] for k in net.state_dict()) == {"unet", "pose_net"}


def test_reference_pose_net_reads_each_frame_against_frame_0():
    """reference_pose=True: frame f's features are PoseNet(pose_f ++ pose_0), so they change with frame 0's
    pose image (plain PoseNet: they do not), and frame 0 reads its own pose twice."""
    torch.manual_seed(0)
    net = PoseGuidedUNet(build_parts(preset="tiny").unet, PoseNet(32, reference_pose=True))
    torch.nn.init.normal_(net.pose_net.final_proj.weight, std=0.1)
    assert net.pose_net.conv_layers[0].in_channels == 6
    poses = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        features = net.encode_pose(poses).unflatten(0, (2, 3))
        for f in range(3):
            stacked = torch.cat([poses[:, f], poses[:, 0]], dim=1)
            torch.testing.assert_close(features[:, f], net.pose_net(stacked))
        other_ref = poses.clone()
        other_ref[:, 0] = torch.rand(2, 3, 64, 64) * 2 - 1
        moved = net.encode_pose(other_ref).unflatten(0, (2, 3))
        assert not torch.allclose(moved[:, 1:], features[:, 1:])  # frames 1, 2 read the new reference
    plain = PoseGuidedUNet(build_parts(preset="tiny").unet)
    torch.nn.init.normal_(plain.pose_net.final_proj.weight, std=0.1)
    with torch.no_grad():
        a, b = plain.encode_pose(poses).unflatten(0, (2, 3)), plain.encode_pose(other_ref).unflatten(0, (2, 3))
    torch.testing.assert_close(a[:, 1:], b[:, 1:])
    with pytest.raises(ValueError, match=r"pose \+\+ reference pose images \[N, 6"):
        net.pose_net(torch.zeros(1, 3, 64, 64))


def test_pose_features_must_match_conv_in():
    net = PoseGuidedUNet(build_parts(preset="tiny").unet)
    sample, t, clip, ids = _unet_inputs()
    with pytest.raises(ValueError, match="do not match conv_in"):
        net(sample, t, clip, ids, pose_images=torch.zeros(2, 3, 3, 32, 32))


def test_edm_preconditioning_against_hand_computed_values():
    sigma = torch.tensor([1.0, 2.0, 0.5])
    c_in, c_skip, c_out, c_noise = edm_scalings(sigma)
    # sigma = 1: 1/sqrt(2), 1/2, -1/sqrt(2), 0;  sigma = 2: 1/sqrt(5), 1/5, -2/sqrt(5), 0.25 ln 2
    assert torch.allclose(c_in, torch.tensor([1 / math.sqrt(2), 1 / math.sqrt(5), 1 / math.sqrt(1.25)]))
    assert torch.allclose(c_skip, torch.tensor([0.5, 0.2, 0.8]))
    assert torch.allclose(c_out, torch.tensor([-1 / math.sqrt(2), -2 / math.sqrt(5), -0.5 / math.sqrt(1.25)]))
    assert torch.allclose(c_noise, torch.tensor([0.0, 0.25 * math.log(2), 0.25 * math.log(0.5)]))
    assert torch.allclose(edm_loss_weight(sigma), torch.tensor([2.0, 1.25, 5.0]))
    # the v-target makes D exact: F = (c_skip x_sigma - x0) / -c_out  => D == x0
    x0, eps = torch.randn(3, 4), torch.randn(3, 4)
    x_sigma = x0 + sigma[:, None] * eps
    v = (c_skip[:, None] * x_sigma - x0) / (-c_out[:, None])
    assert torch.allclose(denoise(v, x_sigma, sigma), x0, atol=1e-5)


def test_edm_matches_the_euler_scheduler_used_for_sampling():
    parts = build_parts(preset="tiny")
    sched = parts.scheduler
    sched.set_timesteps(5)
    t = sched.timesteps[1]
    sigma = sched.sigmas[1]
    c_in, c_skip, c_out, c_noise = edm_scalings(sigma.reshape(1))
    assert float(t) == pytest.approx(float(c_noise), abs=1e-4)  # continuous timestep = 0.25 ln sigma
    x = torch.randn(1, 4)
    assert torch.allclose(sched.scale_model_input(x, t), c_in * x, atol=1e-6)


def test_sigma_sampling_is_log_normal():
    s = sample_sigmas(20000, 0.7, 1.6, generator=torch.Generator().manual_seed(0))
    assert s.log().mean().item() == pytest.approx(0.7, abs=0.05)
    assert s.log().std().item() == pytest.approx(1.6, abs=0.05)


def test_checkpointing_includes_temporal_blocks_and_keeps_gradients():
    torch.manual_seed(0)
    base = build_parts(preset="tiny").unet
    ref = PoseGuidedUNet(base)
    torch.nn.init.normal_(ref.pose_net.final_proj.weight, std=0.1)
    keys = set(ref.state_dict())
    ckpt = PoseGuidedUNet(build_parts(preset="tiny").unet)
    ckpt.load_state_dict(ref.state_dict())
    assert enable_checkpointing(ckpt.unet) == len(temporal_blocks(ckpt.unet)) > 0
    assert set(ckpt.state_dict()) == keys  # names unchanged
    sample, t, clip, ids = _unet_inputs()
    poses = torch.rand(2, 3, 3, 64, 64)
    ref.train(), ckpt.train()
    grads = []
    for net in (ref, ckpt):
        net.zero_grad()
        net(sample, t, clip, ids, pose_images=poses).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_pose_net_learning_rate_scale_gives_posenet_its_own_groups():
    """pose_net_lr_scale: PoseNet's parameters train at scale x the learning rate (the schedule keeps the
    ratio); every trainable parameter is in exactly one group, biases and norms without weight decay."""
    import lightning

    from csg_lightning.video.video_generator import VideoGenerator

    optimizer = {"class_path": "torch.optim.AdamW", "init_args": {"lr": 1.0e-3, "weight_decay": 0.01}}
    for scale in (1.0, 5.0):
        model = VideoGenerator.from_preset("tiny", image_height=64, image_width=64, optimizer=optimizer,
                                           pose_net_lr_scale=scale)  # fmt: skip
        model.trainer = lightning.Trainer(max_steps=10, max_epochs=-1, accelerator="cpu", logger=False,
                                          enable_checkpointing=False)  # max_epochs -1: no dataloader needed
        config = model.configure_optimizers()
        opt, sched = config["optimizer"], config["lr_scheduler"]["scheduler"]
        pose = {id(p) for p in model.net.pose_net.parameters()}
        seen = [id(p) for g in opt.param_groups for p in g["params"]]
        assert sorted(seen) == sorted(id(p) for p in model.net.parameters() if p.requires_grad)
        for group, base in zip(opt.param_groups, sched.base_lrs, strict=True):
            in_pose = {id(p) in pose for p in group["params"]}
            assert len(in_pose) == 1 or scale == 1.0  # a group is PoseNet's or not (scale 1: one set of groups)
            expected = 1.0e-3 * (scale if in_pose == {True} and scale != 1.0 else 1.0)
            assert base == pytest.approx(expected)
            assert group["weight_decay"] == (0.0 if all(p.dim() < 2 for p in group["params"]) else 0.01)
        assert len(opt.param_groups) == (2 if scale == 1.0 else 4)


def test_pose_net_on_a_finer_latent_grid():
    """downsample 4 / 2 (a VAE at 1/4 or 1/2 size): the last stride-2 convolutions become 3x3 stride-1 ones; the
    parameter names stay MimicMotion's and 8 keeps its exact layers."""
    x = torch.randn(2, 6, 64, 64)
    shapes = {}
    for d in (8, 4, 2):
        net = PoseNet(32, reference_pose=True, zero_init=False, downsample=d)
        assert net(x).shape == (2, 32, 64 // d, 64 // d)
        strides = [m.stride[0] for m in net.conv_layers if isinstance(m, torch.nn.Conv2d)]
        assert strides.count(2) == {8: 3, 4: 2, 2: 1}[d] and strides.count(1) == 8 - strides.count(2)
        shapes[d] = {k: v.shape for k, v in net.state_dict().items()}
    assert shapes[8].keys() == shapes[4].keys() == shapes[2].keys()
    assert shapes[8]["conv_layers.10.weight"] == (64, 32, 4, 4) and shapes[4]["conv_layers.10.weight"] == (64, 32, 3, 3)
    with pytest.raises(ValueError, match="divisible by 4"):
        PoseNet(32, downsample=4)(torch.randn(1, 3, 62, 64))
    with pytest.raises(ValueError, match="downsample must be 2, 4 or 8"):
        PoseNet(32, downsample=16)
