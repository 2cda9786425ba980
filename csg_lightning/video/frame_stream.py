"""Stage-2 frames of a driving clip of any length, generated segment by segment and yielded as they come.

:func:`prepare_clip` puts the inputs in the model's frame: the reference photo is scaled to cover the
model's size and centre-cropped (:class:`~csg_lightning.data.cover_crop.CoverCrop`); the driving
keypoints are taken from their :class:`~csg_lightning.video.pose_frame.PoseFrame` to the photo's
pixels, aligned to the reference body when its pose is given (:mod:`~csg_lightning.video.pose_alignment`)
and cropped like the photo.

:func:`stream_frames` then generates ``segment_frames`` frames at a time: each segment is denoised as
one clip whose frame 0 is the reference with its pose (dropped from the output), with the model's
tiling inside it (:meth:`VideoGenerator.sample_latents`), decoded and yielded; consecutive segments
overlap by ``segment_overlap`` frames, cross-faded linearly, and segment ``i`` is seeded ``seed + i``.
Memory stays that of one segment whatever the length (a 10-minute clip is 15,000 frames); an mp4
writer consuming the iterator (:func:`~csg_lightning.io.mp4.write_mp4`) never holds the whole video.
``segment_frames=None`` makes the whole clip one segment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from csg_lightning.data.cover_crop import CoverCrop
from csg_lightning.skeleton.drawing import draw_pose_sequence
from csg_lightning.video.pixel_range import to_model_range
from csg_lightning.video.pose_alignment import fit_alignment
from csg_lightning.video.pose_frame import PoseFrame


@dataclass
class DrivingClip:
    """Everything in the model's pixels: reference uint8 [H, W, 3], its pose (kp [134, 2], sc [134]),
    driving keypoints [T, 134, 2] and scores [T, 134]."""

    reference: np.ndarray
    reference_keypoints: np.ndarray
    reference_scores: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.keypoints)


def prepare_clip(image: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, width: int, height: int,
                 reference_pose: tuple[np.ndarray, np.ndarray] | None = None, pose_frame: PoseFrame | None = None,
                 align: bool = True) -> DrivingClip:  # fmt: skip
    """image uint8 [h, w, 3]; keypoints [T, 134, 2] in ``pose_frame``'s pixels (None: the photo's);
    reference_pose in photo pixels (None: frame 0 takes the first driving pose)."""
    crop = CoverCrop.fit(image.shape[1], image.shape[0], width, height)
    kp = pose_frame.to_photo(keypoints) if pose_frame is not None else np.asarray(keypoints, np.float32)
    sc = np.asarray(scores, np.float32)
    if reference_pose is not None:
        ref_kp, ref_sc = reference_pose
        if align:
            kp = fit_alignment(ref_kp, ref_sc, kp, sc).apply(kp)
    else:
        ref_kp, ref_sc = kp[0], sc[0]
    return DrivingClip(crop.image(image), crop.keypoints(ref_kp), np.asarray(ref_sc, np.float32),
                       crop.keypoints(kp), sc)  # fmt: skip


def segment_starts(num_frames: int, segment_frames: int | None, overlap: int) -> list[tuple[int, int]]:
    """[(start, end)] of the segments covering ``num_frames`` (consecutive ones share ``overlap`` frames)."""
    if segment_frames is None or num_frames <= segment_frames:
        return [(0, num_frames)]
    if not 0 <= overlap < segment_frames:
        raise ValueError(f"segment_overlap must be in [0, {segment_frames - 1}], got {overlap}")
    spans, start = [], 0
    while True:
        end = min(start + segment_frames, num_frames)
        spans.append((start, end))
        if end == num_frames:
            return spans
        start = end - overlap


@torch.no_grad()
def stream_frames(model, clip: DrivingClip, *, segment_frames: int | None = None, segment_overlap: int = 0,
                  canvas_size: int | None = None, seed: int = 0, progress=None,
                  **sampling) -> Iterator[np.ndarray]:  # fmt: skip
    """Yield uint8 frames [H, W, 3] of ``clip``, in order (see the module docstring).

    model: a VideoGenerator; ``sampling``: num_steps, min_guidance, max_guidance, tile_size,
    tile_overlap (see ``VideoGenerator.sample_latents``); ``progress``: a tqdm-like bar updated by the
    frames of each finished segment."""
    h = model.hparams
    height, width = int(h.image_height), int(h.image_width)
    reference = to_model_range(torch.from_numpy(clip.reference).permute(2, 0, 1)[None])
    spans = segment_starts(len(clip), segment_frames, segment_overlap)
    held: np.ndarray | None = None
    for i, (start, end) in enumerate(spans):
        kp = np.concatenate([clip.reference_keypoints[None], clip.keypoints[start:end]])
        sc = np.concatenate([clip.reference_scores[None], clip.scores[start:end]])
        images = draw_pose_sequence(kp, sc, width, height, (height, width), canvas_size=canvas_size,
                                    swap_rb=bool(h.swap_rb))  # fmt: skip  [n + 1, H, W, 3]
        poses = to_model_range(torch.from_numpy(images).permute(0, 3, 1, 2)[None])
        latents = model.sample_latents(reference, poses, seed=seed + i, **sampling)
        frames = model.render(latents, reference, poses)[0].cpu().numpy()  # frame 0: the reference's slot
        if held is not None:  # cross-fade the frames shared with the previous segment
            n = len(held)
            weight = (np.arange(1, n + 1, dtype=np.float32) / (n + 1))[:, None, None, None]
            frames[:n] = np.round(weight * frames[:n] + (1 - weight) * held).astype(np.uint8)
        last = i == len(spans) - 1
        keep = len(frames) if last else len(frames) - segment_overlap
        held = None if last or segment_overlap == 0 else frames[keep:].astype(np.float32)
        if progress is not None:
            progress.update(keep)
        yield from frames[:keep]
