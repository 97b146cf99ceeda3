"""What tells apart report rows of one model: ser.eval.config_diff."""
from ser.eval.config_diff import config_differences, describe_values

# the CPU densenet config narrows the model; the paper-size config leaves model_conf to the model
CPU = {"model": "densenet", "model_conf": {"growth_rate": 8, "num_layers": 4, "fc_dim": 256}, "precision": "fp32",
       "seed": 1}
PAPER = {"model": "densenet", "model_conf": {}, "precision": "bf16", "seed": 2}


def test_a_size_left_to_the_model_is_reported_as_its_value():
    diffs = config_differences([CPU, PAPER])
    # the paper's DenseNet baseline: DenseBlocks of L = 6 layers, growth rate G = 16, then a fully
    # connected layer of 1000 units
    assert diffs == {"model_conf.fc_dim": [256, 1000], "model_conf.growth_rate": [8, 16],
                     "model_conf.num_layers": [4, 6], "precision": ["fp32", "bf16"]}
    assert describe_values(diffs, 1) == "model_conf.fc_dim 1000, model_conf.growth_rate 16, " \
                                        "model_conf.num_layers 6, precision bf16"


def test_the_default_written_out_is_the_same_setting():
    written = dict(PAPER, model_conf={"growth_rate": 16, "num_layers": 6})
    assert config_differences([PAPER, written]) == {}
    assert config_differences([PAPER, dict(PAPER, seed=3)]) == {}   # seeds tell apart runs, not settings


def test_an_unknown_model_is_compared_as_written():
    a, b = {"model": "mine", "model_conf": {}}, {"model": "mine", "model_conf": {"width": 3}}
    assert config_differences([a, b]) == {"model_conf.width": [None, 3]}
