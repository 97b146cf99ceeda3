"""Initialisation from a trained model (ser.training.init_model, the config's `init` section)."""
import hashlib

import pytest
import torch

from ser.errors import SerError
from ser.models import build_model
from ser.training import config as C
from ser.training import init_model
from ser.training.model_io import read_model_file, save_model

from test_train_program import toy_config_resolver, train_toy

FEATS = {"type": "mel", "num_mels": 16}
CONF = {"conv_channels": [4, 8], "fc_dim": 16}


def source_file(tmp_path, classes=("a", "b", "c", "d"), feat_conf=FEATS, model_conf=CONF, seed=0):
    torch.manual_seed(seed)
    model = build_model("cnn", len(classes), 16, **model_conf)
    path = tmp_path / f"source{seed}.pt"
    save_model(str(path), model, {"model_name": "cnn", "model_conf": model_conf, "num_classes": len(classes),
                                  "classes": list(classes), "feat_dim": 16, "segment": {"length": 64, "shift": 32},
                                  "cmvn_mean": [0.0] * 16, "cmvn_std": [1.0] * 16, "feat_conf": dict(feat_conf)})
    return path, model.state_dict()


def init_section(path, exclude=()):
    return init_model.resolve({**init_model.DEFAULT, "model": str(path), "exclude": list(exclude)})


def test_copies_every_tensor_but_the_excluded_output_layer(tmp_path):
    path, source = source_file(tmp_path)                # 4 classes
    torch.manual_seed(1)
    model = build_model("cnn", 3, 16, **CONF)           # 3 classes: the output layer cannot be copied
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    note = init_model.initialise(model, init_section(path, ["classifier"]), ["a", "b", "c"], FEATS)
    after = model.state_dict()
    body = [k for k in after if not k.startswith("classifier.")]
    assert body and len(body) == len(after) - 2
    for k in body:
        assert torch.equal(after[k], source[k]), k
        if after[k].dim() > 1:                           # conv and linear weights
            assert not torch.equal(after[k], fresh[k]), k      # the copy changed the random initialisation
    for k in ("classifier.weight", "classifier.bias"):
        assert torch.equal(after[k], fresh[k])
    assert f"{len(body)} tensors copied, 2 under classifier initialised at random" in note


