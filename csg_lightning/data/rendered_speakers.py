"""``RenderedSpeakersDataModule``: VAE training frames of freshly drawn synthetic speakers; validation on the shards.

The demo corpus has six training speakers. A VAE fitted on their frames learns their palettes and paints
a held-out speaker in the wrong colours (val PSNR ~18 dB after 2 minutes while train PSNR reaches 25 dB).
SVD's VAE was fitted on a world of images; the demo's stand-in for that world is more speakers from the
same generator: ``num_speakers`` speakers (``make_speaker(corpus_seed, i)`` for i from ``first_speaker``,
each with its own body, clothes and backdrop) move through one ``clip_seconds`` clip each, rendered at
512 x 512 and fitted to ``height`` x ``width`` like the shards' frames (``CoverCrop``, area resampling).
None of them is a corpus speaker: their ids are checked against the shard manifest's speakers.

Training examples: ``num_frames`` frames ``frame_stride`` apart from one rendered clip, batches of
{"frames": uint8 [B, F, 3, H, W], "speaker_id": list[str]}, drawn at random (seeded). Validation and
test are the shards' own (held-out corpus speakers), exactly as in
:class:`~csg_lightning.data.pose_video.PoseVideoDataModule`. The frames are rendered once, in memory,
when the train loader is first built (150 speakers x 100 frames: ~10 s, ~60 MB at 64 x 64).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from csg_lightning.data.corpus.figure import FigureRenderer
from csg_lightning.data.corpus.generate import make_clip
from csg_lightning.data.corpus.speaker import FRAME_SIZE
from csg_lightning.data.corpus_overlap import check_not_corpus
from csg_lightning.data.cover_crop import CoverCrop
from csg_lightning.data.pose_video import PoseVideoDataModule
from csg_lightning.data.seeded_loader import NoLoaderState, seeded_loader

log = logging.getLogger(__name__)


def render_clips(
    corpus_seed: int, first_speaker: int, num_speakers: int, clip_seconds: float, height: int, width: int
) -> tuple[list[str], torch.Tensor, list]:
    """-> (speaker ids, frames uint8 [S, T, 3, height, width], the generated clips (keypoints and scores in
    512-frame pixels, speech)): one clip of each speaker, every frame rendered and fitted to the output size."""
    crop = CoverCrop.fit(FRAME_SIZE, FRAME_SIZE, width, height)
    ids, frames, clips = [], [], []
    for index in range(first_speaker, first_speaker + num_speakers):
        clip = make_clip(corpus_seed, index, 0, clip_seconds=clip_seconds)
        renderer = FigureRenderer(clip.speaker, FRAME_SIZE)
        pixels = np.stack([crop.image(renderer.render(pose)) for pose in clip.pose.keypoints])
        frames.append(torch.from_numpy(pixels).permute(0, 3, 1, 2))
        ids.append(clip.speaker.speaker_id)
        clips.append(clip)
    return ids, torch.stack(frames), clips


class RenderedFrames(Dataset):
    """Windows of ``num_frames`` frames ``frame_stride`` apart, every start of every rendered clip."""

    def __init__(
        self, speaker_ids: list[str], frames: torch.Tensor, num_frames: int, frame_stride: int
    ) -> None:
        self.speaker_ids, self.frames = speaker_ids, frames
        self.offsets = torch.arange(num_frames) * frame_stride
        self.starts = frames.shape[1] - int(self.offsets[-1])
        if self.starts < 1:
            raise ValueError(
                f"RenderedFrames: clips of {frames.shape[1]} frames are too short for {num_frames} frames "
                f"{frame_stride} apart (raise clip_seconds)"
            )

    def __len__(self) -> int:
        return len(self.speaker_ids) * self.starts

    def __getitem__(self, index: int) -> dict:
        clip, start = divmod(int(index), self.starts)
        return {"frames": self.frames[clip, start + self.offsets], "speaker_id": self.speaker_ids[clip]}


class RenderedSpeakersDataModule(NoLoaderState, PoseVideoDataModule):
    """Train on rendered speakers (in memory), validate / test on the shards' held-out corpus speakers.

    Args beyond ``PoseVideoDataModule``'s: ``num_speakers``, ``first_speaker`` (the first speaker index;
    corpus speakers are refused), ``clip_seconds`` (frames per speaker: x 25), ``corpus_seed`` (the
    generator's seed). Training batches are built in the main process (no workers: the frames are in
    memory); a resumed run starts the seeded order over (there is no epoch position to restore).
    """

    def __init__(
        self,
        data_dir: str = "data/demo/shards",
        batch_size: int = 4,
        num_workers: int = 0,
        num_frames: int = 4,
        frame_stride: int = 4,
        height: int = 64,
        width: int = 64,
        seed: int = 0,
        eval_batch_size: int | None = None,
        num_speakers: int = 150,
        first_speaker: int = 100,
        clip_seconds: float = 4.0,
        corpus_seed: int = 0,
    ) -> None:
        super().__init__(
            data_dir, batch_size=batch_size, num_workers=num_workers, num_frames=num_frames,
            frame_stride=frame_stride, height=height, width=width, seed=seed, eval_batch_size=eval_batch_size,
        )  # fmt: skip
        self.save_hyperparameters()
        if num_speakers < 1 or first_speaker < 0:
            raise ValueError(
                f"RenderedSpeakersDataModule: num_speakers must be >= 1 and first_speaker >= 0, got "
                f"{num_speakers} and {first_speaker}"
            )
        self.num_speakers, self.first_speaker = int(num_speakers), int(first_speaker)
        self.clip_seconds, self.corpus_seed = float(clip_seconds), int(corpus_seed)
        self.rendered: RenderedFrames | None = None

    def render(self) -> tuple[list[str], torch.Tensor, list]:
        """The speakers' clips, rendered (see :func:`render_clips`), after checking that none is a corpus speaker."""
        check_not_corpus(self.shards, self.first_speaker, self.num_speakers, type(self).__name__)
        log.info("rendering %d synthetic speakers (%.1f s each) for training", self.num_speakers, self.clip_seconds)
        t0 = time.perf_counter()
        ids, frames, clips = render_clips(self.corpus_seed, self.first_speaker, self.num_speakers, self.clip_seconds,
                                          self.height, self.width)  # fmt: skip
        log.info("rendered %d frames in %.1f s", frames.shape[0] * frames.shape[1], time.perf_counter() - t0)
        return ids, frames, clips

    def rendered_frames(self) -> RenderedFrames:
        if self.rendered is None:
            ids, frames, _ = self.render()
            self.rendered = RenderedFrames(ids, frames, self.num_frames, self.frame_stride)
        return self.rendered

    def train_dataloader(self) -> DataLoader:
        return seeded_loader(self.rendered_frames(), self.batch_size, self.seed)
