"""Training of segment-level SER models (the classifiers): data, normalisation, mixup,
SpecAugment, the LR plateau schedule, the training loop, inference, and the model file that
scoring loads. The plumbing shared with the diffusion trainer (device, checkpoints, run log,
config schema, segmenting) is in ser.runtime."""
