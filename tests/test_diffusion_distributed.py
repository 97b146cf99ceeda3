"""Data-parallel training of the diffusion model (ser.bin.train_diffusion under torchrun).

`python -m ser.bin.train_diffusion` runs as a recipe would start it on several GPUs, through
utils/launch_train.sh --module ser.bin.train_diffusion --ngpu 0 --nproc 2 (torchrun --standalone,
2 CPU processes, gloo), on a tiny mel corpus with the tiny config of diffusion_helpers.py
(GroupNorm only, dropout 0): the two processes, each with half of every global batch and the
matching slice of the global batch's timesteps and noise, must compute what one process computes
on the same global batch; only rank 0 writes; a run killed after a checkpoint and resumed under
DDP ends exactly where an uninterrupted 2-process run does.
"""
import os
import re

import numpy as np
import pytest
import torch

from ser.bin import train_diffusion
from ser.diffusion.trainer import KILL_ENV
from ser.errors import SerError
from ser.runtime import distributed as D
from ser.runtime.checkpoint import KILL_STATUS

from launch_helpers import finish, start_launch
from launch_helpers import history_rows as history
from launch_helpers import last_checkpoint as ckpt
from diffusion_helpers import EMOTIONS, SENTENCES, TINY, write_mel_data

SPLITS = {"train": ["03", "08"], "valid": ["09"], "test": ["10"]}


def make_corpus(root):
    """A mel data dir (4 speakers x 6 utterances, 80 mels in [-1, 1], one > 256 frames per
    speaker) with text/utt2emo/utt2spk, and fold 1 (train 03 08, valid 09, test 10)."""
    rng = np.random.default_rng(5)
    data, fold = root / "data", root / "fold"
    data.mkdir(parents=True)
    fold.mkdir(parents=True)
    mats, utt2spk, utt2emo, text = {}, {}, {}, {}
    for spk in sum(SPLITS.values(), []):
        for i in range(6):
            utt = f"{spk}-a{i:02d}"
            frames = 300 if i == 0 else int(rng.integers(40, 200))
            mats[utt] = np.clip(-0.6 + 0.3 * (i % 3) + 0.1 * rng.normal(size=(frames, 80)), -1, 1).astype(np.float32)
            utt2spk[utt], utt2emo[utt], text[utt] = spk, EMOTIONS[i % 3], SENTENCES[i % 2]
    write_mel_data(data, mats, utt2spk, utt2emo, text)
    for name, spks in SPLITS.items():
        (fold / f"{name}.list").write_text("".join(u + "\n" for u in sorted(mats) if utt2spk[u] in spks))
    (fold / "info.yaml").write_text("test_speakers: ['10']\nvalid_speakers: ['09']\n")
    (root / "tiny.yaml").write_text(TINY)
    return {"config": str(root / "tiny.yaml"), "data": str(data), "fold": str(fold)}


def program_args(c, *extra):
    """4 steps of global batch 4 (2 segments per process), a checkpoint every 2 steps, a log row
    every 2 steps."""
    return ["--config", c["config"], "--feats-dir", c["data"], "--fold-dir", c["fold"], "--seed", "3",
            "--num-threads", "1", "--set", "max_steps=4", "--set", "checkpoint_every=2", *extra]


def start(args, outdir, nproc=2, **env):
    return start_launch(args, outdir, module="ser.bin.train_diffusion", nproc=nproc, drop=(KILL_ENV,), **env)


def model_nets(outdir):
    return torch.load(os.path.join(outdir, "model.pt"), map_location="cpu", weights_only=False)["nets"]


def test_batch_size_must_divide_by_the_processes(tmp_path, monkeypatch):
    """Refused right after joining the run (here: a fake 3-process run), before anything is written."""
    c = make_corpus(tmp_path)
    monkeypatch.setattr(D, "setup", lambda ngpu=None: D.DistEnv(0, 3, 0, 3, torch.device("cpu"), "gloo"))
    with pytest.raises(SerError, match="batch_size 4 .* not divisible by the 3 processes"):
        train_diffusion.main(program_args(c, "--ngpu", "0", "--outdir", str(tmp_path / "exp")))
    assert not (tmp_path / "exp").exists()


