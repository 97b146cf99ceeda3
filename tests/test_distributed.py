"""Data-parallel training (ser/runtime/distributed.py, the trainer under DDP, utils/launch_train.sh).

The end-to-end test runs `python -m ser.bin.train` as the recipe would, through
utils/launch_train.sh --ngpu 0 --nproc 2 (torchrun --standalone, 2 CPU processes, gloo), with the
`cnn` model (it has BatchNorm2d layers) and --sync-batchnorm true, so that the two processes
together compute exactly what one process computes on the same global batch; mixup is on (its
partners cross the processes' shares) and dropout is 0 (dropout masks are per process).
"""
import os
import subprocess

import numpy as np
import pytest
import torch

from ser.bin import train as train_prog
from ser.errors import SerError
from ser.runtime import distributed as D
from ser.runtime.checkpoint import load_checkpoint
from ser.training.mixup import mixup_batch
from ser.training.model_io import read_model_file
from ser.training.nbest import read_averaged
from ser.training.trainer import KILL_ENV, mixup_partners

from launch_helpers import LAUNCH, finish
from launch_helpers import history_rows as rows
from launch_helpers import last_checkpoint as model_of
from launch_helpers import start_launch as start
from training_toy import make_corpus


CONFIG = """\
model: cnn
model_conf: {conv_channels: [4, 8], fc_dim: 16, dropout: 0.0}
segment: {length: 64, shift: 32}
batch_size: 8
optim: {lr: 1.0e-2}
max_epochs: 2
plateau: {patience: 1, factor: 0.5}
early_stop_patience: 10
mixup: {enabled: true, alpha: 0.4}
max_train_segments_per_epoch: 30
average_best: 2          # model.pt: the mean of both epochs, sent from rank 0 and validated by both ranks
"""


# --- pieces, in one process -----------------------------------------------------------------
@pytest.mark.parametrize("n,world", [(8, 2), (7, 2), (5, 4), (3, 3), (30, 4)])
def test_shard_bounds_partition_the_batch(n, world):
    shares = [D.shard_bounds(n, r, world) for r in range(world)]
    assert shares[0][0] == 0 and shares[-1][1] == n
    assert all(shares[r][1] == shares[r + 1][0] for r in range(world - 1))  # contiguous, in order
    sizes = [hi - lo for lo, hi in shares]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_per_process_batch():
    assert D.per_process_batch(32, 4) == 8 and D.per_process_batch(7, 1) == 7
    with pytest.raises(SerError, match="batch_size 30 .* not divisible by the 4 processes"):
        D.per_process_batch(30, 4)


@pytest.mark.parametrize("world", [2, 3])
def test_mixup_shares_equal_single_process_mixup(world):
    """Each rank mixing its share with mixup_partners (same generator state on every rank)
    reproduces mixup_batch on the whole batch, row for row."""
    data = torch.randn(20, 5, 3)
    labels = torch.randint(0, 4, (20,))
    batch = [17, 3, 8, 0, 11, 19, 5, 2, 14]
    state = torch.Generator().manual_seed(7).get_state()
    g = torch.Generator()
    g.set_state(state)
    onehot = torch.nn.functional.one_hot(labels, 4).float()
    x_ref, y_ref, lam_ref = mixup_batch(data[batch], onehot[batch], 0.4, g)
    xs, ys = [], []
    for r in range(world):
        g.set_state(state)
        lo, hi = D.shard_bounds(len(batch), r, world)
        lam, partners, _ = mixup_partners(batch, lo, hi, 0.4, g)
        assert lam == lam_ref
        xs.append(lam * data[batch[lo:hi]] + (1.0 - lam) * data[partners])
        ys.append(lam * onehot[batch[lo:hi]] + (1.0 - lam) * onehot[partners])
    assert torch.equal(torch.cat(xs), x_ref) and torch.equal(torch.cat(ys), y_ref)


