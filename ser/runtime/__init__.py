"""Run plumbing shared by the classifier trainer (ser.training) and the diffusion trainer
(ser.diffusion): nothing here knows about either model.

- device: the torch device of a process from its --ngpu option (training, torchrun ranks, inference);
- distributed: data-parallel training with torch.distributed (torchrun, utils/launch_train.sh);
- allocator: glibc's malloc keeping freed memory (a faster CPU step for more resident memory);
- precision: fp32 | bf16 | fp16 autocast, gradient scaler, model preparation;
- torch_files: atomic writes and one-line-error reads of model.pt and checkpoint files;
- checkpoint: checkpoints/last.pt, the random states in it, resumption;
- run_log: train.log of a run (rank 0) and the silent logger of the other ranks;
- run_dir: the output dir of a training run as both trainers keep it (log, checkpoint, `done`);
- config: YAML configs checked against their defaults, --set overrides, dump, stored-config
  comparison and the config hash;
- run_args: the command line shared by the training programs;
- segments: cutting a (frames, dims) matrix into fixed-length padded segments.
"""