def test_the_checksum_is_the_files_and_a_pinned_one_must_match(tmp_path):
    path, _ = source_file(tmp_path)
    (tmp_path / "model.pt").write_bytes(path.read_bytes())
    resolved = init_section(tmp_path)                   # a dir: its model.pt
    assert resolved["model"] == str(tmp_path)
    assert resolved["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(SerError, match=r"^init.sha256: .*source0.pt has checksum"):
        init_model.resolve({**init_model.DEFAULT, "model": str(path), "sha256": "0" * 64})
    with pytest.raises(SerError, match=r"^init.model: .*missing.pt: no such file"):
        init_section(tmp_path / "missing.pt")
    packed = tmp_path / "packed"
    (packed / "models").mkdir(parents=True)
    (packed / "models" / "fold.1.seed1.pt").write_bytes(path.read_bytes())
    with pytest.raises(SerError, match=r"is a packed ensemble: name one of its members, e.g. .*fold.1.seed1.pt$"):
        init_section(packed)
    assert init_section(packed / "models" / "fold.1.seed1.pt")["sha256"] == resolved["sha256"]
    with pytest.raises(SerError, match=r"^init.exclude must be a list"):
        init_model.resolve({**init_model.DEFAULT, "model": str(path), "exclude": "classifier"})


@pytest.mark.parametrize("case, pattern", [
    ("classes", r"has classes \(a b c d\) other than this run's \(d c b a\): add classifier to init.exclude"),
    ("features", r"was trained on other features \(differing: num_mels\)"),
    ("typo", r"^init.exclude: clasifier matches no parameter of model"),
    ("shape", r"'convs\.0\.weight' has shape \(4, 1, 3, 3\), this model's is \(4, 3, 3, 3\)"),
])
def test_a_source_that_does_not_fit_is_refused_naming_why(tmp_path, case, pattern):
    path, _ = source_file(tmp_path)
    classes, feats, exclude, conf = ["d", "c", "b", "a"], FEATS, [], CONF
    if case == "features":
        feats, exclude = {**FEATS, "num_mels": 80}, ["classifier"]
    elif case == "typo":
        exclude = ["clasifier"]
    elif case == "shape":
        conf, exclude = {**CONF, "deltas": 2}, ["classifier"]     # 3 input maps instead of 1
    model = build_model("cnn", 4, 16, **conf)
    with pytest.raises(SerError, match=pattern):
        init_model.initialise(model, init_section(path, exclude), classes, feats)


def test_the_config_hash_follows_the_source_files_content(tmp_path):
    resolve = toy_config_resolver(tmp_path)
    plain = resolve()
    assert "init" not in plain
    path, _ = source_file(tmp_path, seed=0)
    first = resolve(f"init.model={path}", "init.exclude=[classifier]")
    assert first["init"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert C.config_hash(first) != C.config_hash(plain)
    other, _ = source_file(tmp_path, seed=1)
    path.write_bytes(other.read_bytes())                # the source model re-trained in place
    assert C.config_hash(resolve(f"init.model={path}", "init.exclude=[classifier]")) != C.config_hash(first)


def test_a_training_run_starts_from_the_source_weights(tmp_path):
    """Fine-tune one epoch at a learning rate too small to move the weights: the model that comes
    out holds the source's weights (batch-norm running statistics excepted: they follow the data)."""
    _, source_dir, proc = train_toy(tmp_path / "source", ["--max-epochs", "2"])
    assert proc.returncode == 0, proc.stderr
    _, outdir, proc = train_toy(tmp_path / "target", ["--max-epochs", "1", "--set", "optim.lr=1e-12",
                                                      "--set", f"init.model={source_dir}"])
    assert proc.returncode == 0, proc.stderr
    assert "init from" in (outdir / "train.log").read_text()
    assert f"sha256: {hashlib.sha256((source_dir / 'model.pt').read_bytes()).hexdigest()}" in \
        (outdir / "config.yaml").read_text()
    source = read_model_file(str(source_dir / "model.pt"))["state_dict"]
    tuned = read_model_file(str(outdir / "model.pt"))["state_dict"]
    weights = [k for k in source if k.endswith("weight") and source[k].dim() > 1]
    assert weights
    for k in weights:
        torch.testing.assert_close(tuned[k], source[k], atol=1e-6, rtol=0)
    # a run of the same config without init starts elsewhere
    _, scratch, proc = train_toy(tmp_path / "scratch", ["--max-epochs", "1", "--set", "optim.lr=1e-12"])
    assert proc.returncode == 0, proc.stderr
    fresh = read_model_file(str(scratch / "model.pt"))["state_dict"]
    assert not torch.allclose(fresh[weights[0]], source[weights[0]])


def recipe_source(tmp_path, train, valid, fold_lists=True):
    """A source model inside a recipe layout, trained on fold dir data/folds/1 (relative to the
    recipe, as configs store it) with the given train and valid utterances."""
    recipe = tmp_path / "egs" / "corpus"
    run = recipe / "exp" / "all" / "tag" / "fold.1" / "seed1"
    run.mkdir(parents=True)
    if fold_lists:
        fold = recipe / "data" / "folds" / "1"
        fold.mkdir(parents=True)
        for name, utts in (("train", train), ("valid", valid), ("test", ["09-x"])):
            (fold / f"{name}.list").write_text("".join(u + "\n" for u in utts))
    model = build_model("cnn", 4, 16, **CONF)
    save_model(str(run / "model.pt"), model, {
        "model_name": "cnn", "model_conf": CONF, "num_classes": 4, "classes": ["a", "b", "c", "d"], "feat_dim": 16,
        "segment": {"length": 64, "shift": 32}, "cmvn_mean": [0.0] * 16, "cmvn_std": [1.0] * 16,
        "feat_conf": dict(FEATS), "train_config": {"data": {"fold_dir": "data/folds/1"}}})
    return run / "model.pt"


@pytest.mark.parametrize("train, valid, test, seen", [
    (["03-a", "08-a"], ["10-a"], ["03-a", "03-b"], "03-a"),            # trained on a test utterance
    (["08-a"], ["03-b"], ["03-a", "03-b"], "03-b"),                    # validated on one
    (["03-a", "08-a"], ["10-a"], ["emodb-03-a"], "emodb-03-a"),        # the cross-corpus recipe's prefixed ids
    (["emodb-03-a"], ["emodb-10-a"], ["03-a"], "03-a"),
])
def test_a_source_that_saw_this_folds_test_utterances_is_refused(tmp_path, train, valid, test, seen):
    path = recipe_source(tmp_path, train, valid)
    model = build_model("cnn", 4, 16, **CONF)
    with pytest.raises(SerError, match=f"was trained or validated on '{seen}', which this fold tests on"):
        init_model.initialise(model, init_section(path), ["a", "b", "c", "d"], FEATS, test)


def test_the_held_out_check_passes_or_says_why_it_cannot_run(tmp_path):
    model = build_model("cnn", 4, 16, **CONF)
    path = recipe_source(tmp_path / "ok", ["08-a", "s1-u00"], ["10-a"])
    note = init_model.initialise(model, init_section(path), ["a", "b", "c", "d"], FEATS, ["03-a", "s4-u00"])
    assert note.endswith("; never saw this fold's test utterances")
    path = recipe_source(tmp_path / "moved", ["08-a"], ["10-a"], fold_lists=False)
    with pytest.raises(SerError, match=r"cannot check that it never saw this fold's test utterances: .*data/folds/1/train.list: no such file"):
        init_model.initialise(model, init_section(path), ["a", "b", "c", "d"], FEATS, ["03-a"])
    path, _ = source_file(tmp_path)                      # written by hand, no training config
    note = init_model.initialise(model, init_section(path), ["a", "b", "c", "d"], FEATS, ["03-a"])
    assert note.endswith("; not checked against the test speakers (no training config in the file)")