def test_setup_single_process(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    env = D.setup(0)
    assert (env.rank, env.world_size, env.device.type, env.is_main) == (0, 1, "cpu", True)
    assert not D.is_distributed() and D.world_size() == 1 and D.is_main()
    assert D.all_reduce_sum([1.5, 2]) == [1.5, 2.0] and D.broadcast_object("x") == "x"
    with pytest.raises(SerError, match="launch_train.sh --ngpu 2"):
        D.setup(2)
    # under torchrun, GPUs must match the processes of the node
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(SerError, match="--ngpu 4 but torchrun started 2 processes"):
        D.setup(4)


def test_cpu_sync_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(3)
    model = D._to_cpu_sync(torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), bn))
    assert isinstance(model[1], D.CpuSyncBatchNorm) and model[1].weight is bn.weight
    ref = torch.nn.BatchNorm2d(3)
    x = torch.randn(4, 3, 5, 6)
    assert torch.allclose(model[1](x), ref(x), atol=1e-6)
    assert torch.allclose(model[1].running_var, ref.running_var)
    assert set(model.state_dict()) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                       "1.running_var", "1.num_batches_tracked"}


# --- the launcher's command lines -----------------------------------------------------------
def launch_dry(args, env=None):
    proc = subprocess.run(["bash", LAUNCH] + args, capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, PYTHON="py", **(env or {})))
    return proc.returncode, proc.stdout.strip(), proc.stderr.strip()


def test_launcher_commands(tmp_path):
    assert launch_dry(["--dry-run", "--", "--config", "c.yaml"]) == (
        0, "py -m ser.bin.train --ngpu 0 --config c.yaml", "")
    rc, out, _ = launch_dry(["--ngpu", "4", "--dry-run", "--", "--outdir", "a b"])
    assert out == ("py -m torch.distributed.run --standalone --nnodes 1 --nproc_per_node 4 "
                   "-m ser.bin.train --ngpu 4 --outdir a\\ b")
    rc, out, _ = launch_dry(["--ngpu", "0", "--nproc", "2", "--module", "ser.bin.train_diffusion", "--dry-run", "--", "-x"])
    assert out.endswith("--nproc_per_node 2 -m ser.bin.train_diffusion --ngpu 0 -x")
    # several nodes: srun + torchrun with a c10d rendezvous on the allocation's first node
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "scontrol").write_text("#!/bin/sh\necho gpu07\necho gpu08\n")
    (fake / "scontrol").chmod(0o755)
    slurm = {"PATH": f"{fake}:{os.environ['PATH']}", "SLURM_JOB_ID": "4321", "SLURM_JOB_NODELIST": "gpu[07-08]",
             "SLURM_JOB_NUM_NODES": "2"}
    rc, out, err = launch_dry(["--ngpu", "2", "--num_nodes", "2", "--dry-run", "--", "--seed", "1"], slurm)
    assert rc == 0, err
    assert out == ("srun --nodes 2 --ntasks 2 --ntasks-per-node 1 --kill-on-bad-exit=1 py -m torch.distributed.run "
                   "--nnodes 2 --nproc_per_node 2 --rdzv-id 4321 --rdzv-backend c10d --rdzv-endpoint gpu07:29721 "
                   "-m ser.bin.train --ngpu 2 --seed 1")
    # errors
    no_slurm = {k: "" for k in ("SLURM_JOB_ID", "SLURM_JOB_NODELIST")}
    assert "Slurm allocation" in launch_dry(["--num_nodes", "2", "--", "-x"], no_slurm)[2]
    assert "not after '--'" in launch_dry(["--ngpu", "1", "--", "--ngpu", "1"])[2]
    assert "one process per GPU" in launch_dry(["--ngpu", "2", "--nproc", "3", "--", "-x"])[2]


