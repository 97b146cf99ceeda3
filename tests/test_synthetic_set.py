"""synthetic.yaml, the record of a synthetic data dir (ser.data.synthetic_set): its one reader and writer."""
import os

import pytest
import yaml

from ser.data.synthetic_set import made_with, model_dir_of, read_info, write_info
from ser.errors import SerError

ARGS = {"model_dir": "/m/fold.1", "sampling_steps": 50, "num_per_combination": 1, "seed": 1}


def test_the_record_round_trips_and_a_rerun_compares_only_the_arguments(tmp_path):
    d = str(tmp_path / "syn_s50_n1")
    os.makedirs(d)
    write_info(d, ARGS, 12.5)
    assert yaml.safe_load(open(os.path.join(d, "synthetic.yaml"))) == dict(ARGS, sampling_seconds=12.5)
    assert read_info(d) == dict(ARGS, sampling_seconds=12.5, sampler="ancestral", eta=0.0, guidance_weight=1.0)
    assert not made_with(d, ARGS)                      # no feats.scp: a killed generation is not complete
    open(os.path.join(d, "feats.scp"), "w").close()
    assert made_with(d, ARGS)                          # the sampling time is not an argument
    assert not made_with(d, dict(ARGS, sampling_steps=100))
    assert not made_with(d, dict(ARGS, batch_size=8))  # an argument the record lacks
    # a record from before the sampler existed was made with the ancestral sampler
    assert made_with(d, dict(ARGS, sampler="ancestral", eta=0.0))
    assert not made_with(d, dict(ARGS, sampler="ddim", eta=0.0))
    # ... and without guidance
    assert made_with(d, dict(ARGS, guidance_weight=1.0))
    assert not made_with(d, dict(ARGS, guidance_weight=2.0))


def test_missing_or_broken_records_name_the_file(tmp_path):
    d = str(tmp_path)
    path = os.path.join(d, "synthetic.yaml")
    assert read_info(d, required=False) is None
    with pytest.raises(SerError, match=f"^{path}: missing"):
        read_info(d)
    open(os.path.join(d, "feats.scp"), "w").close()
    assert not made_with(d, ARGS)
    for text, message in (("a: [1\n", "invalid YAML"), ("- 1\n- 2\n", "not a mapping")):
        with open(path, "w") as f:
            f.write(text)
        with pytest.raises(SerError, match=f"^{path}: {message}"):
            read_info(d, required=False)


def test_a_moved_set_finds_its_model_in_the_dir_that_holds_it(tmp_path):
    model = tmp_path / "diffusion_ab12" / "fold.1"
    sdir = model / "syn_s50_n1"
    sdir.mkdir(parents=True)
    assert model_dir_of(str(sdir), {"model_dir": str(model)}) == str(model)
    assert model_dir_of(str(sdir), {"model_dir": "/moved/away/fold.1"}) == str(model)
    assert model_dir_of(str(sdir) + "/", None) == str(model)


def test_the_same_model_reached_by_another_path_keeps_the_set(tmp_path):
    """A recipe run through a linked experiment dir, or a tree moved elsewhere, finds the set made
    with the same model complete; another model's set is not."""
    model = tmp_path / "run-a" / "diffusion_ab12" / "fold.1"
    sdir = model / "syn_s50_n1"
    sdir.mkdir(parents=True)
    (sdir / "feats.scp").write_text("")
    args = dict(ARGS, model_dir=str(model))
    write_info(str(sdir), args, 3.0)
    (tmp_path / "run-b").mkdir()
    os.symlink(model.parent, tmp_path / "run-b" / "diffusion_ab12")
    linked = tmp_path / "run-b" / "diffusion_ab12" / "fold.1"
    assert made_with(str(linked / "syn_s50_n1"), dict(args, model_dir=str(linked)))
    other = tmp_path / "run-a" / "diffusion_ab12" / "fold.3"
    other.mkdir()
    assert not made_with(str(sdir), dict(args, model_dir=str(other)))
    # moved: the record names a dir that no longer exists; the set's own model dir is that model
    write_info(str(sdir), dict(args, model_dir="/moved/away/fold.1"), 3.0)
    assert made_with(str(sdir), args)
    assert not made_with(str(sdir), dict(args, model_dir=str(other)))
