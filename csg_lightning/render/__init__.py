"""Skeleton rendering (plain numpy/OpenCV; no Lightning): pose images and skeleton videos."""

from __future__ import annotations

from csg_lightning.render.drawing_frame import content_frame, frame_for, frame_holds, frame_size_of
from csg_lightning.render.skeleton_video import panel_size, skeleton_frames, write_skeleton_video
from csg_lightning.skeleton.drawing import canvas_shape, draw_pose, draw_pose_sequence

__all__ = [
    "canvas_shape",
    "content_frame",
    "draw_pose",
    "draw_pose_sequence",
    "frame_for",
    "frame_holds",
    "frame_size_of",
    "panel_size",
    "skeleton_frames",
    "write_skeleton_video",
]
