"""The carried data of the GPU check (bench/gpu_check_tools.py carry, then materialise on the other
machine) and bench/gpu_check.sh --dry-run on it, limited to its quick sections (ONLY)."""
import os
import subprocess
import sys

import kaldiio
import numpy as np

import diffusion_helpers
from diffusion_helpers import SPEAKERS, TEST_SPK, read_table

corpus = diffusion_helpers.corpus
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = [sys.executable, os.path.join(REPO, "bench", "gpu_check_tools.py")]


def small_fold(corpus, root):
    """A fold that leaves the test speaker's utterances out of train and valid and lists only
    half of the others: the carried dir must hold exactly the listed utterances."""
    fold = root / "fold"
    fold.mkdir()
    lists = {name: corpus["lists"][name][::2] for name in ("train", "valid", "test")}
    for name, utts in lists.items():
        (fold / f"{name}.list").write_text("".join(u + "\n" for u in utts))
    (fold / "info.yaml").write_text(f"test_speakers: ['{TEST_SPK[0]}']\n")
    return fold, sorted(u for utts in lists.values() for u in utts)


def test_carry_writes_the_folds_utterances_with_their_features_and_a_relocatable_scp(corpus, tmp_path):
    fold, utts = small_fold(corpus, tmp_path)
    dest = tmp_path / "carried"
    r = subprocess.run(TOOLS + ["carry", corpus["data"], str(fold), corpus["classes"], str(dest)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"carry: {len(utts)} utterances" in r.stdout
    assert sorted(read_table(dest / "mel" / "utt2spk")) == utts and set(utts) < set(corpus["mats"])
    assert read_table(dest / "mel" / "utt2emo") == {u: corpus["utt2emo"][u] for u in utts}
    assert (dest / "mel" / "conf.yaml").read_text() == (corpus["root"] / "data" / "conf.yaml").read_text()
    assert sorted(read_table(dest / "mel" / "spk2utt")) == sorted({corpus["utt2spk"][u] for u in utts})
    scp = (dest / "mel" / "feats.scp").read_text()
    assert str(dest) not in scp and all(line.split()[1].startswith("@DATA@/feats/mel.ark:")
                                        for line in scp.splitlines())
    assert (dest / "fold1" / "train.list").read_text() == (fold / "train.list").read_text()
    assert (dest / "classes.txt").read_text() == open(corpus["classes"]).read()

    # moved elsewhere (as onto the GPU machine) and materialised there: the same matrices
    moved = tmp_path / "elsewhere" / "gpu_data"
    os.makedirs(moved.parent)
    os.rename(dest, moved)
    work = tmp_path / "work"
    r = subprocess.run(TOOLS + ["materialise", str(moved), str(work)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    feats = kaldiio.load_scp(str(work / "mel" / "feats.scp"))
    assert sorted(feats) == utts
    for u in utts:
        np.testing.assert_array_equal(feats[u], corpus["mats"][u])


def test_carry_refuses_a_fold_listing_an_utterance_the_data_lacks(corpus, tmp_path):
    fold, _ = small_fold(corpus, tmp_path)
    with open(fold / "test.list", "a") as f:
        f.write(f"{SPEAKERS[-1]}-zz99\n")
    r = subprocess.run(TOOLS + ["carry", corpus["data"], str(fold), corpus["classes"], str(tmp_path / "c")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"carry: {SPEAKERS[-1]}-zz99 (of {fold}) is not in "
                                             f"{corpus['data']}/utt2spk"]
    assert not (tmp_path / "c").exists()


def test_dry_run_sections_chosen_by_only_pass_without_errors_from_the_others(corpus, tmp_path):
    fold, _ = small_fold(corpus, tmp_path)
    data = tmp_path / "carried"
    subprocess.run(TOOLS + ["carry", corpus["data"], str(fold), corpus["classes"], str(data)], check=True,
                   capture_output=True)
    env = dict(os.environ, PYTHON=sys.executable, ONLY="carried data|fp16")
    r = subprocess.run(["bash", "bench/gpu_check.sh", "--dry-run", "--data", str(data), "--out", str(tmp_path / "out")],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    summary = r.stdout.split("=== summary")[1].splitlines()[1:]
    assert summary[0].startswith("PASS environment") and summary[1].startswith("PASS carried data")
    assert summary[2].startswith("PASS fp16 refused on the CPU in one line") and len(summary) == 3
    # the sections left out run nothing: no traceback from their follow-up commands
    assert "Traceback" not in r.stdout + r.stderr


def test_carry_with_an_unreadable_ark_fails_in_one_line_and_leaves_no_destination(corpus, tmp_path):
    fold, _ = small_fold(corpus, tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("utt2spk", "utt2emo", "text", "conf.yaml"):
        (data / name).write_bytes((corpus["root"] / "data" / name).read_bytes())
    scp = (corpus["root"] / "data" / "feats.scp").read_text()
    (data / "feats.scp").write_text(scp.replace(str(corpus["root"] / "data" / "feats.ark"), str(tmp_path / "gone.ark")))
    dest = tmp_path / "carried"
    r = subprocess.run(TOOLS + ["carry", str(data), str(fold), corpus["classes"], str(dest)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"carry: {data}/feats.scp:") and f"from {tmp_path}/gone.ark:" in lines[0] and "(no such file)" in lines[0]
    assert not dest.exists() and os.listdir(tmp_path).count(".carried.tmp") == 0


def test_pack_feats_round_trip_is_bit_identical_and_a_damaged_pack_is_refused_in_one_line(corpus, tmp_path):
    packed = tmp_path / "packed"
    r = subprocess.run(TOOLS + ["pack-feats", corpus["data"], str(packed)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # smaller than the ark: the byte planes compress (the fixture's values are smooth)
    assert (packed / "values.zlib").stat().st_size < (corpus["root"] / "data" / "feats.ark").stat().st_size
    dest = tmp_path / "mel"
    dest.mkdir()
    r = subprocess.run(TOOLS + ["unpack-feats", str(packed), str(dest), str(tmp_path / "ark" / "mel.ark")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    feats = kaldiio.load_scp(str(dest / "feats.scp"))
    assert list(feats) == sorted(corpus["mats"])   # feats.scp's order kept
    for u, m in corpus["mats"].items():
        assert feats[u].dtype == np.float32 and feats[u].tobytes() == m.tobytes()

    # one value changed (a valid zlib stream, the wrong numbers): refused by the digest, no scp written
    values = np.frombuffer(__import__("zlib").decompress((packed / "values.zlib").read_bytes()), np.uint8).copy()
    values[7] ^= 1
    (packed / "values.zlib").write_bytes(__import__("zlib").compress(values.tobytes()))
    other = tmp_path / "other"
    other.mkdir()
    r = subprocess.run(TOOLS + ["unpack-feats", str(packed), str(other), str(tmp_path / "o.ark")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"unpack-feats: {packed}: unpacked values do not match the packed sha256"]
    assert not (other / "feats.scp").exists()
    (packed / "values.zlib").write_bytes(b"not zlib")
    r = subprocess.run(TOOLS + ["unpack-feats", str(packed), str(other), str(tmp_path / "o.ark")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith(f"unpack-feats: {packed}/values.zlib: not a packed feature file")


def seed_runs_recipe(corpus, root):
    """A recipe dir after stages 0-2 as bench/gpu_seed_runs.sh reads it: data/all, data/all_mel,
    data/all_folds/1 and a tiny classifier config conf/train_cnn_blstm.yaml."""
    import shutil
    shutil.copytree(corpus["data"], root / "data" / "all_mel")
    os.makedirs(root / "data" / "all")
    for name in ("utt2spk", "utt2emo", "text"):
        shutil.copy(root / "data" / "all_mel" / name, root / "data" / "all" / name)
    shutil.copytree(corpus["fold"], root / "data" / "all_folds" / "1")
    shutil.copy(corpus["classes"], root / "data" / "all_folds" / "classes.txt")
    os.makedirs(root / "conf")
    shutil.copy(corpus["root"] / "cls.yaml", root / "conf" / "train_cnn_blstm.yaml")
    return root


def run_seed_runs(recipe, out, *options):
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(["bash", os.path.join(REPO, "bench", "gpu_seed_runs.sh"), "--dry-run", "--models", "cnn_blstm",
                           "--conf-dir", "conf", "--jobs", "2", "--out", str(out), *options],
                          cwd=recipe, env=env, capture_output=True, text=True, timeout=300)


def test_gpu_seed_runs_trains_and_scores_each_seed_and_packs_the_scores_without_models(corpus, tmp_path):
    import tarfile
    recipe = seed_runs_recipe(corpus, tmp_path / "recipe")
    out = tmp_path / "out"
    r = run_seed_runs(recipe, out, "--seeds", "1 2")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line.split("\t") for line in (out / "runs.tsv").read_text().splitlines()]
    assert rows[0] == ["model", "seed", "fold", "status", "epochs", "seconds"]
    assert sorted((row[1], row[3], row[4]) for row in rows[1:]) == [("1", "scored", "2"), ("2", "scored", "2")]
    assert "seeds with every run scored: 1 2" in (out / "summary.txt").read_text()
    exp = next((recipe / "exp" / "all").glob("mel_cnn_blstm_none_*"))
    for seed in (1, 2):
        assert (exp / "fold.1" / f"seed{seed}" / "test_clean" / "metrics.json").is_file()
    with tarfile.open(out / "scores.tar.gz") as tar:
        names = tar.getnames()
    rel = f"exp/all/{exp.name}/fold.1/seed2/test_clean/metrics.json"
    assert rel in names and "data/all_folds/1/test.list" in names
    assert not [n for n in names if n.endswith(".pt") or "checkpoints" in n or n.endswith(".png")]


def test_gpu_seed_runs_starts_nothing_after_its_launch_deadline(corpus, tmp_path):
    recipe = seed_runs_recipe(corpus, tmp_path / "recipe")
    out = tmp_path / "out"
    r = run_seed_runs(recipe, out, "--seeds", "1", "--launch-deadline", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line.split("\t") for line in (out / "runs.tsv").read_text().splitlines()[1:]]
    assert rows == [["cnn_blstm", "1", "1", "not_started", "0", "0"]]
    assert "seeds with every run scored:\n" in (out / "summary.txt").read_text()
    assert not list((recipe / "exp" / "all").glob("*/fold.1"))


def test_gpu_seed_runs_outside_a_prepared_recipe_fails_in_one_line(tmp_path):
    r = run_seed_runs(tmp_path, tmp_path / "out", "--seeds", "1")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"gpu_seed_runs.sh: {tmp_path}/data/all_mel/feats.scp not found: "
                                             "run the recipe's stages 0-2 first"]


def test_gpu_seed_runs_refuses_a_bad_number_in_one_line(tmp_path):
    for option, value, message in (("--jobs", "x", "--jobs must be a whole number, got 'x'"),
                                   ("--deadline", "-3", "--deadline must be a whole number, got '-3'"),
                                   ("--jobs", "0", "--jobs must be at least 1"),
                                   ("--seeds", "1,2", "--seeds: '1,2' is not a seed (whole numbers, e.g. \"1 2 3\")")):
        r = run_seed_runs(tmp_path, tmp_path / "out", option, value)
        assert r.returncode == 1 and r.stderr.strip().splitlines() == [f"gpu_seed_runs.sh: {message}"], option
