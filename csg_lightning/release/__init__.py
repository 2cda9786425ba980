"""Importing the paper's released Stage-1 checkpoint (MPI-Lab/Democratizing-CSG) as a `SkeletonDiffusion`.

``point_order``: the release's point orders and ours; ``state_dict_map``: release ``state_dict`` keys and
shapes -> ``ReleaseDenoiser`` / ``ReleaseSpeechEncoder``; ``release_model``: the model config that
generates as the release does and the checkpoint writer; ``import_cli``: ``csg import-release``.
"""
