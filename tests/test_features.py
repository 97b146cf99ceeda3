"""ser.features against an independent numpy/scipy implementation of both feature definitions.

The references below use scipy.signal.get_window, numpy's rfft and a mel filterbank built from
the closed-form Slaney formula (as librosa.filters.mel), all in float64, on 3 real EmoDB files
and on synthetic tones.

Tolerances:
- float64 run of the extractor: the algorithm alone, 1e-9 (only float64 roundoff; the mel
  filterbank is built in float64 too).
- float32 output (what the recipes write): the float64 result rounded once, so within float32's
  half-ulp (relative 6e-8) of the reference.
"""
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import torch
import torchaudio.functional as AF
import yaml

from ser.audio import load_audio, resample
from ser.errors import SerError
from ser.features import (MelSpectrogram, Spectrogram, build_extractor, check_feats_config,
                          extract_all, mel_to_log, read_feats_config)
from ser.features.mel import log_to_scaled, mel_filterbank

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "egs" / "TEMPLATE" / "conf" / "feats"
EPS32 = float(np.finfo(np.float32).eps)
FILES = ("03a01Fa.wav", "10b03Tb.wav", "16a04Lc.wav")


# ---------------------------------------------------------------- independent references

def ref_spectrogram(x, floor, sr=16000, win=400, hop=160, n_fft=512, bins=128):
    w = scipy.signal.get_window("hamming", win)  # fftbins=True: periodic
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop] * w
    X = np.fft.rfft(frames, n=n_fft, axis=1)[:, :bins]
    return np.log(X.real ** 2 + X.imag ** 2 + floor), np.linalg.norm(frames, axis=1)


def hz_to_mel_slaney(f):
    f = np.asarray(f, dtype=np.float64)
    logstep = math.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) / logstep, f * 3.0 / 200.0)


def mel_to_hz_slaney(m):
    m = np.asarray(m, dtype=np.float64)
    logstep = math.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp((m - 15.0) * logstep), m * 200.0 / 3.0)


def ref_mel_filterbank(sr=22050, n_fft=1024, n_mels=80, fmin=0.0, fmax=8000.0):
    """(n_mels, n_fft//2+1) triangles on the Slaney mel scale, area-normalised (librosa's default)."""
    fft_hz = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    hz = mel_to_hz_slaney(np.linspace(hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax), n_mels + 2))
    rising = (fft_hz[None, :] - hz[:-2, None]) / (hz[1:-1] - hz[:-2])[:, None]
    falling = (hz[2:, None] - fft_hz[None, :]) / (hz[2:] - hz[1:-1])[:, None]
    tri = np.maximum(0.0, np.minimum(rising, falling))
    return tri * (2.0 / (hz[2:] - hz[:-2]))[:, None]