def test_two_processes_equal_one_and_resume(tmp_path):
    c = make_corpus(tmp_path / "corpus")
    args = program_args(c)
    one, two, cut = tmp_path / "one", tmp_path / "two", tmp_path / "cut"
    # the uninterrupted 2-process run and one killed after the checkpoint of step 2, meanwhile the
    # single-process reference in this process (the machine is small)
    p_two, p_cut = start(args, two), start(args, cut, **{KILL_ENV: "2"})
    assert train_diffusion.main(args + ["--ngpu", "0", "--outdir", str(one)]) == 0
    rc, log = finish(p_two)
    assert rc == 0, log
    rc_cut, log_cut = finish(p_cut)

    # only rank 0 wrote: one train.log line per logged step, one checkpoint, the same files
    train_log = (two / "train.log").read_text()
    for step in (2, 4):
        assert train_log.count(f"step {step}/4 lr ") == 1, train_log
    assert train_log.count("step 1/4 ") == 0 and train_log.count("step 3/4 ") == 0
    assert train_log.count("checkpoint at step") == 2 and train_log.count("finished:") == 1
    assert train_log.count("distributed: 2 processes (gloo), 2 segments per process and step (global batch 4)") == 1
    assert train_log.count("config hash") == 1
    assert sorted(os.listdir(two)) == sorted(os.listdir(one))
    assert sorted(os.listdir(two / "checkpoints")) == ["last.pt"]
    assert (two / "done").is_file() and (two / "spm.model").is_file()
    assert (two / "train_utts.list").read_text() == (one / "train_utts.list").read_text()
    assert (two / "config.yaml").read_text() == (one / "config.yaml").read_text()

    # two processes computed what one process computes on the same global batch
    a, b = ckpt(one), ckpt(two)
    assert a["step"] == b["step"] == 4 and "rng_ranks" not in a and len(b["rng_ranks"]) == 2
    assert a["nets"].keys() == b["nets"].keys()
    for k in a["nets"]:
        np.testing.assert_allclose(b["nets"][k].double().numpy(), a["nets"][k].double().numpy(),
                                   rtol=0, atol=1e-5, err_msg=k)
    for k in a["ema"]["shadow"]:
        np.testing.assert_allclose(b["ema"]["shadow"][k].double().numpy(), a["ema"]["shadow"][k].double().numpy(),
                                   rtol=0, atol=1e-5, err_msg=k)
    ma, mb = model_nets(one), model_nets(two)
    for k in ma:
        np.testing.assert_allclose(mb[k].double().numpy(), ma[k].double().numpy(), rtol=0, atol=1e-5, err_msg=k)
    # the shared generators (data order, timesteps + noise) are where one process left them
    assert torch.equal(a["noise_gen"], b["noise_gen"]) and torch.equal(a["rng"]["generator"], b["rng"]["generator"])
    assert a["perm"].tolist() == b["perm"].tolist() and a["pos"] == b["pos"]
    # losses logged over the global batch
    ha, hb = history(one), history(two)
    assert [r[:2] for r in ha] == [r[:2] for r in hb] and len(ha) == 3   # header, steps 2 and 4, lr
    np.testing.assert_allclose(np.array([r[2:] for r in hb[1:]], float), np.array([r[2:] for r in ha[1:]], float),
                               rtol=1e-4, atol=1e-6)

    # the killed run: the checkpoint of step 2, no done, exited non-zero
    assert rc_cut != 0, log_cut
    assert re.search(rf"exitcode\s*:\s*{KILL_STATUS}\b", log_cut), log_cut   # torchrun's report of the ranks
    at_2 = ckpt(cut)
    assert at_2["step"] == 2 and len(at_2["rng_ranks"]) == 2
    assert not (cut / "done").exists() and not (cut / "model.pt").exists()
    assert any(not torch.allclose(at_2["nets"][k], b["nets"][k], atol=1e-4) for k in b["nets"])  # not vacuous

    # resumed with 2 processes: bit-identical to the uninterrupted 2-process run
    rc, log = finish(start(args, cut))
    assert rc == 0, log
    r = ckpt(cut)
    assert r["step"] == 4
    for k in b["nets"]:
        assert torch.equal(r["nets"][k], b["nets"][k]), k
    for k in b["ema"]["shadow"]:
        assert torch.equal(r["ema"]["shadow"][k], b["ema"]["shadow"][k]), k
    mc = model_nets(cut)
    assert all(torch.equal(mc[k], mb[k]) for k in mb)
    assert history(cut) == history(two)
    cut_log = (cut / "train.log").read_text()
    assert cut_log.count("resumed from") == 1 and cut_log.count("step 4/4 lr ") == 1
    assert cut_log.count("step 2/4 lr ") == 1      # logged once, before the kill
