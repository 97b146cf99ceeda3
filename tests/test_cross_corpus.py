"""Cross-corpus fold (ser.bin.make_cross_corpus_fold) and stages 0-1 of egs/cross_corpus/run.sh
on tiny synthetic feature dirs."""
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import yaml

from conftest import REPO, copy_recipe
from ser.bin import make_cross_corpus_fold as mccf
from ser.errors import SerError
from ser.training.dataset import load_fold

FOUR = ["anger", "happiness", "neutral", "sadness"]
# (speaker, label, count): a source with EmoDB's labels and a target with RAVDESS's, class sizes
# chosen so that 30 % is not always an integer.
SRC = [("03", e, n) for e, n in (("anger", 5), ("happiness", 3), ("neutral", 4), ("sadness", 2),
                                  ("boredom", 3), ("disgust", 2), ("fear", 1))] + \
      [("08", e, n) for e, n in (("anger", 4), ("happiness", 2), ("neutral", 3), ("sadness", 6),
                                  ("boredom", 1))]
TGT = [(a, e, n) for a in ("01", "02", "03") for e, n in
       (("anger", 7), ("happiness", 6), ("neutral", 3), ("sadness", 5), ("calm", 4), ("fear", 2),
        ("disgust", 2), ("surprise", 3))]


def read_table(path):
    return dict(line.rstrip("\n").split(" ", 1) for line in open(path, encoding="utf-8"))


def read_list(path):
    return [line.strip() for line in open(path, encoding="utf-8") if line.strip()]


