"""Averaging the weights of the N best validated epochs (config average_best): the mean itself,
the ranking and its files, what the trainer saves and validates, resumption, the fit table and the
config checks."""
import re

import numpy as np
import pytest
import torch

from ser.errors import SerError
from ser.eval.fit import run_fit
from ser.runtime.config import canonical
from ser.runtime.torch_files import load_torch_file
from ser.training import config as C
from ser.training import nbest as N
from ser.training.dataset import load_fold, prepare
from ser.training.inference import posteriors_of_segment_sets
from ser.training.model_io import read_model_file

from test_training import Killed, kill_after, small_config
from test_weight_ema import BnNet, run_trainer
from training_toy import make_corpus


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    # weak class offsets: the validation UAR moves between epochs, so the ranking has work to do
    corpus = make_corpus(str(tmp_path_factory.mktemp("c")), offset_scale=0.25)
    return prepare(load_fold(corpus["data"], corpus["fold"], corpus["classes"]), 64, 32)


def nbest_config(n=3, **over):
    return small_config(**dict({"average_best": n, "max_epochs": 6}, **over))


def test_average_is_the_elementwise_mean():
    states = [{"w": torch.tensor([1.0, 2.0]), "h": torch.tensor([0.5], dtype=torch.float16),
               "count": torch.tensor(7)},
              {"w": torch.tensor([3.0, 6.0]), "h": torch.tensor([1.5], dtype=torch.float16),
               "count": torch.tensor(9)},
              {"w": torch.tensor([2.0, 1.0]), "h": torch.tensor([1.0], dtype=torch.float16),
               "count": torch.tensor(1)}]
    avg = N.average_state_dicts(states)
    assert torch.equal(avg["w"], torch.tensor([2.0, 3.0]))
    assert avg["h"].dtype == torch.float16 and avg["h"].item() == 1.0
    assert avg["count"].item() == 7                      # integer buffers: the first (best) state's
    with pytest.raises(SerError, match="no state dicts"):
        N.average_state_dicts([])


