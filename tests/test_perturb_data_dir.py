"""utils/perturb_data_dir_speed.sh: Kaldi-style speed-perturbed data dir with a lazy wav.scp."""
import subprocess

import numpy as np
import pytest
import soundfile as sf

from ser.audio import read_wav_entry, write_wav
from ser.augment import parse_lazy_entry, speed_perturb
from ser.data.kvfile import read_kv, read_list

SR = 16000


@pytest.fixture
def src(tmp_path):
    """Speakers 03 (2 utts, one through a pipe entry) and 08 (1 utt)."""
    d = tmp_path / "all"
    (d / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lens = {"03-a": 8000, "03-b": 9600, "08-c": 6400}
    for u, n in lens.items():
        write_wav(d / "audio" / f"{u}.wav", 0.3 * np.sin(2 * np.pi * rng.uniform(200, 400) * np.arange(n) / SR), SR)
    (d / "wav.scp").write_text(f"03-a {d}/audio/03-a.wav\n03-b cat {d}/audio/03-b.wav |\n08-c {d}/audio/08-c.wav\n")
    (d / "utt2spk").write_text("03-a 03\n03-b 03\n08-c 08\n")
    (d / "spk2utt").write_text("03 03-a 03-b\n08 08-c\n")
    (d / "text").write_text("03-a Der  Lappen liegt\n03-b Heute abend\n08-c Ja\n")
    (d / "utt2emo").write_text("03-a anger\n03-b neutral\n08-c sadness\n")
    (d / "utt2dur").write_text("".join(f"{u} {n / SR}\n" for u, n in lens.items()))
    (d / "feats.scp").write_text("03-a feats.ark:10\n")
    return d


def _perturb(repo, env, *args):
    return subprocess.run(["bash", str(repo / "utils" / "perturb_data_dir_speed.sh"), *map(str, args)],
                          env=env, capture_output=True, text=True)


def test_perturbed_data_dir(repo, script_env, src, tmp_path, monkeypatch):
    dest = tmp_path / "all_sp0.9"
    p = _perturb(repo, script_env, "0.9", src, dest)
    assert p.returncode == 0, p.stderr
    assert "not validated" not in p.stderr  # utils/validate_data_dir.py ran
    assert sorted(x.name for x in dest.iterdir()) == ["spk2utt", "text", "utt2dur", "utt2emo", "utt2spk",
                                                      "utt2uniq", "wav.scp"]
    assert read_kv(dest / "utt2spk") == {"sp0.9-03-a": "sp0.9-03", "sp0.9-03-b": "sp0.9-03", "sp0.9-08-c": "sp0.9-08"}
    assert read_list(dest / "spk2utt") == {"sp0.9-03": ["sp0.9-03-a", "sp0.9-03-b"], "sp0.9-08": ["sp0.9-08-c"]}
    assert read_kv(dest / "utt2uniq") == {"sp0.9-03-a": "03-a", "sp0.9-03-b": "03-b", "sp0.9-08-c": "08-c"}
    assert (dest / "text").read_text().splitlines()[0] == "sp0.9-03-a Der  Lappen liegt"
    assert read_kv(dest / "utt2emo") == {"sp0.9-03-a": "anger", "sp0.9-03-b": "neutral", "sp0.9-08-c": "sadness"}
    src_dur = read_kv(src / "utt2dur")
    scp, src_scp = read_kv(dest / "wav.scp"), read_kv(src / "wav.scp")
    for u, v in read_kv(dest / "utt2dur").items():
        assert abs(float(v) - float(src_dur[u[len("sp0.9-"):]]) / 0.9) < 1e-4
    assert scp["sp0.9-03-a"] == f"python3 -m ser.bin.speed_perturb --factor 0.9 {src}/audio/03-a.wav |"
    assert scp["sp0.9-03-b"] == f"cat {src}/audio/03-b.wav | python3 -m ser.bin.speed_perturb --factor 0.9 - |"
    # The lazy entries are read by ser.audio like any wav.scp value (python3 = the venv's, via PATH).
    monkeypatch.setenv("PATH", script_env["PATH"])
    for u, entry in scp.items():
        wave, sr = read_wav_entry(entry)
        orig, _ = sf.read(f"{src}/audio/{u[len('sp0.9-'):]}.wav", dtype="float32")
        assert sr == SR and abs(len(wave) - len(orig) / 0.9) <= 1
        assert abs(len(wave) / sr - float(read_kv(dest / "utt2dur")[u])) < 1e-3
        np.testing.assert_allclose(wave, speed_perturb(orig, SR, 0.9), atol=2 / 32768)
        # In-process shortcut for readers: same audio without the pipe.
        factor, inner = parse_lazy_entry(entry)
        assert factor == 0.9 and inner == src_scp[u[len("sp0.9-"):]]
        np.testing.assert_allclose(speed_perturb(read_wav_entry(inner)[0], SR, factor), wave, atol=2 / 32768)


def test_chained_perturbation_keeps_the_original_utt2uniq(repo, script_env, src, tmp_path):
    a, b = tmp_path / "sp1.1", tmp_path / "sp1.1_sp0.9"
    assert _perturb(repo, script_env, "1.1", src, a).returncode == 0
    p = _perturb(repo, script_env, "0.9", a, b)
    assert p.returncode == 0, p.stderr
    assert read_kv(b / "utt2uniq")["sp0.9-sp1.1-03-a"] == "03-a"
    assert read_kv(b / "utt2spk")["sp0.9-sp1.1-03-a"] == "sp0.9-sp1.1-03"
    # A re-run replaces the output.
    assert _perturb(repo, script_env, "0.9", a, b).returncode == 0
    assert len(read_kv(b / "wav.scp")) == 3


def test_errors(repo, script_env, src, tmp_path):
    for args, msg in ((["fast", src, tmp_path / "x"], "FACTOR must be a positive number"),
                      (["0", src, tmp_path / "x"], "FACTOR must be a positive number"),
                      (["0.9", tmp_path / "none", tmp_path / "x"], "no such file"),
                      (["0.9", src, src], "same directory"),
                      (["0.9", src], "usage")):
        p = _perturb(repo, script_env, *args)
        assert p.returncode != 0 and msg in p.stderr, (args, p.stderr)
    assert not (tmp_path / "x").exists()
    # An inconsistent source is refused by its own file and line, before anything is written, and
    # an earlier copy in DEST stays as it was.
    good = tmp_path / "bad"
    assert _perturb(repo, script_env, "0.9", src, good).returncode == 0
    before = {f.name: f.read_text() for f in good.iterdir()}
    (src / "wav.scp").write_text((src / "wav.scp").read_text() + "08-c again.wav\n")
    p = _perturb(repo, script_env, "1.1", src, good)
    assert p.returncode != 0
    assert f"{src}/wav.scp:4: duplicate key '08-c'" in p.stderr and f"{src} is not a valid data dir" in p.stderr, p.stderr
    assert {f.name: f.read_text() for f in good.iterdir()} == before
    assert not list(tmp_path.glob("bad.tmp.*"))
