"""Checkpoint drills: cadence and final state, SIGTERM, kills during a save, and files that must be refused.

Every run here is the real `csg fit` (demo recipe, tiny model) on the session's demo shards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from step_marker import read_step
from tiny_fit import ROOT, callbacks_overlay, fit_args

from csg_lightning.checkpoints.safe_load import CheckpointError, load_checkpoint_file, load_module
from csg_lightning.cli import run

HERE = Path(__file__).resolve().parent


def _last(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


def _step_in(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp-" in p.name]


@pytest.fixture(scope="module")
def stage1_ckpt(demo_shards, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("stage1-runs")
    run(fit_args(demo_shards, runs, "ckpt", max_steps=2, overlay=callbacks_overlay(runs / "o.yaml", {})))
    return _last(runs / "skeleton-demo" / "ckpt")


# -- cadence and the final state ----------------------------------------------------------------
@pytest.mark.parametrize("callback", ["lightning", "crash_safe"])
def test_final_state_is_saved_when_the_cadence_does_not_divide_max_steps(callback, demo_shards, tmp_path):
    """The measured bug: every_n_train_steps 5, max_steps 7 -> Lightning's last.ckpt holds step 5."""
    if callback == "lightning":
        overlay = {"trainer": {"callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                                              "init_args": {"save_last": True, "every_n_train_steps": 5}}]}}  # fmt: skip
        (tmp_path / "o.yaml").write_text(yaml.safe_dump(overlay))
    else:
        callbacks_overlay(tmp_path / "o.yaml", {"every_n_train_steps": 5, "last_every_n_steps": None,
                                                "last_every_minutes": None})  # fmt: skip
    run(fit_args(demo_shards, tmp_path, "r", max_steps=7, overlay=tmp_path / "o.yaml"))
    expected = 5 if callback == "lightning" else 7
    assert _step_in(_last(tmp_path / "skeleton-demo" / "r")) == expected


def _observed_last_steps(demo_shards, tmp_path, checkpoint: dict, max_steps: int, delay: float) -> list[int]:
    probe = {"class_path": "last_ckpt_probe.LastCheckpointProbe",
             "init_args": {"path": str(tmp_path / "skeleton-demo" / "r" / "checkpoints" / "last.ckpt"),
                           "out": str(tmp_path / "seen.txt"), "delay": delay}}  # fmt: skip
    callbacks_overlay(tmp_path / "o.yaml", checkpoint, [probe])
    run(fit_args(demo_shards, tmp_path, "r", max_steps=max_steps, overlay=tmp_path / "o.yaml"))
    seen = [int(s) for s in (tmp_path / "seen.txt").read_text().split()]
    return sorted(set(seen) - {-1}) + [_step_in(_last(tmp_path / "skeleton-demo" / "r"))]


def test_last_ckpt_every_n_steps_bounds_lost_work(demo_shards, tmp_path):
    steps = _observed_last_steps(demo_shards, tmp_path, {"last_every_n_steps": 3, "last_every_minutes": None},
                                 max_steps=8, delay=0.0)  # fmt: skip
    assert steps == [3, 6, 8]  # every 3 steps while training, then the final state


def test_last_ckpt_every_minutes_bounds_lost_work(demo_shards, tmp_path):
    # 0.2 s of clock between saves, batches slowed to 0.15 s: a refresh every second step
    steps = _observed_last_steps(demo_shards, tmp_path, {"last_every_n_steps": None, "last_every_minutes": 0.2 / 60},
                                 max_steps=9, delay=0.15)  # fmt: skip
    assert steps[-1] == 9 and len(steps) >= 4, steps
    assert all(b - a <= 3 for a, b in zip(steps, steps[1:], strict=False)), steps


# -- SIGTERM: save, exit cleanly, resume exactly ------------------------------------------------
def _final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(_last(run_dir), map_location="cpu", weights_only=True)["state_dict"]


def test_sigterm_saves_exits_cleanly_and_the_resumed_run_matches_the_uninterrupted_one(demo_shards, tmp_path):
    max_steps = 24
    marker = {"class_path": "step_marker.StepMarker", "init_args": {"path": str(tmp_path / "step"), "delay": 0.1}}
    callbacks_overlay(tmp_path / "o.yaml", {"last_every_n_steps": 1000, "last_every_minutes": None}, [marker])
    run(fit_args(demo_shards, tmp_path, "straight", max_steps=max_steps, overlay=tmp_path / "o.yaml"))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]), "WANDB_MODE": "disabled"}
    (tmp_path / "step").unlink()
    args = fit_args(demo_shards, tmp_path, "preempted", max_steps=max_steps, overlay=tmp_path / "o.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "csg_lightning.cli", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 180
    while read_step(tmp_path / "step") < 7 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be signalled:\n{proc.communicate()[0][-3000:]}"
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    stopped_at = read_step(tmp_path / "step")
    assert proc.returncode == 0, out[-3000:]
    assert 7 <= stopped_at < max_steps and "SIGTERM: saved step" in out
    run_dir = tmp_path / "skeleton-demo" / "preempted"
    assert _step_in(_last(run_dir)) == stopped_at  # the state at the batch where it stopped, not an older one
    assert not _temps(run_dir)

    run(fit_args(demo_shards, tmp_path, "preempted", max_steps=max_steps, overlay=tmp_path / "o.yaml")
        + ["--ckpt_path=last"])  # fmt: skip
    assert _step_in(_last(run_dir)) == max_steps
    straight, resumed = _final_weights(tmp_path / "skeleton-demo" / "straight"), _final_weights(run_dir)
    diffs = {k: (straight[k].double() - resumed[k].double()).abs().max().item() for k in straight}
    assert max(diffs.values()) == 0.0, sorted(diffs.items(), key=lambda kv: -kv[1])[:3]


# -- kill -9 at any instant of a save ---------------------------------------------------------------
_SAVER = """
import sys, torch
from csg_lightning.checkpoints.atomic_io import AtomicCheckpointIO
io, dest, serial = AtomicCheckpointIO(), sys.argv[1], int(sys.argv[2])
while True:
    io.save_checkpoint({"serial": serial, "w": torch.full((12_000_000,), float(serial))}, dest)
    print(serial, flush=True)
    serial += 1
"""


def test_kill_during_save_leaves_the_old_or_the_new_checkpoint_never_a_torn_one(tmp_path):
    dest = tmp_path / "ckpts" / "last.ckpt"
    env = {**os.environ, "TMPDIR": "/dev/shm" if Path("/dev/shm").is_dir() else str(tmp_path)}  # tmpfs: another fs
    serial = 0
    for kill in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(dest), str(serial)], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert proc.stdout.readline().strip() == str(serial), "the saver did not start"
        time.sleep(0.05 + 0.09 * kill)  # a different instant of the write / fsync / rename each time
        proc.kill()
        proc.wait()
        saved = torch.load(dest, map_location="cpu", weights_only=True)
        assert saved["w"].shape == (12_000_000,) and bool((saved["w"] == saved["serial"]).all()), "torn checkpoint"
        assert saved["serial"] >= serial
        serial = saved["serial"] + 1
        assert len(_temps(dest.parent)) <= 1  # at most the killed writer's own temp file, beside the checkpoint
        assert not list(Path(env["TMPDIR"]).glob("tmp*last.ckpt*"))
    from csg_lightning.checkpoints.atomic_io import AtomicCheckpointIO

    AtomicCheckpointIO().save_checkpoint({"serial": -1}, dest)  # the next save sweeps the killed writers' temps
    assert not _temps(dest.parent) and sorted(p.name for p in dest.parent.iterdir()) == ["last.ckpt"]


