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
    assert read_info(d) == dict(ARGS, sampling_seconds=12.5, sampler="ancestral", eta=0.0)
    assert not made_with(d, ARGS)                      # no feats.scp: a killed generation is not complete
    open(os.path.join(d, "feats.scp"), "w").close()
    assert made_with(d, ARGS)                          # the sampling time is not an argument
    assert not made_with(d, dict(ARGS, sampling_steps=100))
    assert not made_with(d, dict(ARGS, batch_size=8))  # an argument the record lacks
    # a record from before the sampler existed was made with the ancestral sampler
    assert made_with(d, dict(ARGS, sampler="ancestral", eta=0.0))
    assert not made_with(d, dict(ARGS, sampler="ddim", eta=0.0))


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
