"""``RenderedPoseVideoDataModule``: Stage-2 training examples of freshly drawn synthetic speakers.

The demo corpus has six training speakers. A pose-guided generator trained on them learns to move *their*
limbs: on a training speaker it renders the ground-truth skeletons 1.1 dB / 0.012 SSIM above the repeated
reference frame, on the held-out speaker 0.5 dB / 0.000 (`csg-eval video-demo`, 7 min of training). Like
the demo VAE (:class:`~csg_lightning.data.rendered_speakers.RenderedSpeakersDataModule`), Stage 2 can see
more of the world the corpus comes from: ``num_speakers`` synthetic speakers (their own bodies, clothes and
backdrops, none of them a corpus speaker) each speak one ``clip_seconds`` clip, rendered at 512 x 512 and
fitted to ``height`` x ``width``. Examples are those of
:class:`~csg_lightning.data.pose_video.PoseVideoDataset` (same fields, same frame layout, the same pose
drawing and hand masks, :func:`~csg_lightning.data.pose_video.pose_video_example`), from the clips' own
estimator-like keypoints; the frames come from memory instead of an mp4. Validation and test: the shards'
held-out corpus speakers, exactly as in ``PoseVideoDataModule``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from csg_lightning.data.corpus.speaker import FRAME_SIZE
from csg_lightning.data.cover_crop import CoverCrop
from csg_lightning.data.latent_grid import LATENT_DOWNSAMPLE, check_latent_downsample
from csg_lightning.data.pose_video import PoseVideoDataset, pose_video_example
from csg_lightning.data.rendered_speakers import RenderedSpeakersDataModule
from csg_lightning.data.seeded_loader import seeded_loader


class RenderedPoseVideo(Dataset):
    """Pose-video examples of rendered clips: index -> (clip index % S, a start and reference frame drawn
    from (seed, index)). ``frames`` uint8 [S, T, 3, H, W] at the output size; ``clips``: their generated
    clips (keypoints / scores in 512-frame pixels, speech)."""

    window_frames = PoseVideoDataset.window_frames
    span = PoseVideoDataset.span

    def __init__(self, speaker_ids: list[str], frames: torch.Tensor, clips: list, *, num_frames: int,
                 frame_stride: int, reference_first: bool, swap_rb: bool, canvas_size: int | None,
                 hand_options: dict, seed: int, latent_downsample: int = LATENT_DOWNSAMPLE) -> None:  # fmt: skip
        if reference_first and num_frames < 2:
            raise ValueError(f"reference_first needs num_frames >= 2 (the reference + driven frames), got {num_frames}")
        self.speaker_ids, self.frames, self.clips = speaker_ids, frames, clips
        self.num_frames, self.frame_stride, self.reference_first = num_frames, frame_stride, bool(reference_first)
        self.height, self.width = int(frames.shape[-2]), int(frames.shape[-1])
        self.swap_rb, self.canvas_size, self.hand_options = swap_rb, canvas_size, dict(hand_options)
        self.seed = int(seed)
        self.latent_downsample = check_latent_downsample(latent_downsample, self.height, self.width)
        self.crop = CoverCrop.fit(FRAME_SIZE, FRAME_SIZE, self.width, self.height)
        self.windows = max(1, frames.shape[1] - self.span + 1)

    def __len__(self) -> int:
        return len(self.clips) * self.windows

    def __getitem__(self, index: int) -> dict:
        which = int(index) % len(self.clips)
        clip, frames = self.clips[which], self.frames[which]
        rng = np.random.default_rng([self.seed, int(index)])

        def pixels_at(wanted: list[int]) -> np.ndarray:
            return frames[wanted].permute(0, 2, 3, 1).numpy()

        return pose_video_example(
            self, clip.keypoints, clip.scores, clip.speech.audio, clip.num_frames, rng, pixels_at, self.crop,
            clip.clip_id, self.speaker_ids[which],
        )  # fmt: skip


class RenderedPoseVideoDataModule(RenderedSpeakersDataModule):
    """Train Stage 2 on rendered speakers (in memory), validate / test on the shards' held-out corpus speakers.

    Args: those of ``RenderedSpeakersDataModule`` (``num_speakers``, ``first_speaker``, ``clip_seconds``,
    ``corpus_seed``; corpus speakers are refused) and of ``PoseVideoDataModule`` for the examples
    (``reference_first``, ``swap_rb``, ``canvas_size``, the hand-mask rules, ``latent_downsample``). The clips
    are rendered in memory in the main process (150 speakers x 4 s: ~18 s); ``num_workers`` worker processes
    (forked, sharing them) draw the pose images and hand masks of the training batches, as for the shards.
    """

    def __init__(
        self,
        data_dir: str = "data/demo/shards",
        batch_size: int = 4,
        num_workers: int = 1,
        persistent_workers: bool = True,
        num_frames: int = 4,
        frame_stride: int = 2,
        height: int = 64,
        width: int = 64,
        seed: int = 0,
        eval_batch_size: int | None = None,
        num_speakers: int = 150,
        first_speaker: int = 100,
        clip_seconds: float = 4.0,
        corpus_seed: int = 0,
        reference_first: bool = False,
        swap_rb: bool = True,
        canvas_size: int | None = None,
        hand_min_mean: float = 0.7,
        hand_min_score: float = 0.5,
        hand_margin: float = 0.15,
        latent_downsample: int = LATENT_DOWNSAMPLE,
    ) -> None:
        super().__init__(
            data_dir, batch_size=batch_size, num_workers=num_workers, num_frames=num_frames, frame_stride=frame_stride,
            height=height, width=width, seed=seed, eval_batch_size=eval_batch_size, num_speakers=num_speakers,
            first_speaker=first_speaker, clip_seconds=clip_seconds, corpus_seed=corpus_seed,
        )  # fmt: skip
        self.save_hyperparameters()
        self.reference_first, self.swap_rb, self.canvas_size = bool(reference_first), swap_rb, canvas_size
        self.hand_options = {"min_mean": hand_min_mean, "min_score": hand_min_score, "margin": hand_margin}
        self.persistent_workers = bool(persistent_workers)
        self.latent_downsample = check_latent_downsample(latent_downsample, height, width)
        self.examples: RenderedPoseVideo | None = None

    def rendered_examples(self) -> RenderedPoseVideo:
        if self.examples is None:
            ids, frames, clips = self.render()
            self.examples = RenderedPoseVideo(
                ids, frames, clips, num_frames=self.num_frames, frame_stride=self.frame_stride,
                reference_first=self.reference_first, swap_rb=self.swap_rb, canvas_size=self.canvas_size,
                hand_options=self.hand_options, seed=self.seed, latent_downsample=self.latent_downsample,
            )  # fmt: skip
        return self.examples

    def train_dataloader(self) -> DataLoader:
        return seeded_loader(self.rendered_examples(), self.batch_size, self.seed, self.num_workers,
                             self.persistent_workers)