def test_ranking_keeps_the_n_best_and_their_files(tmp_path):
    best = N.BestWeights(str(tmp_path / "best"), 3)
    model = torch.nn.Linear(2, 2)
    kept = []
    for epoch, score in enumerate([0.5, 0.7, 0.6, 0.7, 0.4, 0.65], 1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        kept.append(best.offer(score, epoch, model))
        best.prune()
    assert kept == [True, True, True, True, False, True]
    # ties keep the earlier epoch ahead; epoch 3 (0.6) was pushed out by epoch 6 (0.65)
    assert best.epochs == [2, 4, 6]
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["epoch2.pt", "epoch4.pt", "epoch6.pt"]
    assert N.average_state_dicts([load_torch_file(best.path(e), "{path}") for e in (2, 4, 6)])["weight"][0, 0] == 4.0
    assert best.average()["weight"][0, 0].item() == 4.0
    restored = N.BestWeights(str(tmp_path / "best"), 3)
    restored.load_state_dict(best.state_dict())
    assert restored.ranking == best.ranking


def valid_scores(model, prep):
    utts = list(prep.valid_segments)
    true = np.array([prep.valid_labels[u] for u in utts])
    post = posteriors_of_segment_sets(model, prep.valid_segments, "cpu", 64)
    probs = np.stack([post[u] for u in utts])
    loss = float(-np.log(np.maximum(probs[np.arange(len(utts)), true], 1e-12)).mean())
    return loss, probs.argmax(axis=1)


def test_trainer_saves_and_validates_the_mean_of_the_best_epochs(tmp_path, prep):
    trainer = run_trainer(tmp_path, prep, nbest_config())
    history = trainer.history
    ranked = sorted(range(len(history)), key=lambda i: (-history[i]["valid_uar"], i))[:3]
    expected_epochs = [i + 1 for i in ranked]
    averaged = N.read_averaged(str(tmp_path))
    assert averaged["epochs"] == expected_epochs
    assert sorted(p.name for p in (tmp_path / "checkpoints/best").iterdir()) == sorted(
        f"epoch{e}.pt" for e in expected_epochs)
    # model.pt holds the element-wise mean of those epochs' weights, computed here independently
    files = [load_torch_file(str(tmp_path / f"checkpoints/best/epoch{e}.pt"), "{path}") for e in expected_epochs]
    saved = read_model_file(str(tmp_path / "model.pt"))
    for key, value in saved["state_dict"].items():
        if value.is_floating_point():
            mean = sum(f[key].double() for f in files) / 3
            assert torch.allclose(value.double(), mean, atol=1e-6), key
        else:
            assert torch.equal(value, files[0][key]), key
    assert saved["meta"]["averaged_epochs"] == expected_epochs
    assert saved["meta"]["best_epoch"] == expected_epochs[0]
    # the best epoch's own model stays beside it, scorable like model.pt
    best = read_model_file(str(tmp_path / N.BEST_EPOCH_MODEL_FILE))
    assert best["meta"]["best_epoch"] == expected_epochs[0] and "averaged_epochs" not in best["meta"]
    assert best["meta"]["valid_uar"] == history[expected_epochs[0] - 1]["valid_uar"]
    for key, value in best["state_dict"].items():
        assert torch.equal(value, files[0][key]), key
    assert saved["meta"]["valid_uar"] == pytest.approx(averaged["valid_uar"], abs=1e-5)
    # the recorded validation loss is that of the averaged weights, rescored here
    reloaded = BnNet()
    reloaded.load_state_dict(saved["state_dict"])
    loss, _ = valid_scores(reloaded, prep)
    assert loss == pytest.approx(averaged["valid_loss"], rel=1e-4)
    # the fit table reads the average's validation scores and the best epoch's training loss
    fit = run_fit(str(tmp_path))
    assert fit["valid_uar"] == averaged["valid_uar"] and fit["valid_loss"] == averaged["valid_loss"]
    assert fit["best_epoch"] == expected_epochs[0] and fit["averaged"] == 1.0
    assert re.search(r"averaged_valid_uar [01]\.\d{4}$", (tmp_path / "done").read_text())


def test_resume_gives_the_same_average(tmp_path, prep, monkeypatch):
    cfg = nbest_config()
    run_trainer(tmp_path / "full", prep, cfg)
    with pytest.raises(Killed):
        run_trainer(tmp_path / "cut", prep, cfg, on_epoch_end=kill_after(3))
    # killed again while the average is written: model.pt is the mean already, `done` is missing
    real_write = N.write_averaged

    def killed_write(*args):
        raise Killed()
    monkeypatch.setattr("ser.training.trainer.write_averaged", killed_write)
    with pytest.raises(Killed):
        run_trainer(tmp_path / "cut", prep, cfg)
    assert not (tmp_path / "cut/done").exists() and not (tmp_path / "cut/averaged.tsv").exists()
    assert "averaged_epochs" in read_model_file(str(tmp_path / "cut/model.pt"))["meta"]
    monkeypatch.setattr("ser.training.trainer.write_averaged", real_write)
    run_trainer(tmp_path / "cut", prep, cfg)
    assert N.read_averaged(str(tmp_path / "full")) == N.read_averaged(str(tmp_path / "cut"))
    a = read_model_file(str(tmp_path / "full/model.pt"))["state_dict"]
    b = read_model_file(str(tmp_path / "cut/model.pt"))["state_dict"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the resumed run kept the best epoch's model, not the mean it had written before the kill
    a, b = (read_model_file(str(tmp_path / d / N.BEST_EPOCH_MODEL_FILE)) for d in ("full", "cut"))
    assert "averaged_epochs" not in b["meta"]
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_one_kept_epoch_is_not_averaged(tmp_path, prep):
    run_trainer(tmp_path, prep, nbest_config(max_epochs=1))
    assert N.read_averaged(str(tmp_path)) is None
    assert "averaged_epochs" not in read_model_file(str(tmp_path / "model.pt"))["meta"]
    assert not (tmp_path / N.BEST_EPOCH_MODEL_FILE).exists()
    assert run_fit(str(tmp_path))["averaged"] == 0.0


def test_bad_averaged_file_is_named(tmp_path):
    (tmp_path / N.AVERAGED_FILE).write_text("epochs\tvalid_loss\tvalid_uar\tvalid_wa\n3,x\t0.1\t0.2\t0.3\n")
    with pytest.raises(SerError, match=r"averaged.tsv:2: expected comma-separated epochs"):
        N.read_averaged(str(tmp_path))


def test_config_default_hash_and_bounds():
    base = canonical(C.DEFAULTS)
    assert base["average_best"] == 1                    # the papers: the best epoch's weights
    assert C.config_hash(C.apply_overrides(base, ["average_best=5"])) != C.config_hash(base)
    with pytest.raises(SerError, match="average_best"):
        C.apply_overrides(base, ["average_best=0"])
