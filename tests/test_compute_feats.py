"""ser.bin.compute_feats and utils/make_feats.sh on tiny data dirs (3-4 real EmoDB files)."""
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from ser.audio import load_audio
from ser.bin.compute_feats import main as compute_feats_main
from ser.errors import SerError
from ser.features import build_extractor, read_feats_config

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "egs" / "TEMPLATE" / "conf" / "feats"
FILES = ("03a01Fa", "03a01Nc", "08a02Tb")


def make_data_dir(path, emodb_dir, files=FILES, piped=()):
    """A data dir with wav.scp/utt2spk/spk2utt; utterances in `piped` use a "cat FILE |" entry."""
    path.mkdir(parents=True)
    wav, utt2spk, spk2utt = [], [], {}
    for name in files:
        utt, spk = f"{name[:2]}-{name}", name[:2]
        f = emodb_dir / "wav" / f"{name}.wav"
        wav.append(f"{utt} cat {f} |" if name in piped else f"{utt} {f}")
        utt2spk.append(f"{utt} {spk}")
        spk2utt.setdefault(spk, []).append(utt)
    (path / "wav.scp").write_text("\n".join(wav) + "\n")
    (path / "utt2spk").write_text("\n".join(utt2spk) + "\n")
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(u)}\n" for s, u in spk2utt.items()))
    return path


def compute_feats(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ser.bin.compute_feats", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=REPO)


def error_lines(stderr):
    return [l for l in stderr.splitlines() if "error" in l]


@pytest.mark.parametrize("feat", ["spec", "mel"])
def test_ark_scp_equal_library_output(tmp_path, emodb_dir, feat):
    data = make_data_dir(tmp_path / "data", emodb_dir, piped=("03a01Nc",))
    prefix = tmp_path / "out" / "raw_feats.1"
    r = compute_feats("--config", CONF / f"{feat}.yaml", "--write-num-frames", data, prefix)
    assert r.returncode == 0, r.stderr
    scp = Path(f"{prefix}.scp")
    lines = scp.read_text().splitlines()
    assert [l.split()[0] for l in lines] == ["03-03a01Fa", "03-03a01Nc", "08-08a02Tb"]
    assert all(l.split()[1].startswith(f"{prefix}.ark:") for l in lines)  # final name, not a temp
    assert sorted(p.name for p in prefix.parent.iterdir()) == \
        ["raw_feats.1.ark", "raw_feats.1.scp", "raw_feats.1.utt2num_frames"]

    extract = build_extractor(read_feats_config(CONF / f"{feat}.yaml"))
    feats = dict(kaldiio.load_scp(str(scp)))
    num_frames = dict(l.split() for l in Path(f"{prefix}.utt2num_frames").read_text().splitlines())
    for name in FILES:
        utt = f"{name[:2]}-{name}"
        expected = extract(*load_audio(str(emodb_dir / "wav" / f"{name}.wav")))
        assert feats[utt].dtype == np.float32 and feats[utt].shape == expected.shape
        np.testing.assert_allclose(feats[utt], expected, rtol=0, atol=1e-6)
        assert int(num_frames[utt]) == expected.shape[0] == extract.num_frames(44100 if feat == "mel" else 32000)


def test_corrupt_wav_is_one_line_error_and_leaves_no_output(tmp_path, emodb_dir):
    data = make_data_dir(tmp_path / "data", emodb_dir, files=FILES[:2])
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage" * 10)
    with open(data / "wav.scp", "a") as f:
        f.write(f"03-zzz {bad}\n")
    prefix = tmp_path / "out" / "raw_feats.1"
    prefix.parent.mkdir()
    Path(f"{prefix}.scp").write_text("stale complete-looking scp\n")  # from an earlier run
    r = compute_feats("--config", CONF / "spec.yaml", "--write-num-frames", data, prefix)
    assert r.returncode == 1
    errs = error_lines(r.stderr)
    assert len(errs) == 1 and errs[0] == r.stderr.strip().splitlines()[-1]
    assert errs[0].startswith(f"compute_feats.py: error: {data / 'wav.scp'}:3: utterance '03-zzz': "
                              f"cannot read audio '{bad}'")
    assert list(prefix.parent.iterdir()) == []


def test_empty_wav_bad_config_missing_wav_scp(tmp_path, emodb_dir):
    """In-process (main raises SerError; run_main prints it as above)."""
    data = make_data_dir(tmp_path / "data", emodb_dir, files=FILES[:1])
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000, subtype="PCM_16")
    with open(data / "wav.scp", "a") as f:
        f.write(f"03-zzz {empty}\n")
    out = tmp_path / "o" / "raw"
    with pytest.raises(SerError, match=rf"wav\.scp:2: utterance '03-zzz': audio '{empty}' has no samples"):
        compute_feats_main(["--config", str(CONF / "mel.yaml"), "--write-num-frames", str(data), str(out)])
    assert list(out.parent.iterdir()) == []

    conf = tmp_path / "c.yaml"
    conf.write_text("type: spec\nnum_bins: 128\nhop: 3\n")
    with pytest.raises(SerError) as e:
        compute_feats_main(["--config", str(conf), str(data), str(out)])
    assert str(e.value) == (f"{conf}: unknown key 'hop' for type 'spec' (allowed: type, sample_rate, "
                            "frame_length_ms, frame_shift_ms, n_fft, num_bins, window, periodic_window, log_floor)")
    with pytest.raises(SerError, match="no wav.scp in data dir"):
        compute_feats_main(["--config", str(CONF / "spec.yaml"), str(tmp_path), str(out)])
    assert list(out.parent.iterdir()) == []


