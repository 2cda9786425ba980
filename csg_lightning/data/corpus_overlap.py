"""``check_not_corpus``: the demo's in-memory synthetic speakers must not be the corpus's own.

The datamodules that train on speakers drawn from the corpus generator (generated_skeleton_audio.py,
rendered_speakers.py) validate and test on the shards' held-out corpus speakers; drawing one of those for
training would train on the test set.
"""

from __future__ import annotations

from csg_lightning.data.corpus.speaker import speaker_id_of


def check_not_corpus(shards, first_speaker: int, num_speakers: int, owner: str) -> None:
    """Raise ValueError when generator speakers ``first_speaker`` ... ``first_speaker + num_speakers - 1`` include one
    of the corpus's (any split of ``shards``, a :class:`~csg_lightning.data.shard_folder.ShardFolder`): training on
    them would train on held-out speakers."""
    corpus = set()
    for split in ("train", "val", "test"):
        corpus.update(shards.split_info(split).get("speakers", []) or [])
    clash = sorted(corpus.intersection(speaker_id_of(i) for i in range(first_speaker, first_speaker + num_speakers)))
    if clash:
        raise ValueError(
            f"{owner}: first_speaker {first_speaker} draws corpus speakers {clash} of {shards.data_dir}; start past "
            "them (data.init_args.first_speaker)"
        )
