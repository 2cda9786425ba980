"""Video metrics: FID / FVD / LPIPS load real weight files (tiny random ones here) and nothing is downloaded;
missing files give clear errors; ``evaluate_video`` scores demo-corpus videos against perturbed copies."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from csg_lightning.metrics.fid import FID
from csg_lightning.metrics.fvd import FVD
from csg_lightning.metrics.lpips import LPIPS, build_lpips, export_lpips_weights
from csg_lightning.metrics.weights import MissingWeightsError


class TinyInception(nn.Module):
    """Stand-in for the Inception TorchScript: uint8 [N, 3, H, W] -> [N, 8]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x.float() / 255.0)).mean(dim=(2, 3))


class TinyI3D(nn.Module):
    """Stand-in for the I3D TorchScript: float [N, 3, T, H, W] -> [N, 8]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x)).mean(dim=(2, 3, 4))


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("metric_weights")
    files = {"fid": root / "inception.pt", "fvd": root / "i3d.pt", "lpips": root / "lpips_squeeze.pth"}
    torch.jit.script(TinyInception()).save(str(files["fid"]))
    torch.jit.script(TinyI3D()).save(str(files["fvd"]))
    torch.save(build_lpips("squeeze").state_dict(), files["lpips"])
    return files


def test_fid_loads_a_local_torchscript_and_uses_the_shared_frechet_code(weights):
    fid = FID(weights["fid"])
    gen = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8, generator=gen)
    fid.update(real, real=True)
    fid.update(real, real=False)
    assert float(fid.compute()) == pytest.approx(0.0, abs=1e-6)
    fid.reset()
    fid.update(real, real=True)
    fid.update((real // 2), real=False)
    assert float(fid.compute()) > 1e-4


def test_fvd_loads_a_local_torchscript(weights):
    fvd = FVD(weights["fvd"], clip_frames=4, size=16)
    gen = torch.Generator().manual_seed(1)
    video = torch.randint(0, 256, (2, 12, 3, 20, 20), dtype=torch.uint8, generator=gen)
    fvd.update(video, real=True)  # 2 videos x 3 clips
    fvd.update(video, real=False)
    assert float(fvd.compute()) == pytest.approx(0.0, abs=1e-6)
    fvd.reset()
    fvd.update(video, real=True)
    fvd.update(255 - video, real=False)
    assert float(fvd.compute()) > 1e-5


def test_lpips_loads_a_local_state_dict_and_exports_from_torchvision_weights(weights, tmp_path):
    lpips = LPIPS(weights["lpips"], net_type="squeeze")
    gen = torch.Generator().manual_seed(2)
    a = torch.rand(2, 3, 32, 32, generator=gen)
    lpips.update(a, a)
    assert float(lpips.compute()) == pytest.approx(0.0, abs=1e-6)
    lpips.update(a, torch.rand(2, 3, 32, 32, generator=gen))
    assert float(lpips.compute()) > 0
    # the loaded weights are the file's, not torchvision's or random ones
    expected = torch.load(weights["lpips"], weights_only=True)
    assert all(torch.equal(v, expected[k]) for k, v in lpips.net.state_dict().items())
    import torchvision

    backbone = tmp_path / "squeezenet1_1.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), backbone)
    out = export_lpips_weights(backbone, tmp_path / "lpips.pth", "squeeze")
    exported = LPIPS(out, net_type="squeeze")
    tv = torch.load(backbone, weights_only=True)
    assert torch.equal(exported.net.state_dict()["net.slices.0.0.weight"], tv["features.0.weight"])
    with pytest.raises(ValueError, match="does not hold LPIPS-alex weights"):
        LPIPS(out, net_type="alex")


@pytest.mark.parametrize("cls, kwargs", [(FID, {}), (FVD, {}), (LPIPS, {})], ids=["FID", "FVD", "LPIPS"])
def test_missing_weight_file_is_a_clear_error(cls, kwargs, tmp_path):
    missing = tmp_path / "nowhere" / "weights.pt"
    with pytest.raises(
        MissingWeightsError, match=rf"{cls.__name__}: weight file not found: .*weights\.pt\. Put "
    ):
        cls(missing, **kwargs)
    with pytest.raises(MissingWeightsError, match="no weight file given"):
        cls(None, **kwargs)


def test_evaluate_video_on_demo_corpus_videos(weights, tmp_path):
    from csg_lightning.data.corpus import generate_corpus
    from csg_lightning.eval_cli import main
    from csg_lightning.io.mp4 import read_frames, write_mp4

    clips = generate_corpus(tmp_path / "clips", num_speakers=2, clips_per_speaker=1, clip_seconds=1.4, seed=0,
                            video=True, video_size=64, progress=False)  # fmt: skip
    gen_dir = tmp_path / "generated"
    for clip in clips:
        frames = read_frames(clip / "video.mp4").astype(np.int16)
        noisy = np.clip(frames + np.random.default_rng(0).integers(-20, 21, frames.shape), 0, 255).astype(
            np.uint8
        )
        write_mp4(gen_dir / f"{clip.name}.mp4", noisy, fps=25)
    out = tmp_path / "report"
    main(["video", "--generated", str(gen_dir), "--reference", str(tmp_path / "clips"), "--out", str(out),
          "--fid-weights", str(weights["fid"]), "--fvd-weights", str(weights["fvd"]),
          "--lpips-weights", str(weights["lpips"]), "--lpips-net", "squeeze"])  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    values = report["generated"]
    assert set(values) == {"SSIM", "PSNR", "LPIPS", "FID", "FVD"}
    assert 0.1 < values["SSIM"] < 0.999 and 15 < values["PSNR"] < 45
    assert all(
        values[k] is not None and math.isfinite(values[k]) and values[k] >= 0 for k in ("LPIPS", "FID", "FVD")
    )
    assert report["meta"]["num_videos"] == 2 and len(report["meta"]["fid_weights_sha256"]) == 16
    assert "| generated |" in (out / "report.md").read_text()
    # without weight files the Fréchet/LPIPS metrics are skipped with a note, never downloaded
    main(
        [
            "video",
            "--generated",
            str(gen_dir),
            "--reference",
            str(tmp_path / "clips"),
            "--out",
            str(tmp_path / "r2"),
        ]
    )
    plain = json.loads((tmp_path / "r2" / "report.json").read_text())["generated"]
    assert plain["FID"] is None and plain["SSIM"] == pytest.approx(values["SSIM"])
    assert "FID not computed: no weight file given" in (tmp_path / "r2" / "report.md").read_text()
    with pytest.raises(MissingWeightsError, match="FID"):
        main(["video", "--generated", str(gen_dir), "--reference", str(tmp_path / "clips"),
              "--out", str(tmp_path / "r3"), "--fid-weights", str(tmp_path / "absent.pt")])  # fmt: skip
