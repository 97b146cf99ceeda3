"""ser.audio.resample (numpy) against torchaudio.functional.resample, the definition it follows,
and against what resampling must do to tones."""
import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from ser.audio import Resampler, resample
from ser.errors import SerError

RATES = ((22050, 16000), (16000, 22050), (44100, 16000), (48000, 22050), (8000, 16000),
         (14400, 16000), (17600, 16000))  # the last two: speed perturbation 0.9 / 1.1 at 16 kHz


@pytest.mark.parametrize("orig, new", RATES)
def test_equals_torchaudio(orig, new):
    rng = np.random.default_rng(0)
    for n in (1, 5, 999, 44100):
        x = rng.standard_normal(n)
        # float64: the same kernel and the same products, so only roundoff differs
        ref64 = AF.resample(torch.from_numpy(x), orig, new).numpy()
        out64 = resample(x, orig, new)
        assert out64.dtype == np.float64 and out64.shape == ref64.shape == (-(-n * new // orig),)
        np.testing.assert_allclose(out64, ref64, rtol=0, atol=1e-12)
        # float32: torchaudio computes its kernel in float32 (~1e-5 off at these rates), ours is
        # the float64 kernel rounded once, so it is the closer of the two to the float64 result
        x32 = x.astype(np.float32)
        out32 = resample(x32, orig, new)
        ref32 = AF.resample(torch.from_numpy(x32), orig, new).numpy()
        exact = resample(x32.astype(np.float64), orig, new)
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32, exact, rtol=0, atol=5e-6)
        np.testing.assert_allclose(out32, ref32, rtol=0, atol=2e-4)
        assert np.abs(out32 - exact).max() <= np.abs(ref32 - exact).max() + 1e-6


def test_tones_pass_or_are_removed():
    t = np.arange(22050) / 22050.0
    low = np.sin(2 * np.pi * 1000.0 * t)
    out = resample(low, 22050, 16000)
    expect = np.sin(2 * np.pi * 1000.0 * np.arange(len(out)) / 16000.0)
    np.testing.assert_allclose(out[200:-200], expect[200:-200], rtol=0, atol=2e-3)  # passband
    # 10 kHz is past the filter's transition band above the new Nyquist (8 kHz): -43 dB
    high = np.sin(2 * np.pi * 10000.0 * t)
    assert np.abs(resample(high, 22050, 16000)[200:-200]).max() < 1e-2


def test_same_rate_and_bad_rates():
    x = np.ones(10, np.float32)
    assert resample(x, 16000, 16000) is x
    assert resample(np.ones(4, np.int16), 8000, 8000).dtype == np.float32
    with pytest.raises(SerError, match="positive"):
        Resampler(0, 16000)
