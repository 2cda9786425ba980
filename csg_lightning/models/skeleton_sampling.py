"""Sampling API of `SkeletonDiffusion` (``sample_batch``, ``generate``, ``predict_step``) as a mixin.

Kept apart from the training code; the mixin uses the module's ``denoiser``, ``audio_encoder``,
``process``, buffers and hyper-parameters, and runs with the EMA weights when there are any.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from csg_lightning.models.frame_alignment import SAMPLES_PER_FRAME, num_frames_for
from csg_lightning.models.long_generation import generate_long, savgol_smooth
from csg_lightning.models.representation import decode_features, encode_keypoints, generated_scores
from csg_lightning.models.sampling import sample_window
from csg_lightning.skeleton.layout import NUM_KEYPOINTS


class SkeletonSamplingMixin:
    """Sampling methods shared by the Stage-1 LightningModule (see ``skeleton_diffusion.py``)."""

    def _sampling_args(self, num_steps: int | None, guidance_scale: float | None) -> tuple[int, float]:
        steps = int(num_steps if num_steps is not None else self.hparams.num_inference_steps)
        scale = float(guidance_scale if guidance_scale is not None else self.hparams.guidance_scale)
        return steps, scale

    def _run_eval(self, fn):
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad(), self._averaged():
                return fn()
        finally:
            self.train(was_training)

    def sample_batch(
        self, batch: dict, num_steps: int | None = None, guidance_scale: float | None = None, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Generate the W window frames after each batch item's prefix (prefix + audio as conditioning).

        Returns keypoints [B, W, 134, 2] pixels (neck and legs from ``reference_keypoints``) and
        scores [B, W, 134] (1 for generated points, reference scores for the legs).
        """
        steps, scale = self._sampling_args(num_steps, guidance_scale)

        def run():
            prefix, x0, _, audio = self._split(batch)
            gen = torch.Generator().manual_seed(int(seed))
            feats = sample_window(self.denoiser, self.process, prefix, audio, x0.shape[1], steps, scale, gen)
            ref = batch["reference_keypoints"].to(self.device).float()
            kp = decode_features(
                feats,
                ref,
                self.hparams.local_representation,
                self.feature_mean,
                self.feature_std,
                self.hparams.frame_size,
            )
            return kp, generated_scores(batch["reference_scores"].to(self.device), kp.shape[1])

        return self._run_eval(run)

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Any]:
        keypoints, scores = self.sample_batch(batch, seed=batch_idx)
        return {"keypoints": keypoints, "scores": scores, "clip_id": batch.get("clip_id")}

    def generate(
        self,
        audio: np.ndarray | torch.Tensor,
        reference_keypoints: np.ndarray | None = None,
        reference_scores: np.ndarray | None = None,
        *,
        num_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        smooth: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Skeletons for a whole recording.

        audio [N] float32 16 kHz mono; reference [134, 2] pixels and [134] scores (default: the
        reference shipped in the checkpoint). Returns keypoints np.float32 [T, 134, 2] and scores
        [T, 134] with T = round(N * 25 / 16000), generated window by window with cross-faded overlaps.
        """
        window, p_data = self.hparams.window_frames, self.hparams.prefix_frames
        if window is None or p_data is None or not bool(self.has_stats):
            raise RuntimeError(
                "SkeletonDiffusion.generate: the model has no window/stats yet (train it or load a "
                "checkpoint written by training)"
            )
        steps, scale = self._sampling_args(num_steps, guidance_scale)
        audio_t = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(-1)
        num_frames = num_frames_for(audio_t.numel())
        if reference_keypoints is None:
            ref_kp, ref_sc = self.default_reference_keypoints, self.default_reference_scores
        else:
            ref_kp = torch.as_tensor(np.asarray(reference_keypoints, dtype=np.float32))
            ref_sc = torch.as_tensor(
                np.ones(NUM_KEYPOINTS, np.float32)
                if reference_scores is None
                else np.asarray(reference_scores, dtype=np.float32)
            )
        ref_kp, ref_sc = ref_kp.to(self.device).float(), ref_sc.to(self.device).float()
        if num_frames == 0:
            return np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros((0, NUM_KEYPOINTS), np.float32)
        window, p = int(window), self.model_prefix
        overlap = min(int(self.hparams.crossfade_frames), window - max(p, 1))
        frames_needed = (num_frames + 2 * window) * SAMPLES_PER_FRAME
        padded = torch.zeros(p * SAMPLES_PER_FRAME + frames_needed)
        n = min(audio_t.numel(), frames_needed)
        padded[p * SAMPLES_PER_FRAME : p * SAMPLES_PER_FRAME + n] = audio_t[:n]
        gen = torch.Generator()
        gen.manual_seed(int(seed)) if seed is not None else gen.seed()
        ref_feat = encode_keypoints(
            ref_kp,
            self.hparams.local_representation,
            self.feature_mean,
            self.feature_std,
            self.hparams.frame_size,
        )
        ref_feat = torch.nan_to_num(ref_feat)

        def one_window(prefix: torch.Tensor, start: int) -> torch.Tensor:
            chunk = padded[start * SAMPLES_PER_FRAME : (start + p + window) * SAMPLES_PER_FRAME].to(
                self.device
            )
            audio_feats = self.audio_encoder(chunk[None], p + window)
            return sample_window(
                self.denoiser, self.process, prefix[None], audio_feats, window, steps, scale, gen
            )[0]

        def run():
            first = ref_feat[None].expand(p, -1)
            feats = generate_long(one_window, num_frames, window, p, overlap, first)
            kp = decode_features(
                feats[None],
                ref_kp[None],
                self.hparams.local_representation,
                self.feature_mean,
                self.feature_std,
                self.hparams.frame_size,
            )[0]
            return kp, generated_scores(ref_sc[None], num_frames)[0]

        kp, sc = self._run_eval(run)
        kp = kp.cpu().numpy().astype(np.float32)
        if smooth:
            kp = savgol_smooth(kp, 11, 2)
        return kp, sc.cpu().numpy().astype(np.float32)
