"""Training: config and recipes, the loop, checkpoints and run directories, and sharing a run."""
