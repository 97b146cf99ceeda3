"""Unit tests of ser/runtime, the plumbing both trainers share: segmenting and padding, device
choice, torch files, config hashing, and a run dir's log, checkpoint, resumption and `done`."""
import numpy as np
import pytest
import torch

from ser.errors import SerError
from ser.runtime.checkpoint import KILL_STATUS, kill_hook, load_checkpoint, rng_states
from ser.runtime.config import ConfigSchema, config_hash
from ser.runtime.device import inference_device, process_device
from ser.runtime.run_dir import RunDir
from ser.runtime.segments import segment_matrix
from ser.runtime.torch_files import load_torch_file, save_torch_file

from training_toy import reference_segments


# --- segments -------------------------------------------------------------------------------
@pytest.mark.parametrize("T,expected_starts", [
    (5, [0]),                 # T < L: one zero-padded segment
    (16, [0]),                # T = L
    (21, [0, 5]),             # between L and L + S: end-aligned second window
    (40, [0, 8, 16, 24]),     # windows fit exactly: no extra window
    (43, [0, 8, 16, 24, 27]),  # frames left over: end-aligned last window
])
def test_segment_matrix(T, expected_starts):
    L, S = 16, 8
    x = np.arange(T * 3, dtype=np.float32).reshape(T, 3) + 1.0
    seg = segment_matrix(x, L, S)
    assert seg.dtype == np.float32 and seg.shape == (len(expected_starts), L, 3)
    np.testing.assert_array_equal(seg, reference_segments(x, L, S))
    for k, s in enumerate(expected_starts):
        n = min(L, T - s)
        np.testing.assert_array_equal(seg[k, :n], x[s:s + n])
        assert not seg[k, n:].any()  # zero padding after the real frames
    # every frame is covered
    covered = set()
    for s in expected_starts:
        covered.update(range(s, min(s + L, T)))
    assert covered == set(range(T))


def test_segment_matrix_bad_input():
    with pytest.raises(SerError):
        segment_matrix(np.zeros((0, 3)), 16, 8)
    with pytest.raises(SerError):
        segment_matrix(np.zeros((10, 3)), 0, 8)


def test_mel_segments_pad_with_minus_one():
    """The diffusion model's segments: padded with -1 (the silence of the scaled mel)."""
    m = np.arange(300 * 2, dtype=np.float32).reshape(300, 2) / 1000.0
    segs = segment_matrix(m, 256, 128, pad_value=-1.0)
    assert segs.shape == (2, 256, 2)                      # starts 0 and 300 - 256 = 44
    np.testing.assert_array_equal(segs[0], m[:256])
    np.testing.assert_array_equal(segs[1], m[44:300])
    short = segment_matrix(m[:100], 256, 128, pad_value=-1.0)
    assert short.shape == (1, 256, 2)
    np.testing.assert_array_equal(short[0, :100], m[:100])
    assert (short[0, 100:] == -1.0).all()


