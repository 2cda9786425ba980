"""Generation commands: sampling skeletons (and, later, videos) from trained checkpoints."""
