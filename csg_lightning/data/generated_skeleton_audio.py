"""``GeneratedSkeletonAudioDataModule``: Stage-1 training windows of freshly generated synthetic speakers.

The demo corpus has six training speakers. A skeleton diffusion model trained on them learns *their*
bodies and gesture habits: on a held-out speaker its first frames start 1.5-2.7 px (at 64 px) off the
reference pose and its wrists move twice as far as the real ones. Like the demo VAE and Stage 2
(:mod:`~csg_lightning.data.rendered_speakers`, :mod:`~csg_lightning.data.rendered_pose_video`), Stage 1 can
see more of the world the corpus comes from: ``num_speakers`` synthetic speakers (none of them a corpus
speaker; refused by name) each speak ``clips_per_speaker`` clips of ``clip_seconds``, generated in memory
without video (skeletons with estimator-like scores, and speech: ~0.1 s per 12 s clip). Examples are the
shards' (:func:`~csg_lightning.data.skeleton_audio.window_example`: same fields, the shards' normalisation
statistics), one per (clip, start), drawn at random (seeded). Validation and test: the shards' held-out
corpus speakers, exactly as in ``SkeletonAudioDataModule``.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from csg_lightning.data.corpus.generate import Clip, make_clip
from csg_lightning.data.corpus_overlap import check_not_corpus
from csg_lightning.data.seeded_loader import NoLoaderState, seeded_loader
from csg_lightning.data.skeleton_audio import SkeletonAudioDataModule, window_example
from csg_lightning.io.audio import to_int16

log = logging.getLogger(__name__)


class GeneratedClipWindows(Dataset):
    """Windows of ``num_prefix + window`` frames: index -> (clip, start), every start of every clip.

    ``clips``: dicts with the shard record's fields (keypoints float32 [T, 134, 2], scores [T, 134], audio
    int16 [T * 640], clip_id, speaker_id, width, height), all of the same length T."""

    def __init__(self, clips: list[dict], stats: dict, window: int, num_prefix: int) -> None:
        if not clips:
            raise ValueError("GeneratedClipWindows: no clips")
        lengths = {len(c["keypoints"]) for c in clips}
        if len(lengths) != 1:
            raise ValueError(f"GeneratedClipWindows: the clips must have one length, got {sorted(lengths)} frames")
        self.clips, self.window, self.num_prefix = clips, int(window), int(num_prefix)
        self.mean = np.asarray(stats["mean"], dtype=np.float32)
        self.std = np.asarray(stats["std"], dtype=np.float32)
        self.starts = lengths.pop() - (self.num_prefix + self.window) + 1
        if self.starts < 1:
            raise ValueError(
                f"GeneratedClipWindows: clips of {lengths} frames are shorter than a window of "
                f"{self.num_prefix} + {self.window} frames (raise clip_seconds)"
            )

    def __len__(self) -> int:
        return len(self.clips) * self.starts

    def __getitem__(self, index: int) -> dict:
        clip, start = divmod(int(index), self.starts)
        return window_example(self.clips[clip], start, self.num_prefix, self.window, self.mean, self.std)


def clip_record(clip: Clip) -> dict:
    """A generated clip -> the shard record's fields (what ``csg-data shard`` stores of it; no video)."""
    return {
        "clip_id": clip.clip_id, "speaker_id": clip.speaker.speaker_id, "keypoints": clip.keypoints,
        "scores": clip.scores, "audio": to_int16(clip.speech.audio), "width": clip.size, "height": clip.size,
    }  # fmt: skip


class GeneratedSkeletonAudioDataModule(NoLoaderState, SkeletonAudioDataModule):
    """Train Stage 1 on generated speakers (in memory), validate / test on the shards' held-out corpus speakers.

    Args beyond ``SkeletonAudioDataModule``'s: ``num_speakers``, ``first_speaker`` (the first speaker index;
    corpus speakers are refused), ``clips_per_speaker``, ``clip_seconds`` (must hold one window),
    ``corpus_seed`` (the generator's seed). The normalisation statistics and the default reference are the
    shards' (those of the corpus's training split). Training batches are built in the main process (the
    windows are cut from memory); a resumed run starts the seeded order over (no epoch position to restore).
    Precomputed audio features are not used (the generated speech has none): the model encodes raw audio.
    """

    def __init__(
        self,
        data_dir: str = "data/demo/shards",
        batch_size: int = 8,
        window: int = 250,
        num_prefix: int = 25,
        seed: int = 0,
        eval_batch_size: int | None = None,
        num_speakers: int = 200,
        first_speaker: int = 300,
        clips_per_speaker: int = 1,
        clip_seconds: float = 12.0,
        corpus_seed: int = 0,
    ) -> None:
        super().__init__(data_dir, batch_size=batch_size, num_workers=0, window=window, num_prefix=num_prefix,
                         seed=seed, eval_batch_size=eval_batch_size, audio_features=None)  # fmt: skip
        self.save_hyperparameters()
        if num_speakers < 1 or first_speaker < 0 or clips_per_speaker < 1:
            raise ValueError(
                f"GeneratedSkeletonAudioDataModule: num_speakers and clips_per_speaker must be >= 1 and "
                f"first_speaker >= 0, got {num_speakers}, {clips_per_speaker} and {first_speaker}"
            )
        self.num_speakers, self.first_speaker = int(num_speakers), int(first_speaker)
        self.clips_per_speaker, self.clip_seconds = int(clips_per_speaker), float(clip_seconds)
        self.corpus_seed = int(corpus_seed)
        self.generated: GeneratedClipWindows | None = None

    def generate(self) -> list[dict]:
        """The speakers' clips as shard-record fields, after checking that none is a corpus speaker."""
        check_not_corpus(self.shards, self.first_speaker, self.num_speakers, type(self).__name__)
        t0 = time.perf_counter()
        speakers = range(self.first_speaker, self.first_speaker + self.num_speakers)
        jobs = [(i, k) for i in speakers for k in range(self.clips_per_speaker)]
        clips = [clip_record(make_clip(self.corpus_seed, i, k, clip_seconds=self.clip_seconds))
                 for i, k in tqdm(jobs, desc="generating speakers for Stage 1", unit="clip")]  # fmt: skip
        log.info("generated %d clips of %d speakers in %.1f s", len(clips), self.num_speakers, time.perf_counter() - t0)
        return clips

    def generated_windows(self) -> GeneratedClipWindows:
        if self.generated is None:
            self.generated = GeneratedClipWindows(self.generate(), self.stats, self.window, self.num_prefix)
        return self.generated

    def train_dataloader(self) -> DataLoader:
        return seeded_loader(self.generated_windows(), self.batch_size, self.seed)
