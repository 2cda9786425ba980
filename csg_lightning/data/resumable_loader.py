"""``ResumableStreamingDataLoader``: litdata's loader made to resume exactly under Lightning's fit loop."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from litdata import StreamingDataLoader, StreamingDataset


class ResumableStreamingDataLoader(StreamingDataLoader):
    """A ``StreamingDataLoader`` that resumes exactly under Lightning: mid-epoch and every epoch after.

    Three gaps of litdata's loader (0.2.x) under Lightning's fit loop, closed here:

    - Lightning restores a stateful train loader itself (fit loop "combined_loader" state) and the
      datamodule restores it too; litdata's ``load_state_dict`` is not idempotent (it advances its
      worker cycle each call), so a second identical load before iterating is a no-op.
    - ``load_state_dict`` sets ``restore``, which makes ``__iter__`` replay the loaded position
      instead of starting a new epoch; litdata clears it only when the iterator runs to exhaustion.
      Lightning stops a sized loader after ``len(loader)`` batches without asking for the end, so
      ``restore`` stayed set and every later epoch replayed the interrupted epoch (its rest, or all
      of it: same epoch number, so same order and window starts). Here the resumed pass is the
      first ``__iter__`` after a load; the one after it starts a new epoch whether or not the
      resumed pass was drained.
    - ``StreamingDataset.load_state_dict`` does not set the dataset's ``current_epoch`` and
      ``set_epoch`` ignores calls while a state is loaded, so with workers (where the main-process
      copy never iterates) a checkpoint taken inside the resumed epoch recorded a stale epoch
      (the dataset's initial 1); a resume from that checkpoint then used that epoch's order and
      windows. Loading restores the dataset's epoch from the state.
    """

    _loaded_state: dict | None = None
    _restore_started = False  # a pass of the resumed epoch has begun since the last load

    def load_state_dict(self, obj: dict[str, Any]) -> None:
        if self._loaded_state is not None and obj == self._loaded_state:
            return
        super().load_state_dict(obj)
        dataset_state = obj.get("dataset")
        if isinstance(self.dataset, StreamingDataset) and isinstance(dataset_state, Mapping):
            self.dataset.current_epoch = int(dataset_state["current_epoch"])
        if self.restore and _epoch_consumed(obj, self.dataset):
            # saved at an epoch's end (epoch-end checkpoints, the final one, SIGTERM after the last
            # batch): nothing of it is left to replay, the next pass is the next epoch
            self.restore = False
        self._loaded_state = copy.deepcopy(obj)
        self._restore_started = False

    def __iter__(self):
        # A generator: this runs when the first batch is asked for, as litdata's own __iter__ does.
        self._loaded_state = None  # once iteration starts, a later load is a new resume
        if self.restore and self._restore_started:
            self.restore = False  # the resumed epoch had its pass: this one is a new epoch
        self._restore_started = self.restore
        yield from super().__iter__()


def _epoch_consumed(state: Mapping[str, Any], dataset) -> bool:
    """Whether a loader state was taken after the last sample of its epoch (on this rank)."""
    try:
        return int(state["num_samples_yielded"]) >= len(dataset)
    except (KeyError, TypeError, ValueError):
        return False
