"""ser.augment.noise (exact-SNR mixing) and ser.bin.make_noisy_data (noisy copies of a data dir)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ser.audio import resample, write_wav
from ser.augment import add_noise, draw_offset, loop_excerpt, mix_at_snr
from ser.bin import make_noisy_data
from ser.data.kvfile import read_kv
from ser.errors import SerError


def _snr(speech, noise):
    return 10 * np.log10(np.mean(np.asarray(speech, np.float64) ** 2) / np.mean(np.asarray(noise, np.float64) ** 2))


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 20.0, 37.5])
def test_add_noise_hits_the_snr_exactly(snr):
    rng = np.random.default_rng(0)
    speech = rng.standard_normal(4000).astype(np.float32) * 0.1
    noise = rng.uniform(-1, 1, 9000).astype(np.float32)
    mix = add_noise(speech, noise, snr, np.random.default_rng(1))
    assert mix.dtype == np.float32 and mix.shape == speech.shape
    assert abs(_snr(speech, mix.astype(np.float64) - speech) - snr) < 1e-3


def test_long_noise_is_cut_without_wrapping_and_offset_comes_from_rng():
    rng = np.random.default_rng(3)
    speech = rng.standard_normal(100)
    noise = rng.standard_normal(1000)
    mix = add_noise(speech, noise, 10.0, np.random.default_rng(7))
    offset = draw_offset(1000, 100, np.random.default_rng(7))
    assert 0 <= offset <= 900
    resid = mix.astype(np.float64) - speech
    ref = noise[offset:offset + 100]
    gain = resid @ ref / (ref @ ref)
    np.testing.assert_allclose(resid, gain * ref, atol=1e-5)
    # Same generator state -> same mixture; another seed -> another excerpt.
    np.testing.assert_array_equal(mix, add_noise(speech, noise, 10.0, np.random.default_rng(7)))
    assert not np.allclose(mix, add_noise(speech, noise, 10.0, np.random.default_rng(8)))


def test_short_noise_is_looped():
    rng = np.random.default_rng(4)
    speech = rng.standard_normal(173)
    noise = rng.standard_normal(50)
    resid = add_noise(speech, noise, 0.0, np.random.default_rng(5)).astype(np.float64) - speech
    # The added noise is a scaled circular excerpt of `noise` at some offset: find it.
    fits = []
    for o in range(50):
        ref = np.tile(np.roll(noise, -o), 4)[:173]
        g = resid @ ref / (ref @ ref)
        fits.append(np.max(np.abs(resid - g * ref)))
    assert min(fits) < 1e-5
    np.testing.assert_array_equal(loop_excerpt(np.arange(5), 12, 3), [3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4])


def test_explicit_offset_gives_same_excerpt_at_every_snr():
    rng = np.random.default_rng(6)
    speech, noise = rng.standard_normal(300), rng.standard_normal(700)
    r0 = add_noise(speech, noise, 0.0, None, offset=123).astype(np.float64) - speech
    r20 = add_noise(speech, noise, 20.0, None, offset=123).astype(np.float64) - speech
    np.testing.assert_allclose(r0 / 10.0, r20, atol=1e-5)  # 20 dB apart = amplitude x10


def test_no_clipping_inside():
    speech = np.full(64, 0.9, np.float32) * np.sign(np.sin(np.arange(64)))
    mix = add_noise(speech, np.ones(64, np.float32), 0.0, np.random.default_rng(0))
    assert np.max(np.abs(mix)) > 1.5


def test_zero_power_is_an_error():
    with pytest.raises(SerError, match="speech has zero power"):
        add_noise(np.zeros(100), np.ones(100), 10, np.random.default_rng(0))
    with pytest.raises(SerError, match="noise excerpt has zero power"):
        mix_at_snr(np.ones(100), np.zeros(100), 10)


# --- make_noisy_data ---------------------------------------------------------------------

SR_SPEECH, SR_NOISE = 22050, 16000


@pytest.fixture
def toy(tmp_path):
    """A 4-utterance data dir at 22.05 kHz and a 2-type noise dir at 16 kHz."""
    rng = np.random.default_rng(0)
    src = tmp_path / "data" / "all"
    (src / "audio").mkdir(parents=True)
    utts = {"03-a": 0.5, "03-b": 0.6, "08-c": 0.4, "08-d": 0.99}  # peak amplitude
    scp, spk, emo, text, dur = [], [], [], [], []
    for u, peak in utts.items():
        n = int(SR_SPEECH * rng.uniform(0.3, 0.6))
        t = np.arange(n) / SR_SPEECH
        w = np.sin(2 * np.pi * 220 * t) * np.hanning(n)
        w = (peak * w / np.max(np.abs(w))).astype(np.float32)
        write_wav(src / "audio" / f"{u}.wav", w, SR_SPEECH)
        scp.append(f"{u} {src / 'audio' / (u + '.wav')}")
        spk.append(f"{u} {u[:2]}")
        emo.append(f"{u} anger")
        text.append(f"{u} Das  ist ein Satz")
        dur.append(f"{u} {n / SR_SPEECH:.4f}")
    for name, lines in (("wav.scp", scp), ("utt2spk", spk), ("utt2emo", emo), ("text", text), ("utt2dur", dur)):
        (src / name).write_text("\n".join(lines) + "\n")
    (src / "spk2utt").write_text("03 03-a 03-b\n08 08-c 08-d\n")
    (src / "feats.scp").write_text("03-a x.ark:1\n")
    (src / "conf.yaml").write_text("type: spec\n")
    noise = tmp_path / "noise"
    for ntype, lengths in (("kitchen", [0.2, 1.5]), ("park", [2.0])):
        (noise / ntype).mkdir(parents=True)
        for k, sec in enumerate(lengths):
            write_wav(noise / ntype / f"n{k}.wav", 0.3 * rng.uniform(-1, 1, int(SR_NOISE * sec)), SR_NOISE)
    (noise / "empty").mkdir()
    return src, noise, tmp_path


def _run(argv):
    return make_noisy_data.main([str(a) for a in argv])


def test_make_noisy_data_outputs(toy):
    src, noise, tmp = toy
    assert _run(["--noise-dir", noise, "--types", "kitchen park", "--snrs", "0 10 20", "--seed", "5",
                 src, tmp / "data" / "all"]) == 0
    dests = {s: tmp / "data" / f"all_snr{s}" for s in (0, 10, 20)}
    assert sorted(os.listdir(tmp / "data")) == ["all", "all_snr0", "all_snr10", "all_snr20"]  # no .tmp left
    choices = {s: read_kv(d / "noise_choice") for s, d in dests.items()}
    src_scp = read_kv(src / "wav.scp")
    for s, d in dests.items():
        assert sorted(os.listdir(d)) == ["noise_choice", "spk2utt", "text", "utt2dur", "utt2emo", "utt2spk",
                                         "wav", "wav.scp"]
        for name in ("spk2utt", "text", "utt2dur", "utt2emo", "utt2spk"):
            assert (d / name).read_bytes() == (src / name).read_bytes()
        scp = read_kv(d / "wav.scp")
        assert list(scp) == list(src_scp)
        for u, path in scp.items():
            assert path == str(d / "wav" / f"{u}.wav") and os.path.isabs(path)
            ntype, rel, offset, snr, gain = choices[s][u].split()
            assert (ntype, rel, offset) == tuple(choices[0][u].split()[:3])  # same excerpt at every SNR
            assert rel.startswith(ntype + "/") and float(snr) == s
            speech, sr = sf.read(src_scp[u], dtype="float64")
            mix, sr2 = sf.read(path, dtype="float64")
            assert sr2 == sr == SR_SPEECH and mix.shape == speech.shape
            added = mix / float(gain) - speech
            assert abs(_snr(speech, added) - s) < 0.05
            # The added noise is the recorded excerpt of the recorded file, resampled to 22.05 kHz.
            nz, _ = sf.read(noise / rel, dtype="float32")
            ref = loop_excerpt(resample(nz, SR_NOISE, SR_SPEECH), len(speech), int(offset)).astype(np.float64)
            assert np.corrcoef(added, ref)[0, 1] > 0.999
            assert np.max(np.abs(mix)) <= 1.0
    # The loud utterance clips at 0 dB unless scaled: scaled as a whole, SNR kept (checked above).
    assert float(choices[0]["08-d"].split()[4]) < 1.0
    assert float(choices[20]["03-a"].split()[4]) == 1.0


def test_make_noisy_data_is_reproducible_and_order_independent(toy):
    src, noise, tmp = toy
    _run(["--noise-dir", noise, "--types", "kitchen park", "--snrs", "10", "--seed", "5", src, tmp / "a"])
    _run(["--noise-dir", noise, "--types", "kitchen park", "--snrs", "10", "--seed", "5", src, tmp / "b"])
    assert (tmp / "a_snr10" / "noise_choice").read_text() == (tmp / "b_snr10" / "noise_choice").read_text()
    assert (tmp / "a_snr10/wav/08-c.wav").read_bytes() == (tmp / "b_snr10/wav/08-c.wav").read_bytes()
    # A data dir with only some of the utterances gets the same choices for them.
    sub = tmp / "sub"
    sub.mkdir()
    lines = (src / "wav.scp").read_text().splitlines()
    (sub / "wav.scp").write_text("\n".join(lines[::-2]) + "\n")
    _run(["--noise-dir", noise, "--types", "kitchen park", "--snrs", "10", "--seed", "5", sub, tmp / "s"])
    full, part = read_kv(tmp / "a_snr10" / "noise_choice"), read_kv(tmp / "s_snr10" / "noise_choice")
    assert len(part) == 2 and all(full[u] == v for u, v in part.items())
    # Another seed changes the choices.
    _run(["--noise-dir", noise, "--types", "kitchen park", "--snrs", "10", "--seed", "6", src, tmp / "c"])
    assert read_kv(tmp / "c_snr10" / "noise_choice") != full


def test_make_noisy_data_errors(toy):
    src, noise, tmp = toy
    with pytest.raises(SerError, match="does not exist"):
        _run(["--noise-dir", tmp / "nope", src, tmp / "x"])
    with pytest.raises(SerError, match="noise type 'empty': no .wav files"):
        _run(["--noise-dir", noise, src, tmp / "x"])  # default: all types, one is empty
    with pytest.raises(SerError, match="noise type 'cafe': no directory"):
        _run(["--noise-dir", noise, "--types", "kitchen cafe", src, tmp / "x"])
    with pytest.raises(SerError, match="--snrs"):
        _run(["--noise-dir", noise, "--types", "park", "--snrs", "0 ten", src, tmp / "x"])
    _run(["--noise-dir", noise, "--types", "park", "--snrs", "5", src, tmp / "x"])
    with pytest.raises(SerError, match="exists"):
        _run(["--noise-dir", noise, "--types", "park", "--snrs", "5", src, tmp / "x"])
    assert _run(["--noise-dir", noise, "--types", "park", "--snrs", "5", "--overwrite", src, tmp / "x"]) == 0
    # As a program: exit 1 with a one-line message.
    p = subprocess.run([sys.executable, "-m", "ser.bin.make_noisy_data", "--noise-dir", str(tmp / "nope"),
                        str(src), str(tmp / "y")], capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.strip().count("\n") == 0 and "nope' does not exist" in p.stderr
    assert not (tmp / "y_snr0.tmp").exists()
