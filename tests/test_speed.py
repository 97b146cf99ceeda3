"""ser.augment.speed.speed_perturb (sox `speed` semantics) and the ser.bin.speed_perturb pipe program."""
import io
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ser.audio import write_wav
from ser.augment import speed_perturb
from ser.errors import SerError


@pytest.mark.parametrize("sr", [16000, 22050])
@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_duration_scales_by_one_over_factor(sr, factor):
    n = sr  # 1 s
    out = speed_perturb(np.random.default_rng(0).standard_normal(n).astype(np.float32), sr, factor)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - n / factor) <= 1


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_tone_frequency_scales_by_factor(factor):
    sr, f0 = 16000, 440.0
    t = np.arange(2 * sr) / sr
    out = speed_perturb((0.5 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), sr, factor)
    nfft = 1 << 17  # bin = 0.12 Hz
    spec = np.abs(np.fft.rfft(out * np.hanning(len(out)), nfft))
    bin_hz = sr / nfft
    assert abs(np.argmax(spec) * bin_hz - f0 * factor) <= bin_hz
    # amplitude is preserved away from the edges
    mid = out[len(out) // 4: 3 * len(out) // 4]
    assert abs(np.sqrt(np.mean(mid ** 2)) - 0.5 / np.sqrt(2)) < 0.01


def test_factor_one_and_bad_factors():
    w = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    np.testing.assert_array_equal(speed_perturb(w, 16000, 1.0), w)
    for bad in (0, -0.9, float("nan"), "fast"):
        with pytest.raises(SerError, match="speed factor"):
            speed_perturb(w, 16000, bad)


def test_program_writes_wav_to_stdout_from_path_and_stdin(tmp_path):
    sr = 16000
    w = (0.4 * np.sin(2 * np.pi * 300 * np.arange(8000) / sr)).astype(np.float32)
    path = tmp_path / "a.wav"
    write_wav(path, w, sr)
    src, _ = sf.read(path, dtype="float32")
    expected = speed_perturb(src, sr, 0.9)
    for argv, stdin in ((["--factor", "0.9", str(path)], None), (["--factor", "0.9", "-"], path.read_bytes())):
        p = subprocess.run([sys.executable, "-m", "ser.bin.speed_perturb"] + argv, input=stdin,
                           capture_output=True)
        assert p.returncode == 0, p.stderr
        out, sr2 = sf.read(io.BytesIO(p.stdout), dtype="float32")
        assert sr2 == sr and len(out) == len(expected)
        assert np.max(np.abs(out - expected)) < 2 / 32768  # 16-bit quantisation only
    p = subprocess.run([sys.executable, "-m", "ser.bin.speed_perturb", "--factor", "0.9", str(tmp_path / "no.wav")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "cannot read audio" in p.stderr and p.stderr.strip().count("\n") == 0


def test_parse_lazy_entry():
    from ser.augment import parse_lazy_entry

    assert parse_lazy_entry("python3 -m ser.bin.speed_perturb --factor 0.9 /d/a.wav |") == (0.9, "/d/a.wav")
    assert parse_lazy_entry("sox a.wav -t wav - | python3 -m ser.bin.speed_perturb --factor 1.1 - |") == \
        (1.1, "sox a.wav -t wav - |")
    nested = "python3 -m ser.bin.speed_perturb --factor 1.1 a.wav | python3 -m ser.bin.speed_perturb --factor 0.9 - |"
    assert parse_lazy_entry(nested) == (0.9, "python3 -m ser.bin.speed_perturb --factor 1.1 a.wav |")
    for other in ("/d/a.wav", "sox a.wav -t wav - speed 0.9 |",
                  "python3 -m ser.bin.speed_perturb --factor 0.9 - |",          # '-' without a source pipe
                  "cat a | python3 -m ser.bin.speed_perturb --factor 0.9 b.wav |",  # path after a pipe
                  "python3 -m ser.bin.speed_perturb --factor x a.wav |"):
        assert parse_lazy_entry(other) is None, other