def make_data(dir, corpus, spec, prefix="", feats=False, conf=None, rng=None):
    """A data dir (utt2spk, spk2utt, utt2emo, text [, feats.scp + conf.yaml]) from (spk, label, n)."""
    dir = Path(dir)
    dir.mkdir(parents=True)
    utt2spk, utt2emo = {}, {}
    for spk, emo, n in spec:
        for i in range(n):
            utt = f"{prefix}{spk}-{corpus}{emo[:3]}{i:02d}"
            utt2spk[utt], utt2emo[utt] = prefix + spk, emo
    keys = sorted(utt2spk)
    (dir / "utt2spk").write_text("".join(f"{u} {utt2spk[u]}\n" for u in keys))
    (dir / "utt2emo").write_text("".join(f"{u} {utt2emo[u]}\n" for u in keys))
    (dir / "text").write_text("".join(f"{u} some words\n" for u in keys))
    spk2utt = {}
    for u in keys:
        spk2utt.setdefault(utt2spk[u], []).append(u)
    (dir / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    mats = {}
    if feats:
        rng = rng or np.random.default_rng(0)
        with kaldiio.WriteHelper(f"ark,scp:{dir.resolve()}/feats.ark,{dir.resolve()}/feats.scp") as w:
            for u in keys:
                mats[u] = rng.standard_normal((int(rng.integers(5, 9)), 3)).astype(np.float32)
                w(u, mats[u])
        (dir / "utt2num_frames").write_text("".join(f"{u} {mats[u].shape[0]}\n" for u in keys))
        shutil.copyfile(conf, dir / "conf.yaml")
    return utt2spk, utt2emo, mats


def run_fold(tmp_path, seed=1, out="folds", src="src", tgt="tgt", extra=()):
    args = ["--src-data", str(tmp_path / src), "--tgt-data", str(tmp_path / tgt), "--dev-fraction", "0.3",
            "--seed", str(seed), "--classes", " ".join(FOUR), *extra, str(tmp_path / out)]
    with pytest.raises(SystemExit) as e:
        from ser.errors import run_main
        run_main(mccf.main, args)
    return e.value.code


@pytest.fixture
def corpora(tmp_path):
    src = make_data(tmp_path / "src", "e", SRC, prefix="emodb-")
    tgt = make_data(tmp_path / "tgt", "r", TGT, prefix="ravdess-")
    return src, tgt


def test_split_proportions_stratification_disjointness_and_label_map(tmp_path, corpora):
    (s_spk, s_emo, _), (t_spk, t_emo, _) = corpora
    assert run_fold(tmp_path) == 0
    d = tmp_path / "folds"
    train, valid, test = (read_list(d / "1" / f"{n}.list") for n in ("train", "valid", "test"))
    assert read_list(d / "classes.txt") == FOUR
    # train = every source utterance of the 4 classes; valid + test = every such target utterance
    assert train == sorted(u for u, e in s_emo.items() if e in FOUR)
    assert sorted(valid + test) == sorted(u for u, e in t_emo.items() if e in FOUR)
    assert not set(valid) & set(test) and not set(train) & set(valid + test)
    assert valid == sorted(valid) and test == sorted(test)
    assert all(u.startswith("emodb-") for u in train) and all(u.startswith("ravdess-") for u in valid + test)
    # stratified 30/70 in every class (round(0.3 n), so within half an utterance of 0.3 n)
    n_tgt = Counter(e for e in t_emo.values() if e in FOUR)
    n_valid, n_test = Counter(t_emo[u] for u in valid), Counter(t_emo[u] for u in test)
    for c in FOUR:
        assert abs(n_valid[c] - 0.3 * n_tgt[c]) <= 0.5, (c, n_valid[c], n_tgt[c])
        assert n_valid[c] + n_test[c] == n_tgt[c] and n_valid[c] >= 1 and n_test[c] >= 1
    # the label map dropped EmoDB boredom/disgust/fear and RAVDESS calm/fear/disgust/surprise
    assert {s_emo[u] for u in train} == set(FOUR) == {t_emo[u] for u in valid + test}
    info = yaml.safe_load((d / "1" / "info.yaml").read_text())
    assert info["dropped"]["source"] == dict(Counter(e for e in s_emo.values() if e not in FOUR))
    assert info["dropped"]["target"] == dict(Counter(e for e in t_emo.values() if e not in FOUR))
    assert set(info["dropped"]["target"]) == {"calm", "fear", "disgust", "surprise"}
    assert info["counts"]["valid"] == {c: n_valid[c] for c in FOUR}
    assert (info["num_train"], info["num_valid"], info["num_test"]) == (len(train), len(valid), len(test))
    assert info["train_speakers"] == ["emodb-03", "emodb-08"]
    assert info["test_speakers"] == ["ravdess-01", "ravdess-02", "ravdess-03"]
    assert info["seed"] == 1 and info["dev_fraction"] == 0.3
    row = (d / "folds.tsv").read_text().splitlines()[1].split("\t")
    assert row[0] == "1" and row[3:] == [str(len(train)), str(len(valid)), str(len(test))]
    # random, not the first 30 % of each class in sorted order
    first = {c: sorted(u for u, e in t_emo.items() if e == c)[:n_valid[c]] for c in FOUR}
    assert any(sorted(u for u in valid if t_emo[u] == c) != first[c] for c in FOUR)


def test_split_is_reproducible_from_the_seed(tmp_path, corpora):
    assert run_fold(tmp_path, seed=7, out="a") == 0
    assert run_fold(tmp_path, seed=7, out="b") == 0
    assert run_fold(tmp_path, seed=8, out="c") == 0
    for name in ("train.list", "valid.list", "test.list", "info.yaml"):
        assert (tmp_path / "a" / "1" / name).read_bytes() == (tmp_path / "b" / "1" / name).read_bytes()
    assert (tmp_path / "a" / "1" / "valid.list").read_text() != (tmp_path / "c" / "1" / "valid.list").read_text()
    # a re-run with the same inputs leaves the directory untouched
    mtime = (tmp_path / "a" / "1" / "valid.list").stat().st_mtime_ns
    assert run_fold(tmp_path, seed=7, out="a") == 0
    assert (tmp_path / "a" / "1" / "valid.list").stat().st_mtime_ns == mtime


def test_colliding_ids_and_missing_class_are_errors(tmp_path, capsys):
    make_data(tmp_path / "src", "e", SRC)   # no prefixes: speaker 03 is in both corpora
    make_data(tmp_path / "tgt", "r", TGT)
    assert run_fold(tmp_path) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "speaker '03'" in err and "--utt-prefix" in err
    make_data(tmp_path / "src2", "e", [s for s in SRC if s[1] != "sadness"], prefix="emodb-")
    make_data(tmp_path / "tgt2", "r", TGT, prefix="ravdess-")
    assert run_fold(tmp_path, src="src2", tgt="tgt2") == 1
    err = capsys.readouterr().err
    assert "src2: no utterance of class 'sadness'" in err
    assert not (tmp_path / "folds").exists()


def test_classes_are_written_in_c_order_and_each_once(tmp_path, corpora, capsys):
    """The model's output order (classes.txt) does not depend on how --classes was typed."""
    args = ["--src-data", str(tmp_path / "src"), "--tgt-data", str(tmp_path / "tgt")]
    assert mccf.main(args + ["--classes", "sadness anger neutral happiness", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "classes.txt").read_text().split() == sorted(FOUR)
    assert run_fold(tmp_path, out="b") == 0
    for name in ("classes.txt", "1/train.list", "1/test.list"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    with pytest.raises(SerError, match="--classes 'anger anger sadness': give each class once"):
        mccf.main(args + ["--classes", "anger anger sadness", str(tmp_path / "c")])
    assert not (tmp_path / "c").exists()


def test_dev_fraction_out_of_range_is_an_error(tmp_path, corpora, capsys):
    args = ["--src-data", str(tmp_path / "src"), "--tgt-data", str(tmp_path / "tgt"),
            "--dev-fraction", "1.0", str(tmp_path / "folds")]
    with pytest.raises(SerError, match="dev-fraction"):
        mccf.main(args)


# --- egs/cross_corpus/run.sh stages 0-1 ------------------------------------------------------------
def run(recipe, env, *args):
    return subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True)


@pytest.fixture
def recipes(tmp_path):
    """tmp/{emodb,ravdess}/data/all_spec (tiny features) and a copy of egs/cross_corpus."""
    conf = REPO / "egs" / "TEMPLATE" / "conf" / "feats" / "spec.yaml"
    rng = np.random.default_rng(3)
    src = make_data(tmp_path / "emodb/data/all_spec", "e", SRC, feats=True, conf=conf, rng=rng)
    tgt = make_data(tmp_path / "ravdess/data/all_spec", "r", TGT, feats=True,
                    conf=REPO / "egs" / "TEMPLATE" / "conf" / "feats" / "spec.yaml", rng=rng)
    return copy_recipe("cross_corpus", tmp_path / "cross_corpus"), src, tgt


def test_recipe_stages_0_1(tmp_path, recipes, script_env):
    recipe, (s_spk, s_emo, s_mats), (t_spk, t_emo, t_mats) = recipes
    r = run(recipe, script_env, "--stop_stage", "2", "--src", "emodb", "--tgt", "ravdess")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Stage 1: import ../emodb/data/all_spec -> data/emodb_spec" in r.stdout
    assert "Stage 2: cross-corpus split" in r.stdout
    data = recipe / "data"
    # imported dirs: every id prefixed by the corpus, features unchanged
    imp = read_table(data / "emodb_spec" / "utt2spk")
    assert imp == {f"emodb-{u}": f"emodb-{s}" for u, s in s_spk.items()}
    feats = dict(kaldiio.load_scp(str(data / "emodb_to_ravdess_spec" / "feats.scp")))
    assert len(feats) == len(s_mats) + len(t_mats)
    for u, m in list(s_mats.items())[:3] + list(t_mats.items())[:3]:
        corpus = "emodb" if u in s_mats else "ravdess"
        np.testing.assert_array_equal(feats[f"{corpus}-{u}"], m)
    comb = data / "emodb_to_ravdess_spec"
    assert (comb / "conf.yaml").read_bytes() == (tmp_path / "emodb/data/all_spec/conf.yaml").read_bytes()
    assert read_table(comb / "utt2emo")["emodb-" + next(iter(s_emo))] == next(iter(s_emo.values()))
    folds = data / "emodb_to_ravdess_folds" / "dev0.3_seed1"
    train, valid, test = (read_list(folds / "1" / f"{n}.list") for n in ("train", "valid", "test"))
    assert train == sorted(f"emodb-{u}" for u, e in s_emo.items() if e in FOUR)
    assert sorted(valid + test) == sorted(f"ravdess-{u}" for u, e in t_emo.items() if e in FOUR)
    assert set(train + valid + test) <= set(feats)
    # load_fold (train.py's reader) accepts the fold: no speaker shared with valid/test
    fold = load_fold(str(comb), str(folds / "1"), str(folds / "classes.txt"))
    assert len(fold.train) == len(train) and fold.classes == FOUR

    r = run(recipe, script_env, "--stop_stage", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Stage 1: skipped") == 3 and "Stage 2: skipped" in r.stdout
    r = run(recipe, script_env, "--stop_stage", "2", "--split_seed", "2")
    assert r.returncode == 0 and "Stage 1: skipped" in r.stdout and "Stage 2: cross-corpus split" in r.stdout
    seed2 = data / "emodb_to_ravdess_folds" / "dev0.3_seed2"
    assert read_list(seed2 / "1" / "valid.list") != valid and read_list(folds / "1" / "valid.list") == valid
    r = run(recipe, script_env, "--stop_stage", "2", "--dev_fraction", "0.5")
    assert r.returncode == 0, r.stderr
    half = read_list(data / "emodb_to_ravdess_folds" / "dev0.5_seed1" / "1" / "valid.list")
    assert abs(len(half) - 0.5 * len(valid + test)) <= 2


def test_recipe_imports_speed_perturbed_source_with_prefixed_utt2uniq(tmp_path, recipes, script_env):
    recipe, (s_spk, s_emo, s_mats), _ = recipes
    conf = tmp_path / "emodb/data/all_spec/conf.yaml"
    for f in ("0.9", "1.1"):
        spec = [(f"sp{f}-{s}", e, n) for s, e, n in SRC]
        make_data(tmp_path / f"emodb/data/all_sp{f}_spec", "e", spec, feats=True, conf=conf)
        d = tmp_path / f"emodb/data/all_sp{f}_spec"
        uniq = {u: u[len(f"sp{f}-"):] for u in read_table(d / "utt2spk")}
        assert set(uniq.values()) == set(s_spk)
        (d / "utt2uniq").write_text("".join(f"{u} {v}\n" for u, v in sorted(uniq.items())))
    r = run(recipe, script_env, "--stop_stage", "2", "--augs", "sp")
    assert r.returncode == 0, r.stdout + r.stderr
    uniq = read_table(recipe / "data/emodb_sp0.9_spec/utt2uniq")
    assert uniq["emodb-sp0.9-03-eang00"] == "emodb-03-eang00"
    # train.py's selection finds a copy of every training utterance in each perturbed dir
    folds = recipe / "data/emodb_to_ravdess_folds/dev0.3_seed1"
    fold = load_fold(str(recipe / "data/emodb_to_ravdess_spec"), str(folds / "1"), str(folds / "classes.txt"),
                     [str(recipe / f"data/emodb_sp{f}_spec") for f in ("0.9", "1.1")], "select")
    n_train = len(read_list(folds / "1" / "train.list"))
    assert len(fold.train) == 3 * n_train
    assert sum(u != s for u, s in fold.train_source.items()) == 2 * n_train


def test_recipe_missing_features_name_the_dir_and_the_stage_to_run(tmp_path, recipes, script_env):
    recipe = recipes[0]
    shutil.rmtree(tmp_path / "ravdess")
    r = run(recipe, script_env, "--stop_stage", "2")
    assert r.returncode != 0
    err = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(err) == 1 and "../ravdess/data/all_spec" in err[0]
    assert "cd ../ravdess && ./run.sh --stop_stage 1 --feats spec" in err[0]
    assert not (recipe / "data").exists()


def test_recipe_sp_without_perturbed_source_features_is_an_error(recipes, script_env):
    recipe = recipes[0]
    r = run(recipe, script_env, "--stop_stage", "2", "--augs", "none sp")
    assert r.returncode != 0
    assert "../emodb/data/all_sp0.9_spec" in r.stderr and "--stop_stage 1 --feats spec --augs sp" in r.stderr
    assert not (recipe / "data").exists()


def test_recipe_refuses_different_feature_configs(tmp_path, recipes, script_env):
    recipe = recipes[0]
    conf = tmp_path / "ravdess/data/all_spec/conf.yaml"
    c = yaml.safe_load(conf.read_text())
    c["sample_rate"] = 22050
    conf.write_text(yaml.safe_dump(c))
    r = run(recipe, script_env, "--stop_stage", "2")
    assert r.returncode != 0
    assert "sample_rate is 16000" in r.stderr and "22050" in r.stderr and "ravdess/data/all_spec/conf.yaml" in r.stderr
    assert not (recipe / "data" / "emodb_spec").exists()
    # comments and key order do not matter
    conf.write_text("# another comment\n" + yaml.safe_dump(dict(reversed(list(
        yaml.safe_load((REPO / "egs/TEMPLATE/conf/feats/spec.yaml").read_text()).items())))))
    assert run(recipe, script_env, "--stop_stage", "1").returncode == 0


def test_recipe_same_src_and_tgt_is_an_error(recipes, script_env):
    r = run(recipes[0], script_env, "--src", "emodb", "--tgt", "emodb")
    assert r.returncode != 0 and "both 'emodb'" in r.stderr


def test_recipe_unknown_augmentation_fails_before_any_stage(recipes, script_env):
    r = run(recipes[0], script_env, "--augs", "none real_syn")
    assert r.returncode == 1 and "unknown augmentation 'real_syn'" in r.stderr, r.stderr
    assert "Stage" not in r.stdout and not (recipes[0] / "data").exists()
