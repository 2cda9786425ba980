"""Evaluation commands: ``evaluate_skeleton`` (Stage 1 vs baselines) and ``evaluate_video`` (Stage 2 videos)."""
