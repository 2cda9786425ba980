"""Hand boxes from confidences and their latent-resolution mask."""

from __future__ import annotations

import numpy as np
import torch

from csg_lightning.data.hand_mask import boxes_to_mask, hand_boxes, hand_mask
from csg_lightning.video.edm_loss import hand_loss_weight


def _frame(left_xy=(10.0, 20.0), right_xy=(40.0, 40.0), left_score=0.9, right_score=0.9):
    kp = np.zeros((1, 134, 2), dtype=np.float32)
    sc = np.full((1, 134), 0.9, dtype=np.float32)
    rng = np.random.default_rng(0)
    kp[0, 92:113] = np.array(left_xy) + rng.uniform(0, 6, size=(21, 2))
    kp[0, 113:134] = np.array(right_xy) + rng.uniform(0, 6, size=(21, 2))
    sc[0, 92:113], sc[0, 113:134] = left_score, right_score
    return kp, sc


def test_confident_hands_get_boxes_with_margin():
    kp, sc = _frame()
    boxes, valid = hand_boxes(kp, sc, margin=0.0, min_margin=2.0)
    assert valid.tolist() == [[True, True]]
    left = kp[0, 92:113]
    assert np.allclose(boxes[0, 0], [*(left.min(0) - 2), *(left.max(0) + 2)])


def test_unconfident_hand_is_left_out():
    kp, sc = _frame(right_score=0.4)  # all below min_score 0.5
    _, valid = hand_boxes(kp, sc)
    assert valid.tolist() == [[True, False]]
    kp, sc = _frame(left_score=0.9)
    sc[0, 95] = 0.3  # one point unconfident: the whole hand is out
    _, valid = hand_boxes(kp, sc)
    assert valid.tolist() == [[False, True]]


def test_mask_marks_the_latent_cells_of_the_boxes():
    boxes = np.array([[[9.0, 17.0, 23.0, 31.0], [0, 0, 0, 0]]], dtype=np.float32)
    mask = boxes_to_mask(boxes, np.array([[True, False]]), 64, 64, 8)
    assert mask.shape == (1, 8, 8)
    expected = np.zeros((8, 8), dtype=np.float32)
    expected[2:4, 1:3] = 1  # rows 17..31 -> cells 2, 3; cols 9..23 -> cells 1, 2
    assert np.array_equal(mask[0], expected)
    kp, sc = _frame()
    full = hand_mask(kp, sc, 64, 64)
    assert full.shape == (1, 8, 8) and full.sum() > 0
    weight = hand_loss_weight(torch.from_numpy(full))
    assert set(weight.unique().tolist()) == {1.0, 10.0}


def test_boxes_outside_the_image_are_clipped():
    boxes = np.array([[[-30.0, -30.0, 4.0, 4.0]]], dtype=np.float32)
    mask = boxes_to_mask(boxes, np.array([[True]]), 32, 32, 8)
    assert mask[0, 0, 0] == 1 and mask.sum() == 1
