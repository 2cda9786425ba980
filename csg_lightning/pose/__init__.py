"""Whole-body pose estimation: frames -> 134-point skeletons in the project's storage order."""
