"""Training of segment-level SER models: data, normalisation, segmenting, mixup, the LR plateau
schedule, checkpoints, the training loop, and the model file that scoring loads."""
