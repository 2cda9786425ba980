"""Stage 2: a MimicMotion-style pose-guided video generator on Stable Video Diffusion parts.

One concept per module: ``pose_net`` (pose encoder), ``pose_injection`` (pose features added after the
UNet's ``conv_in``), ``conditioning`` (CLIP image embedding, reference latent, added time ids),
``vae_latents`` (chunked VAE encode/decode), ``edm`` (EDM preconditioning, sigma sampling, loss weight),
``hand_mask`` (hand boxes -> latent mask), ``pose_alignment`` (driving skeleton -> reference body),
``latent_fusion`` (overlapping tiles with triangular weights), ``sampling`` (Euler loop with per-frame
guidance), ``generate`` (``generate_video``), ``parts`` (building the diffusers/transformers parts),
``checkpoint_loading`` (MimicMotion-style checkpoints), ``checkpointing`` (gradient checkpointing and
FSDP wrapping), ``framing`` (crop/resize of frames and keypoints), ``video_generator`` (the
LightningModule). Submodules are imported explicitly; this package imports nothing heavy.
"""