def ref_log_mel(x, sr=22050, n_fft=1024, hop=256):
    xp = np.pad(x, (n_fft - hop) // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop] * scipy.signal.get_window("hann", n_fft)
    mag = np.abs(np.fft.rfft(frames, axis=1))
    return np.log(np.maximum(mag @ ref_mel_filterbank(sr, n_fft).T, 1e-5))


def ref_scaled(log_mel, lo=math.log(1e-5), hi=math.log(10.0)):
    return np.clip(2.0 * (log_mel - lo) / (hi - lo) - 1.0, -1.0, 1.0)


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def spec():
    return build_extractor(read_feats_config(CONF / "spec.yaml"))


@pytest.fixture(scope="module")
def mel():
    return build_extractor(read_feats_config(CONF / "mel.yaml"))


@pytest.fixture(scope="module")
def waves(emodb_dir):
    return [load_audio(str(emodb_dir / "wav" / f)) for f in FILES]


def tone(freq, sr, seconds=0.5, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ---------------------------------------------------------------- spectrogram

def test_yaml_configs_build_the_paper_features(spec, mel):
    assert isinstance(spec, Spectrogram) and isinstance(mel, MelSpectrogram)
    assert (spec.sample_rate, spec.win_length, spec.hop_length, spec.n_fft, spec.dim) == (16000, 400, 160, 512, 128)
    assert spec.bin_frequencies()[-1] == pytest.approx(3968.75)
    assert (mel.sample_rate, mel.n_fft, mel.win_length, mel.hop_length, mel.dim) == (22050, 1024, 1024, 256, 80)


def test_spectrogram_float64_equals_numpy_reference(spec, waves):
    for wave, sr in waves + [(tone(440.0, 16000) + tone(3000.0, 16000, amp=0.01), 16000)]:
        x = spec.prepare(wave, sr).astype(np.float64)
        ref, _ = ref_spectrogram(x, spec.log_floor)
        out = spec.compute(x)
        assert out.dtype == np.float64
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9)


def test_spectrogram_float32_is_the_reference_rounded(spec, waves):
    silent_frames = 0
    for wave, sr in waves:
        out = spec(wave, sr)
        assert out.dtype == np.float32 and out.shape == (198, 128)  # 2.0 s files
        x = spec.prepare(wave, sr).astype(np.float64)
        ref, frame_norm = ref_spectrogram(x, spec.log_floor)
        np.testing.assert_allclose(out, ref, rtol=EPS32, atol=1e-9)
        # Digital silence (EmoDB's zero-padded tails) comes out exactly at the floor.
        silent = frame_norm == 0
        silent_frames += silent.sum()
        np.testing.assert_allclose(out[silent], math.log(spec.log_floor), rtol=0, atol=1e-5)
        assert np.all(out[~silent].max(axis=1) > math.log(spec.log_floor) + 1.0)
    assert silent_frames > 0


def test_pure_tone_lands_in_its_bin(spec):
    # 1000 Hz and 2500 Hz are exact bins at 31.25 Hz spacing: 32 and 80.
    for freq, k in ((1000.0, 32), (2500.0, 80)):
        out = spec(tone(freq, 16000), 16000)
        assert np.all(out.argmax(axis=1) == k)
        # Hamming sidelobes are <= -43 dB (9.9 nats); 10 bins away is far below the peak.
        assert np.all(out[:, k] - np.delete(out, range(k - 10, k + 11), axis=1).max(axis=1) > 9.0)
    # A 6 kHz tone is above the kept 0-3.97 kHz band: nothing comes near its peak power.
    peak = spec(tone(1000.0, 16000), 16000).max()
    assert spec(tone(6000.0, 16000), 16000).max() < peak - 9.0


@pytest.mark.parametrize("n, frames", [(399, 0), (400, 1), (559, 1), (560, 2), (32000, 198), (48123, 299)])
def test_spectrogram_frame_count_is_snip_edges(spec, n, frames):
    assert spec.num_frames(n) == frames == max(0, 1 + (n - 400) // 160)
    if frames == 0:
        with pytest.raises(SerError, match="too short"):
            spec(np.zeros(n, np.float32), 16000)
    else:
        assert spec(np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.1, 16000).shape == (frames, 128)


def test_input_is_resampled_once_with_ser_audio(spec, mel, waves):
    wave, sr = waves[0]
    assert sr == 22050
    direct = resample(wave.astype(np.float64), 22050, 16000)  # torchaudio's sinc: test_audio_resample.py
    np.testing.assert_array_equal(spec(wave, 22050), spec(direct, 16000))
    assert spec(wave, 22050).shape[0] == 1 + (len(direct) - 400) // 160
    w16 = tone(700.0, 16000)
    np.testing.assert_array_equal(mel(w16, 16000), mel(resample(w16.astype(np.float64), 16000, 22050), 22050))
    both = extract_all([spec, mel], wave, 22050)
    np.testing.assert_array_equal(both[0], spec(wave, 22050))
    np.testing.assert_array_equal(both[1], mel(wave, 22050))


# ---------------------------------------------------------------- mel

def test_mel_filterbank_equals_closed_form_slaney(mel):
    ref = ref_mel_filterbank()
    fb = mel.fbank.T
    assert fb.shape == ref.shape == (80, 513)
    np.testing.assert_allclose(fb, ref, rtol=0, atol=1e-12)
    assert ref.max() > 0.02


@pytest.mark.parametrize("scale, norm", [("slaney", "slaney"), ("htk", "slaney"), ("slaney", "none"), ("htk", "none")])
def test_mel_filterbank_equals_torchaudio(scale, norm):
    ours = mel_filterbank(1024, 22050, 80, 50.0, 7600.0, scale, norm)
    ref = AF.melscale_fbanks(513, 50.0, 7600.0, 80, 22050, norm=None if norm == "none" else "slaney",
                             mel_scale=scale).double().numpy()  # built in float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5 * ref.max())


def test_mel_float64_and_float32_equal_numpy_reference(mel, waves):
    for wave, sr in waves + [(tone(1234.5, 22050) * 0.3, 22050)]:
        x = mel.prepare(wave, sr).astype(np.float64)
        ref = ref_scaled(ref_log_mel(x))
        out64 = mel.compute(x)
        assert out64.shape == ref.shape == (len(x) // 256, 80)
        np.testing.assert_allclose(out64, ref, rtol=0, atol=1e-9)
        out32 = mel(wave, sr)
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32, ref, rtol=0, atol=EPS32)


def test_pure_tone_lands_in_its_mel_band(mel):
    centres = mel_to_hz_slaney(np.linspace(0, hz_to_mel_slaney(8000.0), 82))[1:-1]
    for band in (40, 50, 70):
        out = mel(tone(centres[band], 22050), 22050)
        assert np.all(out[2:-2].argmax(axis=1) == band)  # away from the reflected edges
    # A 10 kHz tone is above f_max = 8 kHz: every band stays far below an in-band tone's level.
    assert mel(tone(10000.0, 22050), 22050).max() < mel(tone(centres[50], 22050), 22050).max() - 0.5


@pytest.mark.parametrize("n", [385, 1023, 44100, 65536])
def test_mel_frame_count(mel, n):
    assert mel.num_frames(n) == n // 256
    assert mel(np.random.default_rng(1).standard_normal(n).astype(np.float32) * 0.1, 22050).shape == (n // 256, 80)
    if n == 65536:
        assert n // 256 == 256  # the paper's (80 x 256) segment is 2.97 s


def test_mel_too_short_is_an_error(mel):
    assert mel.num_frames(384) == 0
    with pytest.raises(SerError, match="too short"):
        mel(np.zeros(384, np.float32), 22050)


def test_scaling_is_fixed_clipped_and_invertible(mel, waves):
    wave, sr = waves[0]  # 03a01Fa: zero-padded tail
    x = mel.prepare(wave, sr)
    log_mel = mel.log_mel(x)
    out = mel(wave, sr)
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert out.min() == -1.0  # the silent tail is at the 1e-5 floor = log(scale_min_mel)
    inside = (log_mel > math.log(1e-5)) & (log_mel < math.log(10.0))
    assert inside.mean() > 0.9
    np.testing.assert_allclose(mel_to_log(out)[inside], log_mel[inside], rtol=0, atol=2e-5)
    np.testing.assert_allclose(mel.to_log(out), mel_to_log(out))
    # exact linear map, both directions, numpy and torch
    v = np.linspace(math.log(1e-5), math.log(10.0), 7)
    np.testing.assert_allclose(log_to_scaled(v), np.linspace(-1, 1, 7), atol=1e-12)
    np.testing.assert_allclose(mel_to_log(torch.from_numpy(log_to_scaled(v))).numpy(), v, atol=1e-12)
    # values beyond the fixed bounds are clipped, not rescaled to the data
    assert list(log_to_scaled(np.array([-20.0, 5.0]))) == [-1.0, 1.0]
    loud = build_extractor({"type": "mel", "scale_max_mel": 0.01})(wave, sr)
    assert loud.max() == 1.0 and (loud == 1.0).mean() > 0.1
    assert np.all(loud[~np.isclose(loud, 1.0)] < 1.0)


# ---------------------------------------------------------------- config

def test_config_unknown_key_names_file_and_key(tmp_path):
    bad = tmp_path / "spec.yaml"
    bad.write_text(yaml.safe_dump({"type": "spec", "num_bins": 128, "hop_ms": 10}))
    with pytest.raises(SerError, match=r"spec\.yaml: unknown key 'hop_ms'"):
        read_feats_config(bad)


@pytest.mark.parametrize("key, value, expect", [
    ("num_bins", 12.5, "must be an integer"),
    ("num_bins", True, "must be an integer"),
    ("window", 3, "must be a string"),
    ("log_floor", "1e-8", "write 1.0e-5"),
    ("periodic_window", "yes", "true or false"),
])
def test_config_wrong_type_names_file_and_key(tmp_path, key, value, expect):
    bad = tmp_path / "c.yaml"
    bad.write_text(yaml.safe_dump({"type": "spec", key: value}))
    with pytest.raises(SerError) as e:
        read_feats_config(bad)
    assert str(bad) in str(e.value) and f"'{key}'" in str(e.value) and expect in str(e.value)


def test_config_type_missing_unknown_and_defaults(tmp_path):
    with pytest.raises(SerError, match="missing key 'type'"):
        check_feats_config({"n_fft": 512}, "x.yaml")
    with pytest.raises(SerError, match="unknown feature type 'mfcc'"):
        check_feats_config({"type": "mfcc"}, "x.yaml")
    c = check_feats_config({"type": "spec", "frame_length_ms": 25}, "x.yaml")
    assert c["frame_length_ms"] == 25.0 and isinstance(c["frame_length_ms"], float)
    assert c["num_bins"] == 128 and c["window"] == "hamming"
    with pytest.raises(SerError, match=r"x\.yaml: num_bins must be in 1\.\.257"):
        build_extractor({"type": "spec", "num_bins": 300}, source="x.yaml")
    with pytest.raises(SerError, match=r"x\.yaml: window must be one of"):
        build_extractor({"type": "spec", "window": "blackman"}, source="x.yaml")
    with pytest.raises(SerError, match="invalid YAML"):
        (tmp_path / "broken.yaml").write_text("type: [spec\n")
        read_feats_config(tmp_path / "broken.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"# Ger\xe4usch\ntype: spec\n")
    with pytest.raises(SerError, match=r"latin1\.yaml: not valid UTF-8"):
        read_feats_config(tmp_path / "latin1.yaml")
    with pytest.raises(SerError, match="no such feature config"):
        read_feats_config(tmp_path / "none.yaml")


def test_audio_whose_file_name_is_not_utf8_is_read(tmp_path):
    """A Latin-1 file name (an old German corpus copy): read like any other, errors still name it."""
    import os
    import soundfile as sf
    wave = (0.5 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)).astype(np.float32)
    name = os.path.join(os.fsdecode(bytes(tmp_path)), os.fsdecode(b"Ger\xe4usch.wav"))
    with open(name, "wb") as f:
        sf.write(f, wave, 16000, format="WAV", subtype="FLOAT")
    samples, sr = load_audio(name)
    assert sr == 16000 and np.array_equal(samples, wave)
    with pytest.raises(SerError, match="cannot read audio .*No such file"):
        load_audio(name + ".missing")
