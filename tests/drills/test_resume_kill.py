"""Kill drill: the real ``csg fit`` (demo recipe, tiny model) SIGKILLed mid-run and resumed with
``--ckpt_path last.ckpt`` must train exactly as the uninterrupted run: the same batches (clip ids
and window starts) from the resume point on, every epoch, and the same final weights.

10 train clips. In one process (batch 4) an epoch is 3 batches with a partial last one (4 + 4 +
2, as in the reported demo run); under 2-process DDP (gloo, batch 1) 5 batches per rank.
Checkpoints every 4 steps; the run is killed while it trains step 10, so it resumes from step 8,
mid-epoch (two batches into epoch 2, or three into epoch 1 under DDP), and the uninterrupted run's
20 steps are compared from there: the rest of that epoch and every epoch after it.

(Before the loader fix the resumed single-process run replayed all of epoch 2 in every later
epoch; with 2 DDP ranks every epoch after the resume also differed.)
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import torch
from resume_cli import fit, fit_args, kill_at, overlay
from resume_recorder import read_records

from csg_lightning.data.shards import write_shards

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers_clips import make_corpus  # noqa: E402

MAX_STEPS, EVERY, KILL_AT, RESUME_AT = 20, 4, 10, 8


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """4 speakers x 5 clips of 120 frames: 2 train speakers, 10 train clips."""
    root = tmp_path_factory.mktemp("kill_clips")
    make_corpus(root, num_speakers=4, clips_per_speaker=5, num_frames=120)
    return write_shards(root, tmp_path_factory.mktemp("kill_shards") / "dst", seed=0, progress=False)


def _batches(records: list[dict], from_step: int = 0) -> list[tuple]:
    return [
        (r["step"], r["rank"], tuple(r["clip_id"]), tuple(r["start"]))
        for r in records
        if r["step"] >= from_step
    ]


def _run_dir(runs: Path, run: str) -> Path:
    return runs / "skeleton-demo" / run


@pytest.fixture(scope="module", params=[(1, 4), (2, 1)], ids=["one-process", "ddp-2-gloo"])
def drill(request, shards, tmp_path_factory):
    """Uninterrupted, killed and resumed runs; -> dict of their records, final weights and checkpoints."""
    (devices, batch_size), tmp = request.param, tmp_path_factory.mktemp(f"kill_{request.param[0]}")
    ranks = range(devices)

    def records(name):
        base = tmp / f"{name}.jsonl"
        return sorted(sum((read_records(base if r == 0 else f"{base}.rank{r}") for r in ranks), []),
                      key=lambda r: (r["step"], r["rank"]))  # fmt: skip

    def args(run, name, **kw):
        extra = overlay(tmp / f"{name}.yaml", tmp / f"{name}.jsonl", EVERY, kw.pop("hold_at_step", None))
        return fit_args(shards, tmp, run, MAX_STEPS, extra, devices=devices, batch_size=batch_size, **kw)

    fit(args("full", "full"))
    code = kill_at(
        args("crashed", "killed", hold_at_step=KILL_AT), tmp / "killed.jsonl", KILL_AT, ranks=devices
    )
    last = _run_dir(tmp, "crashed") / "checkpoints" / "last.ckpt"
    killed_state = torch.load(last, map_location="cpu", weights_only=True)
    fit(args("crashed", "resumed", ckpt_path=last))  # the same run folder, as a user resumes
    load = lambda run: torch.load(_run_dir(tmp, run) / "checkpoints" / "last.ckpt", map_location="cpu",  # noqa: E731
                                  weights_only=True)  # fmt: skip
    return {
        "exit_code": code,
        "killed_step": killed_state["global_step"],
        "full": records("full"),
        "killed": records("killed"),
        "resumed": records("resumed"),
        "full_ckpt": load("full"),
        "resumed_ckpt": load("crashed"),
        "full_weights": torch.load(tmp / "full.jsonl.weights.pt", weights_only=True),
        "resumed_weights": torch.load(tmp / "resumed.jsonl.weights.pt", weights_only=True),
    }


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def _optimizer_tensors(ckpt: dict) -> dict:
    state = ckpt["optimizer_states"][0]["state"]
    return {f"{i}.{k}": v for i, slots in state.items() for k, v in slots.items() if torch.is_tensor(v)}


def _epoch_of(records: list[dict], step: int) -> int:
    return next(r["epoch"] for r in records if r["step"] == step)


@pytest.mark.slow
def test_the_run_was_killed_after_a_mid_epoch_checkpoint(drill):
    assert drill["exit_code"] == -signal.SIGKILL
    assert drill["killed_step"] == RESUME_AT
    assert _epoch_of(drill["full"], RESUME_AT - 1) == _epoch_of(drill["full"], RESUME_AT)  # mid-epoch
    assert max(r["step"] for r in drill["killed"]) == KILL_AT  # it trained steps 8 and 9 and lost them
    assert _batches(drill["killed"]) == _batches(drill["full"])[: len(_batches(drill["killed"]))]


@pytest.mark.slow
def test_resumed_run_sees_the_uninterrupted_batches_for_every_later_epoch(drill):
    expected, got = _batches(drill["full"], RESUME_AT), _batches(drill["resumed"])
    first = next((pair for pair in zip(expected, got, strict=False) if pair[0] != pair[1]), None)
    assert first is None, f"first differing batch (expected, got): {first}"
    assert len(got) == len(expected) > 0
    interrupted = _epoch_of(drill["full"], RESUME_AT)
    epochs = sorted({r["epoch"] for r in drill["resumed"]})
    assert epochs[0] == interrupted and len(epochs) >= 3  # the rest of the epoch and at least 2 more


@pytest.mark.slow
def test_resumed_run_ends_with_the_uninterrupted_weights_and_optimizer_state(drill):
    full, resumed = drill["full_ckpt"], drill["resumed_ckpt"]
    assert full["global_step"] == resumed["global_step"] == MAX_STEPS
    assert _max_diff(drill["full_weights"], drill["resumed_weights"]) == 0.0
    assert _max_diff(full["ema_state"]["current"], resumed["ema_state"]["current"]) == 0.0
    assert _max_diff(_optimizer_tensors(full), _optimizer_tensors(resumed)) == 0.0
