"""People per frame (what a pose estimator returns) -> the speaker's track through the video.

The speaker in a frame is its largest person (box area), the order
:class:`~csg_lightning.pose.estimator.PoseEstimator` already returns. The second-largest person is
summarised by its area relative to the speaker's and its detection score, which the
``single_speaker`` check of :mod:`csg_lightning.preprocess.qc` reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from csg_lightning.pose.estimator import PersonPose
from csg_lightning.preprocess.segments import SpeakerTrack
from csg_lightning.skeleton.layout import NUM_KEYPOINTS


def empty_track(num_frames: int) -> SpeakerTrack:
    """A track of ``num_frames`` frames with nobody in them (all zeros)."""
    t = num_frames
    return SpeakerTrack(
        keypoints=np.zeros((t, NUM_KEYPOINTS, 2), np.float32),
        scores=np.zeros((t, NUM_KEYPOINTS), np.float32),
        boxes=np.zeros((t, 4), np.float32),
        box_scores=np.zeros(t, np.float32),
        num_persons=np.zeros(t, np.int32),
        second_area_ratio=np.zeros(t, np.float32),
        second_box_score=np.zeros(t, np.float32),
    )


def build_track(people_per_frame: Sequence[Sequence[PersonPose]]) -> SpeakerTrack:
    """people_per_frame: T lists of the persons found in each frame -> SpeakerTrack of T frames.

    Persons are ranked by box area (largest first; ties keep the estimator's order). The
    speaker's keypoints, scores, box and box score are copied; second_area_ratio is the second
    person's area over the speaker's (0 when there is no second person or the speaker's box is
    empty) and second_box_score that person's detection score.
    """
    track = empty_track(len(people_per_frame))
    for t, persons in enumerate(people_per_frame):
        ranked = sorted(persons, key=lambda p: -p.area)
        track.num_persons[t] = len(ranked)
        if not ranked:
            continue
        speaker = ranked[0]
        track.keypoints[t] = speaker.keypoints
        track.scores[t] = speaker.scores
        track.boxes[t] = speaker.box
        track.box_scores[t] = speaker.box_score
        if len(ranked) > 1:
            second = ranked[1]
            track.second_area_ratio[t] = second.area / speaker.area if speaker.area > 0 else 0.0
            track.second_box_score[t] = second.box_score
    return track
