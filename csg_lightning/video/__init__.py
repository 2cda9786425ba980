"""Stage 2: a MimicMotion-style pose-guided video generator on Stable Video Diffusion parts.

One concept per module: ``pose_net`` (pose encoder), ``pose_injection`` (pose features added after the
UNet's ``conv_in``), ``conditioning`` (CLIP image embedding, reference latent, added time ids),
``vae_latents`` (chunked VAE encode/decode), ``edm`` (EDM preconditioning, sigma sampling, loss weight),
``edm_loss`` (the training objective as an object: ``EDMLoss``, hand-region weighting),
``warmup_cosine_schedule`` (the LR schedule callable), ``pose_alignment`` (driving skeleton -> reference
body), ``latent_fusion`` (overlapping tiles with triangular weights), ``pixel_range`` (uint8 <-> [-1, 1]),
``svd_parts`` (the diffusers/transformers parts: random from configs or from a local SVD folder, as
``class_path`` targets), ``mimicmotion_weights`` (loading MimicMotion-style checkpoints),
``gradient_checkpointing`` (gradient checkpointing and FSDP wrapping), ``video_generator`` (the
LightningModule), ``generate`` (``generate_video`` and ``python -m csg_lightning.video.generate``).
The sampling loop is :class:`csg_lightning.pipelines.video_pipeline.VideoPipeline`; the crop of frames
and keypoints (``data.cover_crop``), hand masks (``data.hand_mask``), the latent grid
(``data.latent_grid``) and pose drawing lives in ``skeleton.drawing``.
Submodules are imported explicitly; this package imports nothing heavy.
"""
