"""Training: optimizers and schedulers from the trainer spec (the engine comes with the next issue)."""
