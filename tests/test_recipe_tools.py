"""Recipe machinery users touch first: every recipe shares the TEMPLATE stage scripts,
utils/new_recipe.sh makes a recipe of its own, and run.sh --help lists every option."""
import os
import re
import subprocess

import pytest

from conftest import REPO

EGS = REPO / "egs"
# Recipes with a run.sh of their own (not a corpus: no db.sh, no local/data.sh).
STANDALONE = {"cross_corpus"}


def check_shares_template(recipe):
    """The checks every corpus recipe passes: run.sh, path.sh, cmd.sh link egs/TEMPLATE's."""
    for name in ("run.sh", "path.sh", "cmd.sh"):
        assert os.readlink(recipe / name) == f"../TEMPLATE/{name}", f"{recipe}/{name}"
    assert os.readlink(recipe / "utils") == "../../utils"
    assert os.access(recipe / "run.sh", os.X_OK)
    assert os.access(recipe / "local" / "data.sh", os.X_OK)
    assert re.search(r"^corpus_var=\w+$", (recipe / "db.sh").read_text(), re.M), f"{recipe}/db.sh"
    assert (recipe / "local" / "corpus_note.txt").read_text().strip()
    assert (recipe / "conf" / "classes.txt").read_text().split()


def test_every_corpus_recipe_shares_run_path_cmd():
    recipes = sorted(p.name for p in EGS.iterdir() if p.is_dir() and p.name != "TEMPLATE")
    assert {"emodb", "ravdess", "iemocap", "msp_improv", "crema_d"} <= set(recipes)
    for r in recipes:
        if r not in STANDALONE:
            check_shares_template(EGS / r)


@pytest.fixture
def new_recipe(tmp_path, script_env):
    """utils/new_recipe.sh run on an egs/ of links to this checkout's TEMPLATE, emodb and utils."""
    egs = tmp_path / "egs"
    egs.mkdir()
    for name in ("TEMPLATE", "emodb"):
        (egs / name).symlink_to(EGS / name)
    (tmp_path / "utils").symlink_to(REPO / "utils")

    def make(*args):
        return subprocess.run([str(REPO / "utils" / "new_recipe.sh"), "--egs_dir", str(egs), *args],
                              capture_output=True, text=True, env=script_env)
    return egs, make


