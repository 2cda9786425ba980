"""`SkeletonPipeline`: audio of any length + a reference skeleton -> a skeleton sequence (Stage 1).

The models are passed in (audio encoder, denoiser, diffusion process, guider, codec); the pipeline owns
the one sampling loop (the diffusers scheduler owns each step, the guider mixes the conditional and
unconditional passes), the windows with their cross-faded overlaps (``window_chain``) and the final
Savitzky-Golay smoothing. ``SkeletonDiffusion.pipeline()`` builds one from a trained module (its EMA
weights, statistics and default reference); the sample callbacks, the evaluation and
``generation/sample_skeleton.py`` all generate through it.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from csg_lightning.models.diffusion import DiffusionProcess
from csg_lightning.models.representation import generated_scores
from csg_lightning.models.skeleton_codec import SkeletonCodec
from csg_lightning.pipelines.guider import ConstantGuider, Guider
from csg_lightning.pipelines.window_chain import chain_windows
from csg_lightning.skeleton.anchoring import anchor_start
from csg_lightning.skeleton.layout import NUM_KEYPOINTS
from csg_lightning.skeleton.smoothing import SmoothingConfig, savgol_smooth, savgol_smooth_parts
from csg_lightning.timing import FPS, SAMPLES_PER_FRAME, frames_for_samples


class SkeletonPipeline:
    """Generation with a Stage-1 model's parts.

    ``window_frames`` W and ``prefix_frames`` P_data: the training windows; ``model_prefix``: the prefix
    frames the denoiser sees (P_data, or 0 for the no-prefix ablation); ``crossfade_frames``: overlap of
    consecutive generation windows; ``default_reference``: (keypoints [134, 2], scores [134]) used when
    a call gives none.
    """

    def __init__(
        self,
        audio_encoder: nn.Module,
        denoiser: nn.Module,
        diffusion: DiffusionProcess,
        guider: Guider,
        codec: SkeletonCodec,
        window_frames: int,
        prefix_frames: int,
        model_prefix: int | None = None,
        crossfade_frames: int = 25,
        default_reference: tuple[torch.Tensor, torch.Tensor] | None = None,
        smoothing_window: int = 11,
        smoothing_order: int = 2,
        lip_windows: tuple[int | None, int | None] = (None, None),
    ) -> None:
        self.audio_encoder, self.denoiser, self.diffusion = audio_encoder, denoiser, diffusion
        self.guider, self.codec = guider, codec
        self.window_frames, self.prefix_frames = int(window_frames), int(prefix_frames)
        self.model_prefix = self.prefix_frames if model_prefix is None else int(model_prefix)
        self.crossfade_frames = int(crossfade_frames)
        self.default_reference = default_reference
        self.smoothing_window, self.smoothing_order = int(smoothing_window), int(smoothing_order)
        # (outer, inner) lip windows; None: ``smoothing_window`` (the release: 7 and 5, SkeletonDiffusion's
        # outer_lip_window / inner_lip_window)
        self.lip_windows = tuple(lip_windows)

    @classmethod
    def from_module(cls, module) -> SkeletonPipeline:
        """The pipeline of a trained ``SkeletonDiffusion`` (its parts, window sizes and default reference)."""
        if module.window_frames is None or module.prefix_frames is None or not bool(module.codec.has_stats):
            raise RuntimeError(
                "SkeletonDiffusion: the model has no window/stats yet (train it or load a checkpoint written "
                "by training)"
            )
        return cls(
            module.audio_encoder, module.denoiser, module.diffusion, module.guider, module.codec,
            module.window_frames, module.prefix_frames, module.model_prefix, module.crossfade_frames,
            default_reference=(module.default_reference_keypoints, module.default_reference_scores),
            lip_windows=getattr(module, "lip_windows", (None, None)),
        )  # fmt: skip

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def _guider(self, guidance_scale: float | None) -> Guider:
        return self.guider if guidance_scale is None else ConstantGuider(guidance_scale)

    @contextmanager
    def _inference(self):
        """No gradients and the networks in eval mode (their modes restored afterwards)."""
        nets = (self.audio_encoder, self.denoiser, self.codec)
        modes = [net.training for net in nets]
        for net in nets:
            net.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            for net, mode in zip(nets, modes, strict=True):
                net.train(mode)

    # ------------------------------------------------------------------ the sampling loop
    def guided_prediction(self, x: torch.Tensor, timesteps: torch.Tensor, audio: torch.Tensor,
                          num_prefix: int, guider: Guider) -> torch.Tensor:  # fmt: skip
        """Denoiser output [B, W, F] for x [B, P+W, F], mixed by ``guider`` (one batched pass of 2B)."""
        b = x.shape[0]
        if not guider.needs_uncond:
            drop = torch.zeros(b, dtype=torch.bool, device=x.device)
            return self.denoiser(x, timesteps, audio, drop, num_prefix)
        drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(x.device)
        out = self.denoiser(torch.cat([x, x]), torch.cat([timesteps, timesteps]), torch.cat([audio, audio]),
                            drop, num_prefix)  # fmt: skip
        cond, uncond = out.chunk(2)
        return guider.combine(cond, uncond, frame_dim=1)

    @torch.no_grad()
    def denoise(self, prefix: torch.Tensor, audio: torch.Tensor, window: int, num_steps: int | None = None,
                guider: Guider | None = None, generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """``window`` frames following a clean prefix: prefix [B, P, F] (P may be 0), audio [B, P+W, C]
        -> [B, W, F] normalised features. The initial noise is drawn on the CPU from ``generator``, so a
        seed gives the same samples on every device."""
        b, p, f = prefix.shape
        guider = self.guider if guider is None else guider
        scheduler = self.diffusion.make_sampler()
        scheduler.set_timesteps(int(num_steps or self.diffusion.num_inference_steps), device=prefix.device)
        noise = torch.randn((b, window, f), generator=generator, dtype=torch.float32)
        x = noise.to(prefix.device) * scheduler.init_noise_sigma
        step_kwargs = {}
        step_params = inspect.signature(scheduler.step).parameters
        if "eta" in step_params:
            step_kwargs["eta"] = self.diffusion.eta
        if "generator" in step_params:
            step_kwargs["generator"] = generator
        for t in scheduler.timesteps:
            x_in = scheduler.scale_model_input(x, t)
            model_in = torch.cat([prefix.to(x_in.dtype), x_in], dim=1)
            timesteps = torch.full((b,), int(t), device=prefix.device, dtype=torch.long)
            pred = self.guided_prediction(model_in, timesteps, audio, p, guider).float()
            x = scheduler.step(pred, t, x, **step_kwargs).prev_sample
        return x

    # ------------------------------------------------------------------ generation
    def sample_batch(self, batch: dict, num_steps: int | None = None, guidance_scale: float | None = None,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """The W window frames after each item's prefix (prefix + audio of a datamodule batch as
        conditioning) -> keypoints [B, W, 134, 2] pixels, scores [B, W, 134]."""
        with self._inference():
            prefix, x0, _, audio = self.codec.split(batch, self.prefix_frames, self.model_prefix, self.audio_encoder)
            gen = torch.Generator().manual_seed(int(seed))
            feats = self.denoise(prefix, audio, x0.shape[1], num_steps, self._guider(guidance_scale), gen)
            kp = self.codec.decode(feats, batch["reference_keypoints"].to(feats.device).float())
            return kp, generated_scores(batch["reference_scores"].to(feats.device), kp.shape[1])

    def _reference(self, keypoints, scores) -> tuple[torch.Tensor, torch.Tensor]:
        if keypoints is None:
            if self.default_reference is None:
                raise RuntimeError("SkeletonPipeline: no reference skeleton given and no default reference")
            kp, sc = self.default_reference
        else:
            kp = torch.as_tensor(np.asarray(keypoints, dtype=np.float32))
            sc = torch.as_tensor(np.ones(NUM_KEYPOINTS, np.float32) if scores is None
                                 else np.asarray(scores, dtype=np.float32))  # fmt: skip
        return kp.to(self.device).float(), sc.to(self.device).float()

    def __call__(self, audio: np.ndarray | torch.Tensor, reference_keypoints: np.ndarray | None = None,
                 reference_scores: np.ndarray | None = None, *, num_steps: int | None = None,
                 guidance_scale: float | None = None, seed: int | None = None,
                 smooth: bool = True, anchor_seconds: float | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Skeletons for a whole recording: audio [N] float32 16 kHz mono, reference [134, 2] pixels and
        [134] scores -> keypoints float32 [T, 134, 2] and scores [T, 134], T = round(N * 25 / 16000),
        generated window by window with cross-faded overlaps, then smoothed (``smooth``). ``anchor_seconds``:
        frame 0 is moved onto the reference pose and the correction fades with that time constant
        (:func:`~csg_lightning.skeleton.anchoring.anchor_start`; None: off)."""
        audio_t = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(-1)
        num_frames = frames_for_samples(audio_t.numel())
        ref_kp, ref_sc = self._reference(reference_keypoints, reference_scores)
        if num_frames == 0:
            return np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros((0, NUM_KEYPOINTS), np.float32)
        window, p = self.window_frames, self.model_prefix
        overlap = min(self.crossfade_frames, window - max(p, 1))
        frames_needed = (num_frames + 2 * window) * SAMPLES_PER_FRAME
        padded = torch.zeros(p * SAMPLES_PER_FRAME + frames_needed)
        n = min(audio_t.numel(), frames_needed)
        padded[p * SAMPLES_PER_FRAME : p * SAMPLES_PER_FRAME + n] = audio_t[:n]
        gen = torch.Generator()
        gen.manual_seed(int(seed)) if seed is not None else gen.seed()
        guider, device = self._guider(guidance_scale), self.device

        def one_window(prefix: torch.Tensor, start: int) -> torch.Tensor:
            chunk = padded[start * SAMPLES_PER_FRAME : (start + p + window) * SAMPLES_PER_FRAME].to(device)
            audio_feats = self.audio_encoder(chunk[None], p + window)
            return self.denoise(prefix[None], audio_feats, window, num_steps, guider, gen)[0]

        with self._inference():
            ref_feat = self.codec.reference_features(ref_kp, ref_sc)
            feats = chain_windows(one_window, num_frames, window, p, overlap, ref_feat[None].expand(p, -1))
            kp = self.codec.decode(feats[None], ref_kp[None])[0]
            sc = generated_scores(ref_sc[None], num_frames)[0]
        kp = kp.cpu().numpy().astype(np.float32)
        if smooth:
            kp = self._smooth_track(kp)
        if anchor_seconds is not None:
            kp = anchor_start(kp, ref_kp.cpu().numpy(), anchor_seconds * FPS)
        return kp, sc.cpu().numpy().astype(np.float32)

    def smooth(self, keypoints: torch.Tensor) -> torch.Tensor:
        """[B, T, 134, 2] -> the same smoothed along T (what :meth:`__call__` applies), on the CPU."""
        kp = keypoints.detach().cpu().numpy()
        return torch.from_numpy(np.stack([self._smooth_track(k) for k in kp]))

    def _smooth_track(self, keypoints: np.ndarray) -> np.ndarray:
        """[T, 134, 2] -> smoothed: one window for every point, or the lips' own (``lip_windows``)."""
        w = self.smoothing_window
        outer, inner = (w if v is None else int(v) for v in self.lip_windows)
        if outer == w and inner == w:
            return savgol_smooth(keypoints, w, self.smoothing_order)
        windows = SmoothingConfig(w, self.smoothing_order, outer, inner).windows()
        return savgol_smooth_parts(keypoints, windows, self.smoothing_order)
