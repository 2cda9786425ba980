"""CSG-405 (Yang et al., "Democratizing High-Fidelity Co-Speech Gesture Video Generation"): the
release's clip list, names and test pairs, and ``csg-data csg405``, which turns the release plus the
source videos one has downloaded into our clip folders.

=====================  ==========================================================================
module                 concept
=====================  ==========================================================================
:mod:`.clip_names`     ``{vid}_{part}_{start}_{end}`` names and ffmpeg time strings
:mod:`.manifest`       ``all_with_crop.json`` / ``all.txt``, validated
:mod:`.source_videos`  where a clip's source video is and which timeline its times use
:mod:`.crop_geometry`  a release ``crop_box`` rectangle as our square 512 x 512 crop
:mod:`.clip_poses`     the release's pose files (or re-estimated poses) in our crop's pixels
:mod:`.test_pairs`     test lists -> ``test_pairs.json`` (same- / cross-identity)
:mod:`.ingest`         the whole ingest, clip by clip
:mod:`.csg405_cli`     the ``csg-data csg405`` command
=====================  ==========================================================================
"""