# -- files that are not (safe, matching) checkpoints -----------------------------------------------
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture()
def poisoned(stage1_ckpt, tmp_path) -> tuple[Path, Path]:
    """A real Stage-1 checkpoint with an ``os.system`` payload in its hyper-parameters -> (file, marker)."""
    marker = tmp_path / "pwned"
    ckpt = torch.load(stage1_ckpt, map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["note"] = _Payload(marker)
    torch.save(ckpt, tmp_path / "poisoned.ckpt")
    return tmp_path / "poisoned.ckpt", marker


def _load_paths():
    from csg_lightning.checkpoints.atomic_io import AtomicCheckpointIO
    from csg_lightning.evaluation.skeleton import _load_model
    from csg_lightning.generation import sample_skeleton
    from csg_lightning.models.fgd_autoencoder_module import load_fgd_encoder
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion
    from csg_lightning.video.mimicmotion_weights import read_state_dict
    from csg_lightning.video.video_generator import VideoGenerator

    return {
        "load_checkpoint_file": lambda p, tmp: load_checkpoint_file(p),
        "SkeletonDiffusion": lambda p, tmp: load_module(SkeletonDiffusion, p),
        "VideoGenerator": lambda p, tmp: load_module(VideoGenerator, p),
        "csg-eval skeleton": lambda p, tmp: _load_model(p, "cpu"),
        "FGD encoder": lambda p, tmp: load_fgd_encoder(p),
        "MimicMotion weights": lambda p, tmp: read_state_dict(p),
        "resume (Lightning CheckpointIO)": lambda p, tmp: AtomicCheckpointIO().load_checkpoint(p),
        "sample-skeleton --ckpt": lambda p, tmp: sample_skeleton.main(
            ["--ckpt", str(p), "--audio", str(_wav(tmp)), "--out", str(tmp / "out" / "o.mp4")]),
        "csg fit --ckpt_path": lambda p, tmp: run(["fit", f"--config={ROOT / 'experiments/skeleton/demo.yaml'}",
                                                    f"--ckpt_path={p}", f"--runs_root={tmp / 'runs'}", "--run=x"]),
    }  # fmt: skip


def _wav(tmp: Path) -> Path:
    import numpy as np

    from csg_lightning.io.audio import write_wav

    return write_wav(tmp / "speech.wav", 0.1 * np.sin(np.linspace(0, 400, 16000)).astype(np.float32))


LOAD_PATHS = list(_load_paths())


@pytest.mark.parametrize("path_name", LOAD_PATHS)
def test_a_pickled_payload_is_refused_on_every_load_path(path_name, poisoned, tmp_path):
    file, marker = poisoned
    with pytest.raises((CheckpointError, SystemExit, Exception)) as info:
        _load_paths()[path_name](file, tmp_path)
    assert not marker.exists(), f"{path_name} ran the payload"
    message = str(info.value)
    assert "refused" in message or "Unsupported global" in message or "weights_only" in message, message
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs" / "skeleton-demo" / "x" / "checkpoints").exists()


@pytest.mark.parametrize("kind", ["text", "truncated", "directory", "empty"])
def test_a_file_that_is_not_a_checkpoint_is_named(kind, stage1_ckpt, tmp_path):
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    path = tmp_path / "model.ckpt"
    if kind == "text":
        path.write_text("not a checkpoint\n")
    elif kind == "truncated":
        path.write_bytes(stage1_ckpt.read_bytes()[: stage1_ckpt.stat().st_size // 2])
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"")
    error = FileNotFoundError if kind == "directory" else CheckpointError
    with pytest.raises(error) as info:
        load_module(SkeletonDiffusion, path)
    expected = {"text": "not a PyTorch checkpoint", "truncated": "corrupt or truncated",
                "directory": "(a directory)", "empty": "not a PyTorch checkpoint"}[kind]  # fmt: skip
    assert str(path) in str(info.value) and expected in str(info.value)


def test_a_checkpoint_of_the_other_stage_is_named(stage1_ckpt):
    from csg_lightning.video.video_generator import VideoGenerator

    with pytest.raises(CheckpointError, match="a checkpoint of SkeletonDiffusion .* expected one of VideoGenerator"):
        load_module(VideoGenerator, stage1_ckpt)


def test_a_checkpoint_written_outside_the_cli_is_matched_by_its_hyper_parameters(stage1_ckpt, tmp_path):
    from csg_lightning.models.fgd_autoencoder_module import FGDAutoencoderModule
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    ckpt = torch.load(stage1_ckpt, map_location="cpu", weights_only=True)
    del ckpt["hyper_parameters"]["_class_path"], ckpt["hyper_parameters"]["_instantiator"]
    torch.save(ckpt, tmp_path / "plain.ckpt")
    assert isinstance(load_module(SkeletonDiffusion, tmp_path / "plain.ckpt"), SkeletonDiffusion)
    with pytest.raises(CheckpointError, match="not a checkpoint of FGDAutoencoderModule"):
        load_module(FGDAutoencoderModule, tmp_path / "plain.ckpt")


def test_sample_skeleton_names_a_stage2_style_error_without_a_traceback(stage1_ckpt, tmp_path):
    from csg_lightning.generation import sample_skeleton

    (tmp_path / "notes.ckpt").write_text("hello")
    with pytest.raises(SystemExit, match=r"sample-skeleton: --ckpt: .*notes.ckpt: not a PyTorch checkpoint"):
        sample_skeleton.main(["--ckpt", str(tmp_path / "notes.ckpt"), "--audio", str(_wav(tmp_path)),
                              "--out", str(tmp_path / "o.mp4")])  # fmt: skip
    assert not list(tmp_path.glob("o.*"))