def test_new_recipe_is_a_recipe_of_its_own(new_recipe, tmp_path, emodb_dir, script_env):
    egs, make = new_recipe
    r = make("mycorpus")
    assert r.returncode == 0, r.stderr
    recipe = egs / "mycorpus"
    check_shares_template(recipe)
    assert "corpus_var=MYCORPUS" in (recipe / "db.sh").read_text()
    files = {str(p.relative_to(recipe)) for p in recipe.rglob("*") if p.is_file() and "utils" not in p.parts[:1]}
    # nothing of EmoDB's own: results, figures, its download script, notes, sentences, classes, folds
    for name in files:
        assert not name.endswith(".png") and "RESULTS" not in name and "figures" not in name, name
    assert sorted(f for f in files if f.startswith("local/")) == [
        "local/corpus_note.txt", "local/data.sh", "local/prepare_mycorpus.py"]
    assert "03:08" not in (recipe / "conf" / "folds.yaml").read_text()
    assert (recipe / "conf" / "classes.txt").read_text().split() == ["anger", "happiness", "neutral", "sadness"]
    # the shared configs are not copied: run.sh finds them in egs/TEMPLATE/conf
    assert sorted(f for f in files if f.startswith("conf/")) == ["conf/classes.txt", "conf/folds.yaml"]
    r = make("--from", "emodb", "other")
    assert r.returncode == 0, r.stderr
    # emodb's own configs (its diffusion config and config variants); folds.yaml is the skeleton
    conf = egs / "other" / "conf"
    own = sorted(str(p.relative_to(EGS / "emodb" / "conf")) for p in (EGS / "emodb" / "conf").rglob("*.yaml")
                 if not p.name.startswith("folds"))   # fold schemes name emodb's speakers
    assert "diffusion.yaml" in own and (EGS / "emodb" / "conf" / "folds_valid2.yaml").exists()
    assert sorted(str(p.relative_to(conf)) for p in conf.rglob("*.yaml")) == sorted(own + ["folds.yaml"])
    assert "Copied from egs/emodb/conf" in (conf / "diffusion.yaml").read_text()
    # a variant's link still resolves: to the shared TEMPLATE config, or to the copy of the recipe's own
    src_conf = EGS / "emodb" / "conf"
    for link in src_conf.rglob("*.yaml"):
        if link.is_symlink():
            copy = conf / link.relative_to(src_conf)
            target = link.resolve()
            if src_conf.resolve() in target.parents:
                assert copy.resolve() == (conf / target.relative_to(src_conf.resolve())).resolve()
            else:
                assert copy.read_text() == link.read_text()
            assert copy.is_symlink() and copy.exists()
    assert "emodb" not in (recipe / "local" / "corpus_note.txt").read_text().lower()

    # an existing recipe is not overwritten; a bad name is refused (one line each)
    for args, msg in ((["mycorpus"], "exists already"), (["My-Corpus"], "lower-case")):
        r = make(*args)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and msg in r.stderr

    # the skeleton prepares the documented layout <speaker>/<emotion>/*.wav through stage 0
    corpus = tmp_path / "corpus"
    for spk, src in (("s01", "03"), ("s02", "08")):
        for emo, letter in (("anger", "W"), ("Sadness", "T")):
            d = corpus / spk / emo
            d.mkdir(parents=True)
            wav = sorted((emodb_dir / "wav").glob(f"{src}???{letter}?.wav"))[0]
            (d / wav.name).symlink_to(wav)
    r = subprocess.run(["./run.sh", "--stop_stage", "0"], cwd=recipe, capture_output=True, text=True,
                       env=dict(script_env, MYCORPUS=str(corpus)))
    assert r.returncode == 0, r.stdout + r.stderr
    emo = dict(line.split() for line in (recipe / "data" / "all" / "utt2emo").read_text().splitlines())
    assert sorted(emo.values()) == ["anger", "anger", "sadness", "sadness"]
    assert all(u.startswith(("s01-", "s02-")) for u in emo)
    # no transcripts: every utterance has an empty text
    assert [l.split(maxsplit=1)[1:] for l in (recipe / "data" / "all" / "text").read_text().splitlines()] == [[]] * 4


def options_block(script):
    """{name: default} of the assignments above help_message= (the options block)."""
    out = {}
    for line in script.read_text().splitlines():
        if line.startswith("help_message="):
            break
        m = re.match(r"^([A-Za-z_]\w*)=(\"[^\"]*\"|\S*)", line)
        if m:
            out[m.group(1)] = m.group(2) or '""'
    return out


@pytest.mark.parametrize("recipe", ["emodb", "cross_corpus"])
def test_run_help_lists_every_option(recipe, script_env):
    block = options_block(EGS / recipe / "run.sh")
    assert {"stage", "stop_stage", "models"} <= set(block)
    r = subprocess.run(["./run.sh", "--help"], cwd=EGS / recipe, capture_output=True, text=True, env=script_env)
    assert r.returncode == 0, r.stderr
    listed = {}
    for line in r.stderr.splitlines():
        m = re.match(r"^  --(\w+) (\"[^\"]*\"|\S+)\s+(.*)$", line)
        if m:
            listed[m.group(1)] = (m.group(2), m.group(3))
    assert set(listed) == set(block)
    for name, default in block.items():
        assert listed[name][0] == default, name
        assert listed[name][1] and listed[name][1] != "(undocumented)", f"--{name} has no meaning comment"
    assert "Stages:" in r.stderr or "Usage:" in r.stderr
