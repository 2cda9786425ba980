"""``evaluate_video``: score a folder of generated videos against ground-truth videos.

Pairs: every ``GEN/<name>.mp4`` with ``REF/<name>.mp4`` or ``REF/<name>/video.mp4`` (a clip folder).
Both are decoded (``io.mp4.read_frames``) and cut to the shorter length; generated frames are resized
to the reference size when they differ. Metrics: SSIM and PSNR (torchmetrics, per frame, data range 1),
LPIPS (``metrics.lpips``), FID over frames (``metrics.fid``) and FVD over 16-frame clips
(``metrics.fvd``). LPIPS / FID / FVD need local weight files; a metric whose file is not given is
reported as null with a note, and a given file that is missing raises ``MissingWeightsError``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from csg_lightning.evaluation.report import write_report
from csg_lightning.evaluation.skeleton import file_hash
from csg_lightning.io.mp4 import read_frames

log = logging.getLogger(__name__)
VIDEO_METRICS = ["SSIM", "PSNR", "LPIPS", "FID", "FVD"]


def pair_videos(generated_dir: str | Path, reference_dir: str | Path) -> list[tuple[Path, Path]]:
    """(generated, reference) mp4 pairs matched by name; ValueError when a generated video has no reference."""
    generated_dir, reference_dir = Path(generated_dir), Path(reference_dir)
    gens = sorted(p for p in generated_dir.glob("*.mp4") if not p.name.startswith("."))
    if not gens:
        raise ValueError(f"{generated_dir}: no .mp4 files to evaluate")
    pairs = []
    for gen in gens:
        for ref in (reference_dir / gen.name, reference_dir / gen.stem / "video.mp4"):
            if ref.is_file():
                pairs.append((gen, ref))
                break
        else:
            raise ValueError(
                f"{gen}: no reference video {reference_dir / gen.name} or {reference_dir / gen.stem / 'video.mp4'}"
            )
    return pairs


def _load_pair(gen: Path, ref: Path, max_frames: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """-> uint8 [T, 3, H, W] generated (resized to the reference) and reference frames."""
    g = torch.from_numpy(read_frames(gen)).permute(0, 3, 1, 2)
    r = torch.from_numpy(read_frames(ref)).permute(0, 3, 1, 2)
    t = min(g.shape[0], r.shape[0], max_frames or 1 << 30)
    g, r = g[:t], r[:t]
    if g.shape[-2:] != r.shape[-2:]:
        g = F.interpolate(g.float(), size=r.shape[-2:], mode="bilinear", align_corners=False)
        g = g.round().clamp(0, 255).to(torch.uint8)
    return g, r


def evaluate_video(
    generated_dir: str | Path,
    reference_dir: str | Path,
    out_dir: str | Path | None = None,
    fid_weights: str | Path | None = None,
    fvd_weights: str | Path | None = None,
    lpips_weights: str | Path | None = None,
    lpips_net: str = "alex",
    fid_forward_kwargs: dict | None = None,
    fvd_forward_kwargs: dict | None = None,
    fvd_clip_frames: int = 16,
    fvd_size: int = 224,
    max_frames: int | None = None,
    chunk: int = 16,
) -> dict:
    """Score generated videos against references; returns (and writes, when ``out_dir``) the report."""
    pairs = pair_videos(generated_dir, reference_dir)
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
    psnr = PeakSignalNoiseRatio(data_range=1.0)
    metrics: dict = {}
    notes = []
    if lpips_weights is not None:
        from csg_lightning.metrics.lpips import LPIPS

        metrics["LPIPS"] = LPIPS(lpips_weights, lpips_net)
    if fid_weights is not None:
        from csg_lightning.metrics.fid import FID

        metrics["FID"] = FID(fid_weights, fid_forward_kwargs)
    if fvd_weights is not None:
        from csg_lightning.metrics.fvd import FVD

        metrics["FVD"] = FVD(fvd_weights, fvd_clip_frames, fvd_size, fvd_forward_kwargs)
    for name, flag in (("LPIPS", "--lpips-weights"), ("FID", "--fid-weights"), ("FVD", "--fvd-weights")):
        if name not in metrics:
            notes.append(f"{name} not computed: no weight file given ({flag})")
    frames = 0
    for gen, ref in pairs:
        g, r = _load_pair(gen, ref, max_frames)
        frames += g.shape[0]
        for s in range(0, g.shape[0], chunk):
            gf, rf = g[s : s + chunk].float() / 255, r[s : s + chunk].float() / 255
            ssim.update(gf, rf)
            psnr.update(gf, rf)
            if "LPIPS" in metrics:
                metrics["LPIPS"].update(gf, rf)
            if "FID" in metrics:
                metrics["FID"].update(r[s : s + chunk], real=True)
                metrics["FID"].update(g[s : s + chunk], real=False)
        if "FVD" in metrics:
            metrics["FVD"].update(r, real=True)
            metrics["FVD"].update(g, real=False)
        log.info("%s: %d frames", gen.name, g.shape[0])
    values = {"SSIM": float(ssim.compute()), "PSNR": float(psnr.compute())}
    for name in ("LPIPS", "FID", "FVD"):
        try:
            values[name] = float(metrics[name].compute()) if name in metrics else float("nan")
        except (RuntimeError, ValueError) as err:  # e.g. fewer than 2 FVD clips
            values[name] = float("nan")
            notes.append(f"{name} not computed: {err}")
    meta = {
        "generated_dir": str(generated_dir),
        "reference_dir": str(reference_dir),
        "num_videos": len(pairs),
        "num_frames": frames,
    }
    for name, path in (
        ("fid_weights", fid_weights),
        ("fvd_weights", fvd_weights),
        ("lpips_weights", lpips_weights),
    ):
        if path is not None:
            meta[name] = str(path)
            meta[f"{name}_sha256"] = file_hash(path)
    rows = {"generated": values}
    if out_dir is None:
        return {**rows, "meta": meta}
    return write_report(Path(out_dir), "Video evaluation", rows, meta, VIDEO_METRICS, notes)
