"""CSG-405 -> Stage-1 training: the miniature release (tests/csg405_release.py) ingested with
``csg-data csg405``, sharded with ``csg-data shard``, read by the datamodule of the demo recipe
(``experiments/skeleton/demo.yaml``, what ``make train-skeleton`` runs) and fitted for 2 steps."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch
import yaml
from csg405_release import CLIPS, PART_SECONDS, VID_A, make_release

from csg_lightning.data.shards import read_manifest
from csg_lightning.data_cli import main as csg_data

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "skeleton" / "demo.yaml"
PRESENT = [c for c in CLIPS if c.vid == VID_A]  # the clips whose source video is "downloaded"
P, W, B = 10, 50, 2  # prefix, window, batch: the tiny-fit sizes (tests/drills/tiny_fit.py)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """release -> clip folders (``csg-data csg405 --poses``) -> shards (one speaker: all train)."""
    root = tmp_path_factory.mktemp("csg405_training")
    release = make_release(root / "release")
    out = root / "ingested"
    csg_data(["csg405", str(release["release"]), str(release["videos"]), str(out), "--poses",
              str(release["poses"]), "--part-seconds", str(PART_SECONDS), "--crf", "12", "--quiet"])  # fmt: skip
    assert sorted(p.name for p in (out / "clips").iterdir()) == sorted(c.name for c in PRESENT)
    dst = root / "shards"
    csg_data(["shard", str(out / "clips"), str(dst), "--val-speakers", "0", "--test-speakers", "0"])
    return dst


def _demo_datamodule(data_dir: Path):
    """The data class of demo.yaml with its own init_args, only sizes shrunk."""
    spec = yaml.safe_load(DEMO.read_text())["data"]
    module, name = spec["class_path"].rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    args = {**spec["init_args"], "data_dir": str(data_dir), "batch_size": B, "window": W, "num_prefix": P}
    return cls(**args)


def test_shards_hold_the_ingested_clips(shards):
    manifest = read_manifest(shards)
    assert manifest["complete"] and manifest["skipped"] == []
    splits = manifest["splits"]
    assert splits["train"]["num_records"] == len(PRESENT)
    assert splits["val"]["num_records"] == splits["test"]["num_records"] == 0


def test_demo_datamodule_reads_a_training_batch_from_csg405_shards(shards):
    dm = _demo_datamodule(shards)
    dm.setup("fit")
    assert dm.val_dataloader() == []  # no val speaker: Lightning skips validation
    batch = next(iter(dm.train_dataloader()))
    L = P + W
    shapes = {k: tuple(v.shape) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    assert shapes == {
        "features": (B, L, 246), "mask": (B, L, 123), "keypoints": (B, L, 134, 2), "scores": (B, L, 134),
        "reference_keypoints": (B, 134, 2), "reference_scores": (B, 134), "audio": (B, L * 640),
        "start": (B,), "width": (B,), "height": (B,),
    }  # fmt: skip
    assert set(batch["clip_id"]) <= {c.name for c in PRESENT} and batch["speaker_id"] == [VID_A] * B
    assert batch["width"].tolist() == [512] * B and batch["height"].tolist() == [512] * B
    assert torch.isfinite(batch["features"]).all() and batch["audio"].abs().max() <= 1.0
    # clips are 20-25 frames: a window runs past the end and is padded (zero audio, masked points)
    frames = {c.name: c.frames for c in PRESENT}
    for i, clip_id in enumerate(batch["clip_id"]):
        real = frames[clip_id] - int(batch["start"][i])
        assert batch["audio"][i, real * 640 :].abs().max() == 0
        assert batch["mask"][i, real:].sum() == 0 and batch["mask"][i, :real].sum() > 0


def test_demo_recipe_fits_two_steps_on_csg405_shards(shards, tmp_path):
    """demo.yaml shrunk by the drills' shared helper (tests/drills/tiny_fit.py: tiny model, 50 + 10 frame
    windows, CPU, no logger), its callbacks replaced by one checkpoint callback (the LR monitor needs a logger)."""
    sys.path.insert(0, str(ROOT / "tests" / "drills"))
    from tiny_fit import callbacks_overlay, fit_args

    from csg_lightning.cli import run

    runs = tmp_path / "runs"
    overlay = callbacks_overlay(tmp_path / "callbacks.yaml", {})
    cli = run(fit_args(shards, runs, "csg405", max_steps=2, overlay=overlay))
    assert cli.trainer.global_step == 2
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    assert (runs / "skeleton-demo" / "csg405" / "checkpoints" / "last.ckpt").is_file()