# --- two processes through the launcher -----------------------------------------------------
def test_two_processes_equal_one_and_resume(tmp_path):
    corpus = make_corpus(str(tmp_path / "c"), offset_scale=0.25)
    conf = tmp_path / "train.yaml"
    conf.write_text(CONFIG)
    args = ["--config", str(conf), "--feats-dir", corpus["data"], "--fold-dir", corpus["fold"],
            "--classes", corpus["classes"], "--seed", "3", "--num-threads", "1", "--sync-batchnorm", "true"]
    two, cut, one = tmp_path / "two", tmp_path / "cut", tmp_path / "one"
    # the uninterrupted run and a run killed after epoch 1 at the same time (the machine is small)
    p_two, p_cut = start(args, two), start(args, cut, **{KILL_ENV: "1"})
    # meanwhile the single-process reference, in this process
    assert train_prog.main(args + ["--ngpu", "0", "--outdir", str(one)]) == 0
    rc, log = finish(p_two)
    assert rc == 0, log
    rc_cut, log_cut = finish(p_cut)

    # only rank 0 wrote: one line per epoch in train.log, one history row per epoch, one checkpoint
    train_log = (two / "train.log").read_text()
    for e in (1, 2):
        assert train_log.count(f"epoch {e}/2 lr ") == 1, train_log
    assert train_log.count("distributed: 2 processes (gloo), 4 segments per process") == 1
    assert train_log.count("finished:") == 1 and train_log.count("config hash") == 1
    assert len(rows(two)) == 3
    assert sorted(os.listdir(two / "checkpoints")) == ["best", "last.pt"]
    assert sorted(os.listdir(two / "checkpoints/best")) == ["epoch1.pt", "epoch2.pt"]
    assert sorted(os.listdir(two)) == ["averaged.tsv", "checkpoints", "config.yaml", "done", "history.png",
                                     "history.tsv", "model.pt", "model_best_epoch.pt", "train.log"]
    assert train_log.count("model.pt: the mean of the weights of epochs") == 1

    # the two processes computed what one process computes on the same global batch
    a, b = model_of(one), model_of(two)
    assert a["epoch"] == b["epoch"] == 2 and "rng_ranks" not in a and len(b["rng_ranks"]) == 2
    assert set(a["model"]) == set(b["model"])
    for k in a["model"]:
        np.testing.assert_allclose(b["model"][k].double().numpy(), a["model"][k].double().numpy(),
                                   rtol=0, atol=1e-5, err_msg=k)
    avg_one, avg_two = read_averaged(str(one)), read_averaged(str(two))
    assert sorted(avg_one["epochs"]) == sorted(avg_two["epochs"]) == [1, 2]
    assert avg_two["valid_loss"] == pytest.approx(avg_one["valid_loss"], rel=1e-4)
    for ra, rb in zip(rows(one)[1:], rows(two)[1:]):
        assert ra[:2] == rb[:2]  # epoch and lr
        np.testing.assert_allclose(np.array(rb[2:], float), np.array(ra[2:], float), rtol=1e-4, atol=1e-5)
    # the ranks drew dropout from different streams
    assert not torch.equal(b["rng_ranks"][0]["torch"], b["rng_ranks"][1]["torch"])

    # the killed run: checkpoint of epoch 1 only, no done
    assert rc_cut != 0, log_cut
    assert load_checkpoint(str(cut / "checkpoints/last.pt"))["epoch"] == 1
    assert not (cut / "done").exists() and len(rows(cut)) == 2
    first = model_of(cut)["model"]
    assert any(not torch.allclose(first[k].double(), b["model"][k].double(), atol=1e-4) for k in first)

    # resumed with 2 processes: the same as the uninterrupted 2-process run
    rc, log = finish(start(args, cut))
    assert rc == 0, log
    c = model_of(cut)
    for k in b["model"]:
        assert torch.equal(b["model"][k], c["model"][k]), k
    assert rows(cut) == rows(two)
    ma, mc = read_model_file(str(two / "model.pt")), read_model_file(str(cut / "model.pt"))
    assert ma["meta"]["best_epoch"] == mc["meta"]["best_epoch"]
    assert all(torch.equal(ma["state_dict"][k], mc["state_dict"][k]) for k in ma["state_dict"])
    assert read_averaged(str(cut)) == avg_two and ma["meta"]["averaged_epochs"] == avg_two["epochs"]
    cut_log = (cut / "train.log").read_text()
    assert cut_log.count("resumed from") == 1 and cut_log.count("epoch 2/2 lr ") == 1
    # model.pt holds plain BatchNorm names: the recipe's scoring loads it as usual
    assert "convs.1.running_var" in ma["state_dict"]
