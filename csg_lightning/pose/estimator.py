"""The one pose-estimator interface every backend implements (plain Python/PyTorch, no Lightning).

A backend turns a batch of RGB frames (``uint8 [H, W, 3]`` each, or one ``[B, H, W, 3]`` array) into,
per frame, every detected person as a :class:`PersonPose`: ``keypoints [134, 2]`` pixels of that
frame and ``scores [134]`` in the storage order of :mod:`csg_lightning.skeleton.layout` (the neck
added at index 17 by :func:`~csg_lightning.skeleton.layout.add_neck`), plus the person's box and its
detection score. Backends and their weight files are chosen in YAML by ``class_path`` /
``init_args`` (:func:`build_estimator`), never hard-coded.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from csg_lightning.skeleton.layout import NUM_KEYPOINTS, add_neck


@dataclass(frozen=True)
class PersonPose:
    """One person in one frame: keypoints [134, 2] (x, y pixels), scores [134], box [4] (x1, y1, x2, y2)."""

    keypoints: np.ndarray
    scores: np.ndarray
    box: np.ndarray
    box_score: float

    def __post_init__(self) -> None:
        if self.keypoints.shape != (NUM_KEYPOINTS, 2) or self.scores.shape != (NUM_KEYPOINTS,):
            raise ValueError(
                f"PersonPose expects keypoints [134, 2] and scores [134], got "
                f"{self.keypoints.shape} and {self.scores.shape}"
            )
        if self.box.shape != (4,):
            raise ValueError(f"PersonPose expects box [4] (x1, y1, x2, y2), got {self.box.shape}")

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return float(max(0.0, x2 - x1) * max(0.0, y2 - y1))

    @classmethod
    def from_wholebody133(
        cls, keypoints133: np.ndarray, scores133: np.ndarray, box, box_score: float
    ) -> PersonPose:
        """A COCO-WholeBody-133 estimate (what mmpose / DWPose output) -> a 134-point PersonPose."""
        kp, sc = add_neck(np.asarray(keypoints133, np.float32), np.asarray(scores133, np.float32))
        return cls(
            kp.astype(np.float32),
            sc.astype(np.float32),
            np.asarray(box, np.float32).reshape(4),
            float(box_score),
        )


def as_frame_list(frames: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Validate a batch of RGB frames -> a list of ``uint8 [H, W, 3]`` arrays (sizes may differ)."""
    if isinstance(frames, np.ndarray):
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4:
            raise ValueError(
                f"frames must be [B, H, W, 3] or a list of [H, W, 3], got an array of shape {frames.shape}"
            )
        frames = list(frames)
    out = []
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"frame {i}: expected an RGB uint8 [H, W, 3] array, got {frame.dtype} {frame.shape}"
            )
        if min(frame.shape[:2]) < 16:
            raise ValueError(
                f"frame {i}: {frame.shape[1]}x{frame.shape[0]} pixels is too small (>= 16x16 expected)"
            )
        out.append(frame)
    return out


class PoseEstimator(abc.ABC):
    """Frames -> per frame, the people in it (largest first)."""

    def __call__(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[list[PersonPose]]:
        frames = as_frame_list(frames)
        if not frames:
            return []
        people = self.estimate(frames)
        if len(people) != len(frames):
            raise RuntimeError(
                f"{type(self).__name__} returned {len(people)} results for {len(frames)} frames"
            )
        return [sorted(persons, key=lambda p: -p.area) for persons in people]

    @abc.abstractmethod
    def estimate(self, frames: list[np.ndarray]) -> list[list[PersonPose]]:
        """Backends implement this: validated RGB frames -> people per frame (any order)."""


def top_down_people(
    frames, detections, pose_chunk, batch_size: int, pose_inputs=None
) -> list[list[PersonPose]]:
    """The top-down step both detector + pose backends share: every detected box -> one pose, in batches.

    ``detections``: per frame ``(boxes [N, 4], scores [N])``; ``pose_chunk(pose_inputs, [(frame index,
    box), ...])`` -> one ``(keypoints [133, 2], scores [133])`` per box (``pose_inputs`` default: ``frames``,
    e.g. BGR copies for backends that want them). Boxes are clipped to their frame.
    """
    inputs = frames if pose_inputs is None else pose_inputs
    jobs = [(index, box, float(score)) for index, (boxes, scores) in enumerate(detections)
            for box, score in zip(boxes, scores, strict=True)]  # fmt: skip
    people: list[list[PersonPose]] = [[] for _ in frames]
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        results = pose_chunk(inputs, [(index, box) for index, box, _ in chunk])
        for (index, box, score), (keypoints, scores) in zip(chunk, results, strict=True):
            height, width = frames[index].shape[:2]
            clipped = np.clip(box, 0, [width, height, width, height])
            people[index].append(PersonPose.from_wholebody133(keypoints, scores, clipped, score))
    return people


def build_estimator(spec: dict) -> PoseEstimator:
    """``{"class_path": "csg_lightning.pose.<backend>.<Class>", "init_args": {...}}`` -> the estimator."""
    from jsonargparse import ArgumentParser

    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ValueError(
            f"a pose estimator is given as {{class_path: ..., init_args: {{...}}}}, got {spec!r}"
        )
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--estimator", type=PoseEstimator)
    cfg = parser.parse_object({"estimator": spec})
    return parser.instantiate_classes(cfg).estimator