def _make_feats(env, *args):
    return subprocess.run(["bash", str(REPO / "utils" / "make_feats.sh"), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=REPO)


def test_make_feats_two_jobs(tmp_path, emodb_dir, script_env):
    files = ("03a01Fa", "03a01Nc", "08a01Ab", "08a02Tb")
    data = make_data_dir(tmp_path / "in", emodb_dir, files=files)
    (data / "utt2emo").write_text("".join(f"{f[:2]}-{f} x\n" for f in files))
    (data / "feats.scp").write_text("".join(f"{f[:2]}-{f} /old.ark:9\n" for f in files))  # not copied
    out, featdir = tmp_path / "out", tmp_path / "feats"
    out.mkdir()
    (out / ".complete").write_text("old signature\n")
    r = _make_feats(script_env, "--nj", "2", "--config", CONF / "mel.yaml", data, out, featdir)
    assert r.returncode == 0, r.stderr

    assert sorted(p.name for p in out.iterdir()) == \
        ["conf.yaml", "feats.scp", "spk2utt", "utt2emo", "utt2num_frames", "utt2spk", "wav.scp"]
    assert (out / "conf.yaml").read_text() == (CONF / "mel.yaml").read_text()
    assert (out / "utt2emo").read_text() == (data / "utt2emo").read_text()
    scp = (out / "feats.scp").read_text().splitlines()
    assert [l.split()[0] for l in scp] == [f"{f[:2]}-{f}" for f in files]
    # one ark per job (speakers 03 and 08), absolute paths
    assert {l.split()[1].rsplit(":", 1)[0] for l in scp} == \
        {str(featdir / "raw_feats_out.1.ark"), str(featdir / "raw_feats_out.2.ark")}
    assert (featdir / "log" / "make_feats_out.2.log").is_file()
    extract = build_extractor(read_feats_config(CONF / "mel.yaml"))
    feats = dict(kaldiio.load_scp(str(out / "feats.scp")))
    np.testing.assert_allclose(feats["08-08a01Ab"], extract(*load_audio(str(emodb_dir / "wav" / "08a01Ab.wav"))),
                               rtol=0, atol=1e-6)
    assert (out / "utt2num_frames").read_text() == "".join(f"{f[:2]}-{f} 172\n" for f in files)


def test_make_feats_failed_job_leaves_no_feats_scp(tmp_path, emodb_dir, script_env):
    data = make_data_dir(tmp_path / "in", emodb_dir, files=FILES)
    lines = (data / "wav.scp").read_text().splitlines()
    lines[-1] = lines[-1].split()[0] + " " + str(tmp_path / "missing.wav")
    (data / "wav.scp").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "feats.scp").write_text("stale\n")
    r = _make_feats(script_env, "--nj", "2", "--config", CONF / "spec.yaml", data, out, tmp_path / "feats")
    assert r.returncode == 1
    # the failed job's one-line reason is in the message, not only in its log
    (line,) = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert line.startswith("make_feats.sh: error: feature extraction failed: ") and "missing.wav" in line, r.stderr
    assert line.endswith(f"see {tmp_path / 'feats'}/log/make_feats_out.*.log")
    assert not (out / "feats.scp").exists() and not (out / "conf.yaml").exists()
    log = (tmp_path / "feats" / "log" / "make_feats_out.2.log").read_text()
    assert "missing.wav" in log


