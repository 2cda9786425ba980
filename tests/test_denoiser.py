"""The Stage-1 denoiser: shapes, conditioning paths, its size fragments (experiments/components/skeleton/denoiser)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from csg_lightning.models.denoiser import SkeletonDenoiser
from csg_lightning.models.fusion import ConcatFusion, CrossAttentionFusion

FRAGMENTS = Path(__file__).resolve().parents[1] / "experiments" / "components" / "skeleton"
FUSIONS = {"concat": ConcatFusion, "cross_attention": CrossAttentionFusion}

B, P, W, C = 2, 5, 12, 24


def _net(**kw) -> SkeletonDenoiser:
    torch.manual_seed(0)
    if isinstance(kw.get("fusion"), str):
        kw["fusion"] = FUSIONS[kw["fusion"]]
    cfg = {"width": 32, "depth": 2, "num_heads": 4, "ff_dim": 64, "dropout": 0.0, **kw}
    return SkeletonDenoiser(audio_dim=C, **cfg).eval()


def _inputs():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, P + W, 246, generator=g)
    t = torch.tensor([3, 77])
    audio = torch.randn(B, P + W, C, generator=g)
    return x, t, audio, torch.zeros(B, dtype=torch.bool)


@pytest.mark.parametrize("fusion", ["concat", "cross_attention"])
@pytest.mark.parametrize("timestep", ["token", "adaln"])
def test_output_is_the_window_only(fusion, timestep):
    net = _net(fusion=fusion, timestep_conditioning=timestep)
    x, t, audio, drop = _inputs()
    out = net(x, t, audio, drop, P)
    assert out.shape == (B, W, 246) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("fusion", ["concat", "cross_attention"])
def test_conditioning_paths(fusion):
    net = _net(fusion=fusion, timestep_conditioning="adaln")
    with torch.no_grad():  # make the zero-initialised AdaLN modulation non-trivial
        for m in net.modules():
            if isinstance(m, torch.nn.Linear) and m.weight.abs().sum() == 0:
                m.weight.normal_(0, 0.05)
    x, t, audio, drop = _inputs()
    base = net(x, t, audio, drop, P)
    # the prefix conditions the window
    x2 = x.clone()
    x2[:, :P] += 1.0
    assert not torch.allclose(net(x2, t, audio, drop, P), base, atol=1e-4)
    # the timestep matters
    assert not torch.allclose(net(x, t + 10, audio, drop, P), base, atol=1e-4)
    # window audio matters, prefix audio is replaced by zeros
    a2 = audio.clone()
    a2[:, P:] += 1.0
    assert not torch.allclose(net(x, t, a2, drop, P), base, atol=1e-4)
    a3 = audio.clone()
    a3[:, :P] = torch.randn(B, P, C)
    assert torch.allclose(net(x, t, a3, drop, P), base, atol=1e-5)
    # with the null embedding the audio is ignored
    drop_all = torch.ones(B, dtype=torch.bool)
    assert torch.allclose(net(x, t, audio, drop_all, P), net(x, t, a2, drop_all, P), atol=1e-5)


def test_no_prefix_and_batch_independence():
    net = _net()
    x, t, audio, drop = _inputs()
    out = net(x[:, P:], t, audio[:, P:], drop, 0)
    assert out.shape == (B, W, 246)
    single = net(x[:1, P:], t[:1], audio[:1, P:], drop[:1], 0)
    assert torch.allclose(single, out[:1], atol=1e-5)


def test_rejects_bad_options():
    with pytest.raises(ValueError, match="fusion"):
        _net(fusion=torch.nn.Identity)  # not an AudioFusion
    with pytest.raises(ValueError, match="timestep_conditioning"):
        _net(timestep_conditioning="film")


def _fragment(name: str) -> dict:
    return yaml.safe_load((FRAGMENTS / "denoiser" / f"{name}.yaml").read_text())["init_args"]


def test_paper_fragment_has_the_paper_size():
    cfg = _fragment("paper")
    assert (cfg["width"], cfg["depth"], cfg["num_heads"], cfg["ff_dim"], cfg["dropout"]) == (1024, 16, 16, 4096, 0.1)
    sizes = {k: cfg[k] for k in ("width", "depth", "num_heads", "ff_dim", "dropout")}
    with torch.device("meta"):
        net = SkeletonDenoiser(audio_dim=768, **sizes)
    n = sum(p.numel() for p in net.parameters())
    assert 190e6 < n < 215e6, n  # ~200M as in the paper
    assert _fragment("demo")["width"] == 128 and _fragment("tiny")["width"] == 32
    for name in ("demo", "paper", "tiny"):  # every size fragment names the paper's fusion fragment
        assert (FRAGMENTS / "denoiser" / _fragment(name)["fusion"].split("#")[0].strip()).resolve().is_file()
