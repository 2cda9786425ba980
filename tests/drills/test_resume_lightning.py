"""Exact resume in-process: Lightning Trainer (CPU) + tiny SkeletonDiffusion + SkeletonAudioDataModule.

The demo shards hold 2 train clips, so with batch size 1 an epoch is 2 steps. The uninterrupted
run trains 12 steps (6 epochs); the interrupted run keeps a checkpoint every 5 steps and dies
before step 7, so it is resumed from step 5: the second batch of epoch 2, mid-epoch. The
resumed run must see the uninterrupted run's batches (clip ids and window starts) for the rest
of that epoch and for every epoch after it, and end with its weights and optimizer state.

(Before the fix of ``ResumableStreamingDataLoader``, every epoch after the resumed one replayed
the rest of the interrupted epoch first: 6 of the 7 batches after the resume differed.)
"""

from __future__ import annotations

import pytest
from resume_run import batches, compare_runs, fit

MAX_STEPS, EVERY, CRASH_AT, RESUME_AT = 12, 5, 7, 5


@pytest.fixture(scope="module", params=[0, 2], ids=["workers0", "workers2"])
def drill(request, demo_shards, tmp_path_factory):
    """(uninterrupted run, interrupted run, resumed run) with ``num_workers`` = the param."""
    num_workers, root = request.param, tmp_path_factory.mktemp(f"resume_w{request.param}")
    full = fit(demo_shards, num_workers, MAX_STEPS, ckpt_dir=root / "full", every_n_train_steps=EVERY)
    crashed = fit(demo_shards, num_workers, MAX_STEPS, ckpt_dir=root / "crashed", every_n_train_steps=EVERY,
                  crash_at_step=CRASH_AT)  # fmt: skip
    assert sorted(crashed.checkpoints) == [RESUME_AT]
    resumed = fit(demo_shards, num_workers, MAX_STEPS, ckpt_dir=root / "resumed", every_n_train_steps=EVERY,
                  ckpt_path=crashed.checkpoints[RESUME_AT])  # fmt: skip
    return full, crashed, resumed


def test_interrupted_run_saw_the_same_batches_until_it_died(drill):
    full, crashed, _ = drill
    assert batches(crashed.records) == batches(full.records)[:CRASH_AT]


def test_resumed_run_sees_the_same_batches_for_the_rest_of_the_epoch_and_every_epoch_after(drill):
    full, _, resumed = drill
    report = compare_runs(full, resumed, RESUME_AT)
    assert report["num_differ"] == 0, report["first_difference"]
    assert report["steps"] == (MAX_STEPS - RESUME_AT,) * 2
    assert sorted({r["epoch"] for r in resumed.records}) == [2, 3, 4, 5]  # the interrupted epoch and 3 more
    # The windows really change per epoch: a replayed epoch could not pass the comparison above.
    per_epoch = {}
    for r in full.records:
        per_epoch.setdefault(r["epoch"], set()).update(zip(r["clip_id"], r["start"], strict=True))
    assert len({frozenset(v) for v in per_epoch.values()}) == len(per_epoch)


def test_resumed_run_ends_with_the_same_training_weights_and_optimizer_state(drill):
    full, _, resumed = drill
    report = compare_runs(full, resumed, RESUME_AT)
    assert report["max_dw_raw"] == 0.0
    assert report["max_d_optimizer"] == 0.0


def test_resumed_run_ends_with_the_same_ema_weights(drill):
    full, _, resumed = drill
    assert compare_runs(full, resumed, RESUME_AT)["max_dw_state"] == 0.0
