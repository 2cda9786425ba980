"""Checkpoint files: crash-safe writing and loading that never runs pickled code."""
