"""motion_mask: 1 on and near where frame t's skeleton differs from the reference's, 0 elsewhere; render applies it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from csg_lightning.video.motion_mask import motion_mask


def _poses() -> torch.Tensor:
    """[1, 3, 3, 64, 64] in [-1, 1]: the reference with a limb at x=10 and one that stays at x=50; frame 1
    with the first limb moved to x=40; frame 2 the same as the reference."""
    poses = torch.full((1, 3, 3, 64, 64), -1.0)
    poses[0, :, 2, 10:30, 50] = 1.0  # the limb that never moves
    poses[0, 0, 1, 20:40, 10] = 0.5  # one channel of one colour is enough to count
    poses[0, 1, :, 20:40, 40] = 1.0
    poses[0, 2] = poses[0, 0]
    return poses


def test_mask_covers_where_the_skeleton_moved_and_nothing_else():
    mask = motion_mask(_poses(), radius=2.0)
    assert mask.shape == (1, 2, 1, 64, 64) and mask.dtype == torch.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    m1, m2 = mask[0, 0, 0], mask[0, 1, 0]
    assert m1[30, 10] > 0.9 and m1[30, 40] > 0.9  # where the limb leaves and where it arrives
    assert m1[30, 25] == 0 and m1[5, 5] == 0 and m1[60, 60] == 0  # far from both: the photo stays
    assert m1[20, 50] == 0  # the limb that stayed where it was: no change allowed on it either
    assert 0 < m1[30, 13] < 1  # a soft edge
    assert torch.count_nonzero(m2) == 0  # frame 2's pose is the reference's: the photo itself
    wider = motion_mask(_poses(), radius=6.0)[0, 0, 0]
    assert wider[30, 16] > 0.5 > m1[30, 16]


def test_radius_zero_blurs_the_difference_without_dilating_it():
    mask = motion_mask(_poses(), radius=0.0, blur=1.0)[0, 0, 0]
    dilated = motion_mask(_poses(), radius=1.0, blur=1.0)[0, 0, 0]
    assert 0.3 < mask[30, 10] < 1 and 0.3 < mask[30, 40] < 1  # the 1-px lines, blurred
    assert mask[30, 12] < dilated[30, 12] and mask[30, 14] < 0.01  # no dilation: it fades within 3 sigma
    assert mask[20, 50] == 0 and mask[5, 5] == 0
    assert torch.equal(motion_mask(_poses(), 2.0), motion_mask(_poses(), 2.0, blur=1.0))  # default blur r / 2


def test_mask_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[B, 1 \+ F, 3, H, W\]"):
        motion_mask(torch.zeros(1, 1, 3, 8, 8), 2.0)
    with pytest.raises(ValueError, match="radius must be > 0"):
        motion_mask(_poses(), 0.0)
    with pytest.raises(ValueError, match="radius must be > 0"):
        motion_mask(_poses(), -1.0, blur=1.0)


@pytest.fixture(scope="module")
def tiny_model():
    from csg_lightning.video.video_generator import VideoGenerator

    torch.manual_seed(0)
    return VideoGenerator.from_preset("tiny", image_height=64, image_width=64, ema_decay=0).eval()


def test_render_keeps_the_photo_away_from_the_skeletons(tiny_model):
    """With motion_mask_radius the rendered frame is the photo away from where the skeleton moved and photo +
    D(z_t) - D(z_0) there; without pose images it is a clear error."""
    from csg_lightning.video.pixel_range import to_uint8
    from csg_lightning.video.vae_latents import decode_latents

    pipe = dataclasses.replace(tiny_model.pipeline(), vae_chunk_size=1, detail_transfer=True)
    masked = dataclasses.replace(pipe, motion_mask_radius=2.0)
    ref = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    latents = torch.randn(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    poses = _poses()
    got = masked.render(latents, ref, poses)
    assert got.shape == (1, 2, 64, 64, 3)
    photo = to_uint8(ref).permute(0, 2, 3, 1)
    full = pipe.render(latents, ref)
    assert torch.equal(got[0, 0, 30, 25], photo[0, 30, 25]) and torch.equal(got[0, 0, 20, 50], photo[0, 20, 50])
    assert torch.equal(got[0, 1], photo[0])  # frame 2: the reference's pose
    assert not torch.equal(full[0, 0, 30, 25], photo[0, 30, 25])  # unmasked, the change reaches there
    assert torch.equal(got[0, 0, 30, 40], full[0, 0, 30, 40])  # on the limb: the full change
    decoded = decode_latents(pipe.vae, latents, chunk_size=1)
    mask = motion_mask(poses, 2.0)
    assert torch.equal(got, to_uint8(ref[:, None] + mask * (decoded[:, 1:] - decoded[:, :1])).permute(0, 1, 3, 4, 2))
    assert torch.equal(masked.render(latents, ref, to_uint8(poses)), got)  # uint8 pose images as well
    with pytest.raises(ValueError, match="motion_mask_radius needs the pose images"):
        masked.render(latents, ref)
    with pytest.raises(ValueError, match="needs detail_transfer"):  # it would be ignored without it
        dataclasses.replace(masked, detail_transfer=False)
    with pytest.raises(ValueError, match="radius 0 needs a motion_mask_blur"):  # nothing could change
        dataclasses.replace(masked, motion_mask_radius=0.0)
    with pytest.raises(ValueError, match="motion_mask_blur needs motion_mask_radius"):
        dataclasses.replace(masked, motion_mask_radius=None, motion_mask_blur=1.0)
    unmasked_blur = dataclasses.replace(masked, motion_mask_radius=0.0, motion_mask_blur=1.0)
    assert torch.equal(unmasked_blur.render(latents, ref, poses)[0, 0, 5, 5], got[0, 0, 5, 5])  # the photo, far away


def test_latent_motion_mask_is_the_cell_mean_against_the_reference_pose():
    """Per latent cell: the mean of motion_mask with the reference pose as frame 0 (uint8 inputs)."""
    from csg_lightning.video.motion_mask import latent_motion_mask

    poses = torch.zeros(2, 3, 3, 64, 64, dtype=torch.uint8)
    reference = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
    poses[:, 1, :, 20:40, 40] = 255  # frame 1 moved a limb onto x=40; frames 0 and 2 as the reference
    cells = latent_motion_mask(poses, reference, 1.0, 8)
    assert cells.shape == (2, 3, 8, 8)
    assert torch.count_nonzero(cells[:, 0]) == 0 and torch.count_nonzero(cells[:, 2]) == 0
    assert cells[0, 1, 3, 5] > 0.2 and cells[0, 1, 3, 1] == 0  # the cell over x=40, a cell far from it
    full = motion_mask(torch.cat([reference[:, None], poses], 1).float() / 127.5 - 1, 1.0)
    assert torch.allclose(cells[:, 1], full[:, 1, 0].reshape(2, 8, 8, 8, 8).mean(dim=(2, 4)), atol=1e-6)


def test_edm_loss_weights_the_moving_cells():
    """EDMLoss(motion_amplification=a): the squared error of a moving cell counts a times, the others once;
    a = 1 (the default) ignores the mask."""
    from csg_lightning.video.edm_loss import EDMLoss

    x0 = torch.zeros(1, 2, 4, 8, 8)
    mask = torch.zeros(1, 2, 8, 8)
    mask[0, 1, 2, 3] = 1.0
    off = torch.zeros_like(x0)
    off[0, 1, :, 2, 3] = 1.0  # the denoiser is wrong only on the moving cell

    def denoise(x_sigma, sigma):
        return off.clone()

    plain = EDMLoss(motion_amplification=1.0)(denoise, x0, None, torch.Generator().manual_seed(0), motion_mask=mask)
    weighted = EDMLoss(motion_amplification=5.0)(denoise, x0, None, torch.Generator().manual_seed(0), motion_mask=mask)
    assert weighted["loss"].item() == pytest.approx(5.0 * plain["loss"].item(), rel=1e-5)
    assert weighted["mse"].item() == pytest.approx(plain["mse"].item())