def test_make_feats_usage_errors(tmp_path, emodb_dir, script_env):
    data = make_data_dir(tmp_path / "in", emodb_dir, files=FILES[:1])
    r = _make_feats(script_env, "--nj", "1", data, tmp_path / "out", tmp_path / "f")
    assert r.returncode == 1 and "--config CONF is required" in r.stderr
    r = _make_feats(script_env, "--nj", "2", "--config", CONF / "spec.yaml", data, tmp_path / "out", tmp_path / "f")
    assert r.returncode == 1 and "more than the 1 utterances" in r.stderr
    r = _make_feats(script_env, "--njobs", "2", "--config", CONF / "spec.yaml", data, tmp_path / "out", tmp_path / "f")
    assert r.returncode == 1 and "invalid option --njobs" in r.stderr


# ---------------------------------------------------------------- one pass for several types

def _read_outputs(prefix):
    feats = dict(kaldiio.load_scp(f"{prefix}.scp"))
    frames = Path(f"{prefix}.utt2num_frames").read_text()
    return feats, frames


def test_one_pass_writes_the_same_matrices_as_separate_passes(tmp_path, emodb_dir):
    """Two configs in one job (each file read and resampled once) = one job per config, bit for
    bit, on a plain path, a "cmd |" entry and an in-process speed-perturbation entry."""
    data = make_data_dir(tmp_path / "data", emodb_dir, piped=("03a01Nc",))
    with open(data / "wav.scp", "a") as f:  # utils/perturb_data_dir_speed.sh's lazy form
        f.write(f"sp1.1-08-08a02Tb python3 -m ser.bin.speed_perturb --factor 1.1 "
                f"{emodb_dir / 'wav' / '08a02Tb.wav'} |\n")
    r = compute_feats("--config", CONF / "spec.yaml", "--config", CONF / "mel.yaml", "--write-num-frames",
                      data, tmp_path / "one" / "spec", tmp_path / "one" / "mel")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == \
        ["mel.ark", "mel.scp", "mel.utt2num_frames", "spec.ark", "spec.scp", "spec.utt2num_frames"]
    for feat in ("spec", "mel"):
        r = compute_feats("--config", CONF / f"{feat}.yaml", "--write-num-frames", data, tmp_path / "sep" / feat)
        assert r.returncode == 0, r.stderr
        one, one_frames = _read_outputs(tmp_path / "one" / feat)
        sep, sep_frames = _read_outputs(tmp_path / "sep" / feat)
        assert list(one) == list(sep) and len(one) == 4
        for utt in one:
            assert one[utt].dtype == sep[utt].dtype == np.float32
            np.testing.assert_array_equal(one[utt], sep[utt])
        assert one_frames == sep_frames
        assert f"wrote 4 utterances ({feat}, dim {80 if feat == 'mel' else 128}" in r.stderr


def test_one_job_several_data_dirs_and_skipped_types(tmp_path, emodb_dir):
    """Groups DATA_DIR PREFIX_spec PREFIX_mel; '-' leaves a type out for that data dir."""
    a = make_data_dir(tmp_path / "a", emodb_dir, files=FILES[:2])
    b = make_data_dir(tmp_path / "b", emodb_dir, files=FILES[2:])
    out = tmp_path / "out"
    r = compute_feats("--config", CONF / "spec.yaml", "--config", CONF / "mel.yaml",
                      a, out / "a_spec", out / "a_mel", b, out / "b_spec", "-")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == \
        ["a_mel.ark", "a_mel.scp", "a_spec.ark", "a_spec.scp", "b_spec.ark", "b_spec.scp"]
    extract = {f: build_extractor(read_feats_config(CONF / f"{f}.yaml")) for f in ("spec", "mel")}
    for name, data, feat in (("a_spec", a, "spec"), ("a_mel", a, "mel"), ("b_spec", b, "spec")):
        feats = dict(kaldiio.load_scp(str(out / f"{name}.scp")))
        files = FILES[:2] if data == a else FILES[2:]
        assert list(feats) == [f"{f[:2]}-{f}" for f in files]
        for f in files:
            np.testing.assert_array_equal(feats[f"{f[:2]}-{f}"],
                                          extract[feat](*load_audio(str(emodb_dir / "wav" / f"{f}.wav"))))


