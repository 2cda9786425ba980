"""Baselines scored beside the model; each maps a batch of windows to (keypoints [B, W, 134, 2], scores [B, W, 134]).

- ground truth: the real window frames after the prefix;
- mean pose: the train-split mean local features, placed at the reference's neck (legs from the
  reference), held still for all W frames; scores 1 (legs: the reference's);
- random clip: the last W frames of a real train-split window of another speaker, translated so its
  neck in the first frame sits on the reference's neck; its own scores;
- shuffled audio: the model driven by another window's audio (:func:`roll_audio` rolls the audio
  across the evaluation windows by one), scored against the true audio.
"""

from __future__ import annotations

import numpy as np
import torch

from csg_lightning.data.normalization import features_to_local
from csg_lightning.skeleton.layout import NUM_KEYPOINTS, SkeletonLayout
from csg_lightning.skeleton.local import from_local


def ground_truth(batch: dict, num_prefix: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> the real window frames: [B, W, 134, 2], [B, W, 134]."""
    return batch["keypoints"][:, num_prefix:], batch["scores"][:, num_prefix:]


def _scores_like_generated(reference_scores: torch.Tensor, frames: int) -> torch.Tensor:
    scores = torch.ones(reference_scores.shape[0], frames, NUM_KEYPOINTS)
    scores[:, :, SkeletonLayout.LEGS] = reference_scores[:, None, SkeletonLayout.LEGS].float()
    return scores


def mean_pose(batch: dict, mean_features: np.ndarray, num_prefix: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train mean local features [246] -> a still skeleton at each reference neck: [B, W, 134, 2], [B, W, 134]."""
    ref = batch["reference_keypoints"].float()  # [B, 134, 2]
    b, w = ref.shape[0], batch["keypoints"].shape[1] - num_prefix
    local = features_to_local(torch.as_tensor(np.asarray(mean_features), dtype=torch.float32))  # [123, 2]
    pose = from_local(local[None].expand(b, -1, -1), ref[:, SkeletonLayout.NECK], ref[:, SkeletonLayout.LEGS])
    return pose[:, None].expand(b, w, -1, -1).clone(), _scores_like_generated(batch["reference_scores"], w)


def random_clip(
    batch: dict, pool: list[dict], num_prefix: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Real motion of another speaker (from ``pool``, see ``windows.train_pool``), moved to the reference neck."""
    w = batch["keypoints"].shape[1] - num_prefix
    kps, scs = [], []
    for speaker, ref in zip(batch["speaker_id"], batch["reference_keypoints"].float(), strict=True):
        others = [p for p in pool if p["speaker_id"] != speaker] or pool
        if not others:
            raise ValueError("random_clip: the pool of train windows is empty")
        pick = others[int(rng.integers(len(others)))]
        if pick["keypoints"].shape[0] < w:
            raise ValueError(f"random_clip: pool windows have {pick['keypoints'].shape[0]} frames, need {w}")
        kp = pick["keypoints"][-w:].float()
        kps.append(kp + (ref[SkeletonLayout.NECK] - kp[0, SkeletonLayout.NECK]))
        scs.append(pick["scores"][-w:].float())
    return torch.stack(kps), torch.stack(scs)


def roll_audio(batches: list[dict], shift: int = 1) -> list[dict]:
    """Copies of ``batches`` whose audio comes from the window ``shift`` places later (cyclically over all
    windows of all batches), so the model hears speech that does not belong to the window."""
    audio = torch.cat([b["audio"] for b in batches])
    if audio.shape[0] < 2:
        raise ValueError("shuffled audio needs at least 2 evaluation windows")
    rolled = torch.roll(audio, -shift, dims=0)
    out, i = [], 0
    for b in batches:
        n = b["audio"].shape[0]
        out.append({**b, "audio": rolled[i : i + n]})
        i += n
    return out
