"""The 134-point layout, OpenPose re-ordering and the local representation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csg_lightning.skeleton import (
    NUM_KEYPOINTS,
    NUM_LOCAL_FEATURES,
    SkeletonLayout,
    confidence_mask,
    from_local,
    local_confidence,
    to_local,
)
from csg_lightning.skeleton.layout import add_neck
from csg_lightning.skeleton.local import LOCAL_FACE, LOCAL_LEFT_HAND, LOCAL_RIGHT_HAND
from csg_lightning.skeleton.openpose import from_openpose_order, to_openpose_order

L = SkeletonLayout


def _random_pose(shape=(7,), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 512, size=(*shape, NUM_KEYPOINTS, 2))


def test_groups_partition_all_points():
    merged = np.sort(np.concatenate(list(L.groups().values())))
    assert np.array_equal(merged, np.arange(NUM_KEYPOINTS))
    assert len(L.names()) == NUM_KEYPOINTS and len(set(L.names())) == NUM_KEYPOINTS
    assert L.names()[17] == "neck" and L.names()[9] == "left_wrist" and L.names()[10] == "right_wrist"
    assert L.LEFT_HAND[0] == 92 and L.RIGHT_HAND[-1] == 133 and L.FACE[0] == 24


def test_limbs_reference_valid_points():
    for limbs in (L.BODY_LIMBS, L.FEET_LIMBS, L.LEFT_HAND_LIMBS, L.RIGHT_HAND_LIMBS, L.FACE_LIMBS):
        arr = np.asarray(limbs)
        assert arr.min() >= 0 and arr.max() < NUM_KEYPOINTS
    assert len(L.LEFT_HAND_LIMBS) == 20 and set(np.asarray(L.LEFT_HAND_LIMBS).ravel()) == set(L.LEFT_HAND)


def test_add_neck_is_mean_of_shoulders_and_confident_only_with_both():
    rng = np.random.default_rng(1)
    kp133, sc133 = rng.uniform(0, 512, (4, 133, 2)), rng.uniform(0.8, 1.0, (4, 133))
    sc133[1, 6] = 0.2  # one bad right shoulder
    kp, sc = add_neck(kp133, sc133)
    assert kp.shape == (4, 134, 2) and sc.shape == (4, 134)
    np.testing.assert_allclose(kp[:, 17], 0.5 * (kp133[:, 5] + kp133[:, 6]))
    np.testing.assert_array_equal(kp[:, 18:], kp133[:, 17:])
    assert sc[1, 17] == pytest.approx(0.2) and (sc[[0, 2, 3], 17] >= 0.8).all()
    with pytest.raises(ValueError, match="133"):
        add_neck(kp, sc)


def test_openpose_order_round_trip_and_known_positions():
    kp = _random_pose()
    op = to_openpose_order(kp)
    assert np.array_equal(op[:, 0], kp[:, L.NOSE]) and np.array_equal(op[:, 1], kp[:, L.NECK])
    assert np.array_equal(op[:, 2], kp[:, L.RIGHT_SHOULDER]) and np.array_equal(op[:, 7], kp[:, L.LEFT_WRIST])
    assert np.array_equal(op[:, 18:], kp[:, 18:])
    assert np.array_equal(from_openpose_order(op), kp)


def test_local_representation_definition():
    kp = _random_pose()
    local = to_local(kp)
    assert local.shape == (7, 123, 2) and local.reshape(7, -1).shape[-1] == NUM_LOCAL_FEATURES
    np.testing.assert_allclose(local[:, 5], kp[:, 5] - kp[:, L.NECK])  # left shoulder
    np.testing.assert_allclose(local[:, LOCAL_FACE][:, 48], kp[:, 24 + 48] - kp[:, L.NOSE])
    np.testing.assert_allclose(local[:, LOCAL_LEFT_HAND][:, 4], kp[:, 92 + 4] - kp[:, L.LEFT_WRIST])
    np.testing.assert_allclose(local[:, LOCAL_RIGHT_HAND][:, 0], kp[:, 113] - kp[:, L.RIGHT_WRIST])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_local_representation_exact_inverse(backend):
    kp = _random_pose(shape=(3, 5))
    if backend == "torch":
        kp = torch.from_numpy(kp)
    back = from_local(to_local(kp), kp[..., L.NECK, :], kp[..., L.LEGS, :])
    np.testing.assert_allclose(np.asarray(back), np.asarray(kp), rtol=0, atol=1e-9)
    without_legs = from_local(to_local(kp), kp[..., L.NECK, :])
    nan = np.isnan(np.asarray(without_legs)).any(axis=-1)
    assert set(np.flatnonzero(nan[0, 0])) == set(L.LEGS.tolist())


def test_local_inverse_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="123"):
        from_local(np.zeros((4, 134, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="134"):
        to_local(np.zeros((4, 133, 2)))


def test_confidence_mask_threshold_is_exclusive():
    scores = np.array([0.69, 0.7, 0.7001, 1.0])
    assert confidence_mask(scores).tolist() == [False, False, True, True]


def test_local_confidence_takes_the_weaker_end():
    scores = np.full((2, 134), 0.9)
    scores[0, L.NECK] = 0.1  # every upper-body offset depends on the neck
    scores[1, L.LEFT_WRIST] = 0.5  # the left hand's offsets depend on the left wrist
    conf = local_confidence(scores)
    assert conf.shape == (2, 123)
    assert (conf[0, :13] == 0.1).all() and (conf[0, 13:] == 0.9).all()
    assert (conf[1, LOCAL_LEFT_HAND] == 0.5).all() and (conf[1, LOCAL_RIGHT_HAND] == 0.9).all()
    torch_conf = local_confidence(torch.from_numpy(scores))
    np.testing.assert_array_equal(torch_conf.numpy(), conf)