def test_one_job_failure_leaves_no_output_of_any_data_dir(tmp_path, emodb_dir):
    a = make_data_dir(tmp_path / "a", emodb_dir, files=FILES[:1])
    b = make_data_dir(tmp_path / "b", emodb_dir, files=FILES[1:2])
    with open(b / "wav.scp", "a") as f:
        f.write(f"08-zzz {tmp_path / 'missing.wav'}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_mel.scp").write_text("stale\n")
    r = compute_feats("--config", CONF / "spec.yaml", "--config", CONF / "mel.yaml",
                      a, out / "a_spec", out / "a_mel", b, out / "b_spec", out / "b_mel")
    assert r.returncode == 1
    errs = error_lines(r.stderr)
    assert len(errs) == 1 and f"{b / 'wav.scp'}:2: utterance '08-zzz'" in errs[0]
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["D", "P1"], "with 2 --config option(s) the arguments are groups of a data dir and 2 prefix(es), got 2 argument(s)"),
    (["D", "-", "-"], "data dir 'D': every prefix is '-' (nothing to compute)"),
    (["D", "P", "-", "E", "P", "-"], "output prefix 'P' is given twice"),
])
def test_bad_argument_groups_are_one_line_errors(args, message):
    with pytest.raises(SerError) as e:
        compute_feats_main(["--config", str(CONF / "spec.yaml"), "--config", str(CONF / "mel.yaml"), *args])
    assert str(e.value) == message


def test_light_imports():
    """The feature program loads what feature extraction needs (numpy, kaldiio, soundfile, tqdm),
    not torch (its import costs more CPU than the features of a corpus), the trainers, the models,
    plotting, scipy or librosa."""
    code = ("import sys, ser.bin.compute_feats; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} | "
            "{m for m in sys.modules if m.startswith('ser.')})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            check=True).stdout.split()
    for heavy in ("torch", "torchaudio", "scipy", "librosa", "numba", "matplotlib", "pandas", "sklearn",
                  "ser.training", "ser.models", "ser.diffusion", "ser.augment"):
        assert heavy not in loaded, heavy
    assert {"numpy", "kaldiio", "soundfile", "tqdm"} <= set(loaded)


def test_make_feats_several_types_and_sources_in_one_call(tmp_path, emodb_dir, script_env):
    a = make_data_dir(tmp_path / "a", emodb_dir, files=FILES[:2])
    b = make_data_dir(tmp_path / "b", emodb_dir, files=("08a01Ab", "08a02Tb"))
    featdir = tmp_path / "feats"
    r = _make_feats(script_env, "--nj", "2", "--config", CONF / "spec.yaml", "--config", CONF / "mel.yaml",
                    a, tmp_path / "a_spec", tmp_path / "a_mel", b, "-", tmp_path / "b_mel", featdir)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "b_spec").exists()
    # one log per job, named after the first output; one ark per output and job
    assert sorted(p.name for p in (featdir / "log").iterdir()) == ["make_feats_a_spec.1.log", "make_feats_a_spec.2.log"]
    assert len(list(featdir.glob("*.ark"))) == 6
    for name, feat in (("a_spec", "spec"), ("a_mel", "mel"), ("b_mel", "mel")):
        out = tmp_path / name
        assert (out / "conf.yaml").read_text() == (CONF / f"{feat}.yaml").read_text()
        assert (out / "wav.scp").read_text() == (tmp_path / name[0] / "wav.scp").read_text()
        # the same matrices as a make_feats.sh call of its own
        sep = tmp_path / "sep" / name
        r = _make_feats(script_env, "--nj", "1", "--config", CONF / f"{feat}.yaml", tmp_path / name[0], sep,
                        tmp_path / "sep_feats")
        assert r.returncode == 0, r.stderr
        one, alone = dict(kaldiio.load_scp(str(out / "feats.scp"))), dict(kaldiio.load_scp(str(sep / "feats.scp")))
        assert list(one) == list(alone) == sorted(one)
        for utt in one:
            np.testing.assert_array_equal(one[utt], alone[utt])
        assert (out / "utt2num_frames").read_text() == (sep / "utt2num_frames").read_text()


def test_make_feats_bad_groups(tmp_path, emodb_dir, script_env):
    a = make_data_dir(tmp_path / "a", emodb_dir, files=FILES[:2])
    two = ["--nj", "1", "--config", CONF / "spec.yaml", "--config", CONF / "mel.yaml"]
    r = _make_feats(script_env, *two, a, tmp_path / "o", tmp_path / "f")
    assert r.returncode == 1 and "groups of DATA_IN and 2 DATA_OUT(s) before FEATDIR, got 2" in r.stderr
    r = _make_feats(script_env, *two, a, tmp_path / "x" / "o", tmp_path / "y" / "o", tmp_path / "f")
    assert r.returncode == 1 and "two outputs named 'o'" in r.stderr
    r = _make_feats(script_env, *two, a, "-", "-", tmp_path / "f")
    assert r.returncode == 1 and "every output is '-'" in r.stderr
    assert not (tmp_path / "f").exists()
