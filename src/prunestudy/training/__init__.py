"""Training: datasets and their batches, recipes, the optimiser, the loop, devices and latency."""
