"""The `functionals` feature type (openSMILE ComParE 2016 / eGeMAPS v02) and the `mlp` model meant
for it: values against closed forms of synthetic signals, shapes, errors, and a compute_feats job."""
import pathlib
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch

from ser.errors import SerError
from ser.features import build_extractor, feature_label, read_feats_config
from ser.models import build_model

CONF = pathlib.Path(__file__).resolve().parent.parent / "egs" / "TEMPLATE" / "conf" / "feats"
SR = 16000


def tone(freq, seconds=1.0, amplitude=0.3, harmonics=1, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return sum(amplitude / k * np.sin(2 * np.pi * freq * k * t) for k in range(1, harmonics + 1))


@pytest.fixture(scope="module")
def compare():
    return build_extractor(read_feats_config(CONF / "compare.yaml"))


@pytest.fixture(scope="module")
def egemaps():
    return build_extractor(read_feats_config(CONF / "egemaps.yaml"))


def value(extractor, row, name):
    return float(row[0, extractor.feature_names().index(name)])


def test_shipped_configs_give_one_row_of_the_set_size(compare, egemaps):
    assert (compare.dim, egemaps.dim) == (6373, 88)
    row = compare(tone(440.0), SR)
    assert row.shape == (1, 6373) and row.dtype == np.float32 and np.isfinite(row).all()
    assert egemaps(tone(220.0, harmonics=8), SR).shape == (1, 88)
    assert len(compare.feature_names()) == 6373


def test_compare_energy_centroid_and_pitch_of_a_sine(compare):
    row = compare(tone(440.0, amplitude=0.3), SR)
    # RMS of a sine of amplitude A is A / sqrt(2); its spectrum is one line at 440 Hz.
    assert value(compare, row, "pcm_RMSenergy_sma_amean") == pytest.approx(0.3 / np.sqrt(2), rel=1e-3)
    assert value(compare, row, "pcm_fftMag_spectralCentroid_sma_amean") == pytest.approx(440.0, abs=2.0)
    assert value(compare, row, "F0final_sma_amean") == pytest.approx(440.0, abs=2.0)


def test_egemaps_pitch_of_a_harmonic_tone_in_semitones(egemaps):
    # eGeMAPS F0 is in semitones above 27.5 Hz: 220 Hz is 12 log2(220 / 27.5) = 36, held steady.
    row = egemaps(tone(220.0, harmonics=8), SR)
    assert value(egemaps, row, "F0semitoneFrom27.5Hz_sma3nz_amean") == pytest.approx(36.0, abs=0.1)
    assert value(egemaps, row, "F0semitoneFrom27.5Hz_sma3nz_stddevNorm") < 1e-3


def test_other_rates_are_resampled_to_16k(compare):
    row = compare(tone(440.0, sr=22050), 22050)
    assert value(compare, row, "F0final_sma_amean") == pytest.approx(440.0, abs=2.0)


def test_too_short_and_unknown_set_are_one_line_errors(compare, tmp_path):
    with pytest.raises(SerError, match="signal too short: 200 samples at 16000 Hz, 'functionals' needs at least 960"):
        compare(np.zeros(200), SR)
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: functionals\nfeature_set: GeMAPS\n")
    with pytest.raises(SerError, match=r"bad.yaml: feature_set must be one of \['ComParE_2016', 'eGeMAPSv02'\]"):
        build_extractor(read_feats_config(bad), source=str(bad))


def test_compute_feats_writes_one_row_per_utterance(tmp_path, compare):
    data = tmp_path / "data"
    data.mkdir()
    lines = []
    for i, f in enumerate((200.0, 330.0)):
        wav = tmp_path / f"spk1-u{i}.wav"
        sf.write(wav, tone(f, seconds=0.8), SR)
        lines.append(f"spk1-u{i} {wav}\n")
    (data / "wav.scp").write_text("".join(lines))
    prefix = tmp_path / "feats" / "compare"
    prefix.parent.mkdir()
    subprocess.run([sys.executable, "-m", "ser.bin.compute_feats", "--config", str(CONF / "compare.yaml"),
                    "--write-num-frames", str(data), str(prefix)], check=True, capture_output=True)
    mats = dict(kaldiio.load_scp(f"{prefix}.scp"))
    assert sorted(mats) == ["spk1-u0", "spk1-u1"]
    for i, f in enumerate((200.0, 330.0)):
        assert mats[f"spk1-u{i}"].shape == (1, 6373)
        assert value(compare, mats[f"spk1-u{i}"], "F0final_sma_amean") == pytest.approx(f, abs=2.0)
    assert (tmp_path / "feats" / "compare.utt2num_frames").read_text() == "spk1-u0 1\nspk1-u1 1\n"


def test_report_label_names_the_set_of_functionals_and_the_type_otherwise():
    assert feature_label(read_feats_config(CONF / "compare.yaml")) == "ComParE_2016"
    assert feature_label(read_feats_config(CONF / "egemaps.yaml")) == "eGeMAPSv02"
    assert feature_label(read_feats_config(CONF / "mel.yaml")) == "mel"
    assert feature_label({"type": "cqt"}) == "cqt"   # a type of another version of the code


def test_mlp_without_hidden_layers_is_logistic_regression_of_the_frame_mean():
    torch.manual_seed(0)
    model = build_model("mlp", 4, 20, num_layers=0).eval()
    x = torch.randn(3, 5, 20)
    linear = model.net[-1]
    expected = x.mean(1) @ linear.weight.T + linear.bias
    assert torch.allclose(model(x), expected, atol=1e-6)
    assert sum(p.numel() for p in model.parameters()) == 20 * 4 + 4


def test_mlp_hidden_layers_and_bad_options():
    model = build_model("mlp", 7, 88, num_layers=2, hidden_dim=32)
    assert [m.out_features for m in model.net if isinstance(m, torch.nn.Linear)] == [32, 32, 7]
    with pytest.raises(SerError, match="model 'mlp': option 'hidden_dim' must be > 0"):
        build_model("mlp", 7, 88, hidden_dim=0)
    with pytest.raises(SerError, match=r"model 'mlp': option 'input_dropout' must be in \[0, 1\)"):
        build_model("mlp", 7, 88, input_dropout=1.0)