# --- device ---------------------------------------------------------------------------------
def test_device_choice_without_gpu_requests():
    assert process_device(0) == torch.device("cpu") and inference_device(0) == "cpu"
    with pytest.raises(SerError, match=r"--ngpu 2: only 0 \(CPU\) or 1 GPU is supported"):
        process_device(2)
    with pytest.raises(SerError, match="launch_train.sh --ngpu 2"):
        process_device(2, launcher=True)
    with pytest.raises(SerError, match="--ngpu -1: must be >= 0"):
        process_device(-1, launcher=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the messages of a machine without CUDA")
def test_device_choice_without_cuda():
    assert process_device(None) == torch.device("cpu")
    with pytest.raises(SerError, match="--ngpu 1 but CUDA is not available"):
        process_device(1)
    with pytest.raises(SerError, match="--ngpu 2 but no CUDA device is available"):
        inference_device(2)


# --- torch files and config hash ------------------------------------------------------------
def test_torch_files_round_trip_and_one_line_errors(tmp_path):
    path = str(tmp_path / "a.pt")
    save_torch_file(path, {"x": torch.arange(3)})
    assert torch.equal(load_torch_file(path, "{path}: bad ({error})", keys=("x",))["x"], torch.arange(3))
    with pytest.raises(SerError, match=r"a.pt: bad \(KeyError: 'y'\)"):
        load_torch_file(path, "{path}: bad ({error})", keys=("y",))
    with pytest.raises(FileNotFoundError):
        load_torch_file(str(tmp_path / "none.pt"), "{path}: bad ({error})", passthrough=(FileNotFoundError,))
    with pytest.raises(SerError, match=r"none.pt: cannot read checkpoint \(FileNotFoundError"):
        load_checkpoint(str(tmp_path / "none.pt"))


def test_config_hash_leaves_out_the_job_keys():
    schema = ConfigSchema({"a": 1, "tensorboard": False}, job_keys=("seed", "data.fold_dir", "tensorboard"))
    one = {"a": 1, "tensorboard": False, "data": {"feats_dir": "f", "fold_dir": "1"}, "seed": 1}
    other = {"a": 1, "tensorboard": True, "data": {"feats_dir": "f", "fold_dir": "2"}, "seed": 2}
    assert schema.hash(one) == schema.hash(other) == config_hash(one, schema.job_keys)
    assert schema.hash(one) != schema.hash(dict(one, a=2)) and config_hash(one) != config_hash(other)


# --- run dir --------------------------------------------------------------------------------
def test_run_dir_log_checkpoint_resume_done(tmp_path):
    positions = []
    run = RunDir(str(tmp_path), "ser.test_runtime", positions.append, notes=["a note"])
    run.note_processes(8)          # a single process: no note
    generator = torch.Generator().manual_seed(3)
    with run.log() as log:
        assert not run.resume(lambda state: None, log, lambda: "never")
        state = run.add_rank_states({"step": 1, "rng": rng_states(generator)})
        assert "rng_ranks" not in state
        run.save_checkpoint(state)
        run.checkpoint_written(1)
        expected = torch.rand(2, generator=generator)
        torch.rand(5, generator=generator)
        loaded = []
        assert run.resume(lambda s: loaded.append(s["step"]) or run.restore_rng(s, generator, 1, "x"), log,
                          lambda: "at step 1")
        assert torch.equal(torch.rand(2, generator=generator), expected)   # the generator continues
        run.finish(log, "steps 1\n")
    assert positions == [1] and loaded == [1]
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "a note", f"resumed from {tmp_path}/checkpoints/last.pt at step 1", "finished: steps 1"]
    assert (tmp_path / "done").read_text() == "steps 1\n"


def test_kill_hook(monkeypatch):
    monkeypatch.delenv("SER_TEST_KILL", raising=False)
    assert kill_hook("SER_TEST_KILL") is None
    monkeypatch.setenv("SER_TEST_KILL", "2")
    hook = kill_hook("SER_TEST_KILL")
    hook(1)
    with pytest.raises(SystemExit) as e:
        hook(2)
    assert e.value.code == KILL_STATUS


def test_kill_hook_under_distributed_exits_without_teardown(monkeypatch):
    """A rank of a process group leaves with os._exit(status) (as a killed process would): a
    normal interpreter exit with the group alive can abort in gloo's threads instead."""
    from ser.runtime import checkpoint

    class Exited(Exception):
        pass

    def fake_exit(status):
        raise Exited(status)

    monkeypatch.setenv("SER_TEST_KILL", "3")
    monkeypatch.setattr(checkpoint.D, "is_distributed", lambda: True)
    monkeypatch.setattr(checkpoint.os, "_exit", fake_exit)
    hook = kill_hook("SER_TEST_KILL")
    hook(2)
    with pytest.raises(Exited) as e:
        hook(3)
    assert e.value.args == (KILL_STATUS,)
