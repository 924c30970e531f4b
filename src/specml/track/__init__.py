"""Run tracking: facts files, TensorBoard, figures, the registry, background jobs."""
