"""Tests for ser.models: shapes, gradients, paths, overfitting, highway eq. 2, FLOP counts, errors."""
import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from ser.errors import SerError
from ser.models import MODELS, build_model, model_defaults
from ser.models.common import SequencePool
from ser.models.complexity import count_flops, count_parameters, flops_per_segment
from ser.models.highway import Gate, HighwayBlock, HighwayLayer

FEAT_DIMS = (128, 80)
FRAMES = 64

# Small sizes that keep every code path (all blocks, LSTM, skips, highway) but run fast.
SMALL = {
    "densenet_lstm_highway": {"growth_rate": 4, "num_layers": 2, "lstm_hidden": 16, "skip_dim": 16,
                              "highway_dim": 16},
    "densenet": {"growth_rate": 4, "num_layers": 2, "fc_dim": 32},
    "densenet_lstm": {"growth_rate": 4, "num_layers": 2, "lstm_hidden": 16, "fc_dim": 32},
    "cnn": {"conv_channels": [4, 8, 8, 8], "fc_dim": 16},
    "cnn_lstm": {"conv_channels": [4, 8, 8, 8], "lstm_hidden": 16},
    "cnn_blstm": {"conv_channels": [16, 16, 16], "lstm_hidden": 16},
    "mlp": {"hidden_dim": 64},
}
DROPOUT_KEYS = {"densenet_lstm_highway": ["dropout"], "densenet": ["dropout"], "densenet_lstm": ["dropout"],
                "cnn": ["dropout"], "cnn_lstm": ["dropout"], "cnn_blstm": ["conv_dropout", "lstm_dropout"],
                "mlp": ["dropout", "input_dropout"]}
LSTM_ATTR = {"densenet_lstm_highway": "lstm", "densenet_lstm": "lstm", "cnn_lstm": "lstm", "cnn_blstm": "blstm"}


pytestmark = pytest.mark.usefixtures("one_thread")


def small(name, feat_dim, **extra):
    torch.manual_seed(0)
    return build_model(name, 4, feat_dim, **{**SMALL[name], **extra})


def test_registry_lists_all_models():
    assert set(MODELS) == {"densenet_lstm_highway", "densenet", "densenet_lstm", "cnn", "cnn_lstm", "cnn_blstm",
                           "mlp"}
    assert set(SMALL) == set(MODELS)


def test_paper_sizes_are_the_defaults():
    prop = model_defaults("densenet_lstm_highway")
    assert (prop["num_blocks"], prop["num_layers"], prop["growth_rate"]) == (2, 6, 24)
    assert (prop["highway_layers"], prop["highway_dim"], prop["dropout"]) == (3, 128, 0.5)
    dn = model_defaults("densenet")
    assert (dn["num_blocks"], dn["num_layers"], dn["growth_rate"], dn["fc_dim"]) == (3, 6, 16, 1000)
    bl = model_defaults("cnn_blstm")
    assert (len(bl["conv_channels"]), bl["conv_dropout"], bl["lstm_dropout"]) == (3, 0.1, 0.2)
    # The proposed model really has 2 blocks of 6 layers growing by 24 maps, and 3 highway layers.
    model = build_model("densenet_lstm_highway", 4, 128)
    blocks = model.backbone.blocks
    assert len(blocks) == 2 and all(len(b) == 6 for b in blocks)
    assert blocks[0].out_channels - 48 == 6 * 24
    assert len(model.highway) == 3 and model.highway[0].hidden.out_features == 128


@pytest.mark.parametrize("feat_dim", FEAT_DIMS)
@pytest.mark.parametrize("name", MODELS)
def test_default_model_output_shape(name, feat_dim):
    torch.manual_seed(0)
    model = build_model(name, 5, feat_dim).eval()
    with torch.no_grad():
        out = model(torch.randn(2, FRAMES, feat_dim))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


@pytest.mark.parametrize("feat_dim", FEAT_DIMS)
@pytest.mark.parametrize("name", MODELS)
def test_any_segment_length(name, feat_dim):
    model = small(name, feat_dim).eval()
    with torch.no_grad():
        for frames in (32, 47, 100):
            assert model(torch.randn(3, frames, feat_dim)).shape == (3, 4)


@pytest.mark.parametrize("feat_dim", FEAT_DIMS)
@pytest.mark.parametrize("name", MODELS)
def test_every_parameter_gets_a_gradient(name, feat_dim):
    model = small(name, feat_dim).train()
    x = torch.randn(4, FRAMES, feat_dim)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().max() > 0, pname


@pytest.mark.parametrize("name", sorted(LSTM_ATTR))
def test_lstm_path_is_used(name):
    model = small(name, 80).eval()
    x = torch.randn(2, FRAMES, 80)
    with torch.no_grad():
        ref = model(x)
        handle = getattr(model, LSTM_ATTR[name]).register_forward_hook(
            lambda mod, inp, out: (torch.zeros_like(out[0]), out[1]))
        zeroed = model(x)
        handle.remove()
        again = model(x)
    assert torch.equal(ref, again)
    assert (ref - zeroed).abs().max() > 1e-4


def test_skip_path_is_used():
    model = small("densenet_lstm_highway", 128).eval()
    x = torch.randn(2, FRAMES, 128)
    with torch.no_grad():
        ref = model(x)
        for proj in model.skips:
            proj.weight.zero_()
            proj.bias.zero_()
        assert (ref - model(x)).abs().max() > 1e-4


@pytest.mark.parametrize("coupled", [False, True])
def test_highway_gates_are_in_open_unit_interval(coupled):
    model = small("densenet_lstm_highway", 128, highway_coupled=coupled).eval()
    gates = [m for m in model.modules() if isinstance(m, Gate)]
    assert len(gates) == (3 if coupled else 6)
    seen = []
    handles = [g.register_forward_hook(lambda mod, inp, out: seen.append(out)) for g in gates]
    with torch.no_grad():
        model(torch.randn(3, FRAMES, 128))
    for h in handles:
        h.remove()
    assert len(seen) == len(gates)
    for out in seen:
        assert out.shape == (3, 16)
        assert (out > 0).all() and (out < 1).all()
        assert out.std() > 0  # gates depend on the input, not constant


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _np(t):
    return t.detach().double().numpy()


@pytest.mark.parametrize("coupled", [False, True])
def test_highway_layer_matches_equation_2(coupled):
    torch.manual_seed(1)
    layer = HighwayLayer(6, coupled=coupled)
    x = torch.randn(4, 6)
    xn = _np(x)
    h = np.maximum(xn @ _np(layer.hidden.weight).T + _np(layer.hidden.bias), 0.0)
    t = _sigmoid(xn @ _np(layer.transform_gate.linear.weight).T + _np(layer.transform_gate.linear.bias))
    if coupled:
        c = 1.0 - t
    else:
        c = _sigmoid(xn @ _np(layer.carry_gate.linear.weight).T + _np(layer.carry_gate.linear.bias))
    expected = h * t + xn * c
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-5, atol=1e-6)
    # the carry gate is a separately learned gate unless coupled
    assert (layer.carry_gate is None) == coupled


def test_highway_block_is_the_composition_of_its_layers():
    torch.manual_seed(2)
    block = HighwayBlock(5, num_layers=3)
    x = torch.randn(2, 5)
    expected = block[2](block[1](block[0](x)))
    assert torch.allclose(block(x), expected)
    assert len(block) == 3


@pytest.mark.parametrize("name", MODELS)
def test_overfits_a_small_batch(name):
    feat_dim = 80
    zero_dropout = {k: 0.0 for k in DROPOUT_KEYS[name]}
    model = small(name, feat_dim, **zero_dropout)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(8, FRAMES, feat_dim, generator=gen)
    y = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])[torch.randperm(8, generator=gen)]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    steps = 0
    for steps in range(1, 101):
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        if (logits.argmax(1) == y).all() and loss.item() < 0.1:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert steps < 100, f"{name}: not fitted after 100 steps (loss {loss.item():.3f})"
    model.eval()  # inference mode (BatchNorm running statistics) must agree
    with torch.no_grad():
        train_acc = (model(x).argmax(1) == y).float().mean().item()
    assert train_acc == 1.0, f"{name}: train accuracy {train_acc} after {steps} steps"


def test_sequence_pool():
    seq = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    assert torch.equal(SequencePool("last")(seq), seq[:, -1])
    assert torch.equal(SequencePool("mean")(seq), seq.mean(1))
    both = SequencePool("last", bidirectional=True)(seq)
    assert torch.equal(both, torch.cat([seq[:, 2, :2], seq[:, 0, 2:]], dim=1))


def test_unknown_model_raises():
    with pytest.raises(SerError, match="unknown model 'resnet'"):
        build_model("resnet", 4, 128)


@pytest.mark.parametrize("name", MODELS)
def test_unknown_option_raises(name):
    with pytest.raises(SerError, match=f"model '{name}'.*unknown option.*'hidden_sizee'"):
        build_model(name, 4, 128, hidden_sizee=3)


@pytest.mark.parametrize("option,value,message", [
    ("growth_rate", "24", "must be an integer"),
    ("growth_rate", 0, "must be > 0"),
    ("dropout", 1.5, r"must be in \[0, 1\)"),
    ("lstm_pool", "max", "must be one of last, mean"),
    ("highway_coupled", 1, "must be true or false"),
])
def test_bad_option_values_raise(option, value, message):
    with pytest.raises(SerError, match=f"option '{option}' {message}"):
        build_model("densenet_lstm_highway", 4, 128, **{option: value})


def test_bad_inputs_raise():
    model = small("densenet_lstm_highway", 128)
    with pytest.raises(SerError, match=r"expected input \(batch, frames, 128\)"):
        model(torch.randn(2, 64, 80))
    with pytest.raises(SerError, match="shorter than the minimum"):
        model(torch.randn(2, model.min_frames - 1, 128))
    with pytest.raises(SerError, match="num_classes"):
        build_model("cnn", 1, 128)
    with pytest.raises(SerError, match="feat_dim 8 is too small"):
        build_model("densenet", 4, 8)


def _textbook_conv_block(block, x, pool, kernel=None, padding=0):
    """Conv -> BN -> ReLU -> MaxPool of a block's modules, in F ops (training-mode BN)."""
    conv, norm = block[0], block[1]
    h = F.relu(F.batch_norm(conv(x), None, None, norm.weight, norm.bias, training=True))
    return F.max_pool2d(h, kernel or pool, stride=pool, padding=padding) if pool > 1 else h


@pytest.mark.parametrize("channels_last", [False, True])
def test_conv_stack_is_conv_bn_relu_max_pool(channels_last):
    # The stack runs the ReLU after the pooling; output and gradients must be exactly the
    # textbook order's, also where the windows hold negative values only and where values tie.
    model = small("cnn", 128)
    block = nn.Sequential(*list(model.convs)[:4])
    x = torch.randn(4, 1, 16, 12)
    x[:, :, :4] = 0.0  # ties (all-zero windows) and, after BN, all-negative windows
    if channels_last:
        block = block.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    grads = []
    for forward in (block, lambda v: _textbook_conv_block(block, v, 2)):
        block.zero_grad()
        xr = x.clone().requires_grad_()
        out = forward(xr)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append((out.detach(), xr.grad, block[0].weight.grad.clone(), block[1].weight.grad.clone()))
    assert [type(m).__name__ for m in block] == ["Conv2d", "BatchNorm2d", "MaxPool2d", "ReLU"]
    for ours, reference in zip(*grads):
        assert torch.equal(ours, reference)


def test_densenet_stem_and_transition_match_the_textbook_order():
    model = small("densenet", 128)
    backbone = model.backbone
    x = torch.randn(2, 1, 32, 24, requires_grad=True)
    ref = _textbook_conv_block(backbone.stem, x, backbone.init_pool, kernel=3, padding=1)
    torch.testing.assert_close(backbone.stem(x), ref, rtol=0, atol=0)
    # Transition: BN -> ReLU -> Conv1x1 -> AvgPool (pooling first is the same linear map).
    trans = backbone.transitions[0]
    h = torch.randn(2, trans[0].num_features, 9, 7)
    norm, conv = trans[0], trans[2]
    ref = F.avg_pool2d(conv(F.relu(F.batch_norm(h, None, None, norm.weight, norm.bias, training=True))), 2)
    torch.testing.assert_close(trans(h), ref, rtol=1e-5, atol=1e-6)
    assert [k for k in trans.state_dict() if k.endswith("weight")] == ["0.weight", "2.weight"]


def test_flops_of_linear_match_hand_count():
    lin = nn.Linear(7, 5)
    assert count_flops(lin, (torch.randn(3, 7),)) == 2 * 3 * 7 * 5
    assert count_parameters(lin) == 7 * 5 + 5


def test_flops_of_conv2d_match_hand_count():
    conv = nn.Conv2d(3, 4, kernel_size=(3, 5), stride=2, padding=1)
    x = torch.randn(2, 3, 9, 11)
    h_out, w_out = (9 + 2 - 3) // 2 + 1, (11 + 2 - 5) // 2 + 1
    assert conv(x).shape[2:] == (h_out, w_out)
    assert count_flops(conv, (x,)) == 2 * 2 * 4 * h_out * w_out * 3 * 3 * 5


def test_flops_of_lstm_match_hand_count():
    lstm = nn.LSTM(10, 8, num_layers=2, bidirectional=True, batch_first=True)
    batch, steps = 3, 5
    per_token = 2 * (4 * 8 * 10 + 4 * 8 * 8) + 2 * (4 * 8 * 16 + 4 * 8 * 8)  # MACs: layers x directions
    assert count_flops(lstm, (torch.randn(batch, steps, 10),)) == 2 * batch * steps * per_token


def test_flops_per_segment_of_cnn_blstm():
    # Conv1d stack + BLSTM + classifier, counted by hand, per segment.
    model = build_model("cnn_blstm", 4, 80, conv_channels=[16, 8, 8], kernel=3, lstm_hidden=6, lstm_layers=1)
    frames = 40
    conv = frames * 3 * (80 * 16 + 16 * 8 + 8 * 8)
    lstm = frames * 2 * (4 * 6 * 8 + 4 * 6 * 6)
    head = 12 * 4
    assert flops_per_segment(model, frames, 80) == 2 * (conv + lstm + head)
    assert model.training  # the probe works on a copy


def _load_bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "bench_models.py"
    spec = importlib.util.spec_from_file_location("bench_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_prints_a_table(capsys):
    bench = _load_bench()
    rc = bench.main(["--models", "cnn_blstm", "cnn", "--sizes", "cpu", "--batch", "2", "--frames", "32",
                     "--steps", "1", "--warmup", "0"])
    assert rc == 0
    out = capsys.readouterr().out
    ceiling = re.search(r"^# bf16 GEMM / fp32 GEMM: ([0-9.]+)x", out, re.M)
    assert ceiling and float(ceiling.group(1)) > 0
    lines = [ln for ln in out.strip().splitlines() if not ln.startswith("#")]
    assert lines[0].split()[:4] == ["model", "size", "params", "GF/seg"]
    row = dict((ln.split()[0], ln.replace("|", " ").split()) for ln in lines[2:])
    assert set(row) == {"cnn_blstm", "cnn"}
    cpu_cnn = bench.model_options("cnn", "cpu")
    assert cpu_cnn and row["cnn"][1] == "cpu"   # the CPU config's narrower model
    assert int(row["cnn"][2].replace(",", "")) == count_parameters(build_model("cnn", 7, 128, **cpu_cnn))
    cells = row["cnn"][3:]
    assert len(cells) == 11
    # Rates are positive; a tiny model on a loaded machine may show 0 % of the matmul rate.
    assert all(float(v.rstrip("x")) > 0 for v in cells if not v.endswith("%"))
    percents = [float(v[:-1]) for v in cells if v.endswith("%")]
    assert len(percents) == 2 and all(v >= 0 for v in percents)
    with pytest.raises(SerError, match="--steps must be >= 1"):
        bench.main(["--steps", "0"])


def test_gemm_reference_computes_the_product_it_times():
    path = Path(__file__).resolve().parents[1] / "bench" / "gemm_rate.py"
    spec = importlib.util.spec_from_file_location("gemm_rate", path)
    gemm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gemm)
    torch.manual_seed(0)
    x, w = torch.randn(128, 48, dtype=torch.float64), torch.randn(40, 48, dtype=torch.float64)
    assert torch.allclose(gemm.conv_as_gemm(x, w), x @ w.T, atol=1e-10)   # via the convolution library
    rates, best = gemm.gemm_gflops("fp32", "cpu", n=128, rounds=1)
    assert set(rates) == {"matmul", "conv1x1"} and min(rates.values()) > 0 and best == max(rates.values())


def test_models_follow_the_device_of_their_parameters():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    model = small("densenet_lstm_highway", 80).cuda()
    assert model(torch.randn(2, FRAMES, 80, device="cuda")).device.type == "cuda"
    assert math.isfinite(flops_per_segment(model, FRAMES, 80))


@pytest.mark.parametrize("name", ["cnn", "densenet"])
def test_bench_plain_setting_runs_the_textbook_order(name):
    # The bench's `plain` baseline undoes the layer-order speed-ups: same outputs, ReLU before
    # each max pooling, a transition's convolution before its pooling.
    bench = _load_bench()
    model = small(name, 128).eval()
    x = torch.randn(2, FRAMES, 128)
    with torch.no_grad():
        ours = model(x)
        textbook = bench.textbook_order(model)
        torch.testing.assert_close(textbook(x), ours, rtol=1e-5, atol=1e-6)
    names = [type(m).__name__ for m in textbook.modules()]
    pairs = list(zip(names, names[1:]))
    assert ("ReLU", "MaxPool2d") in pairs and ("MaxPool2d", "ReLU") not in pairs
    if name == "densenet":
        trans = textbook.backbone.transitions[0]
        h = torch.randn(1, trans[0].num_features, 8, 8)
        calls = []
        trans[2].register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[-1]))
        trans(h)
        assert calls == [8]  # the convolution ran before the pooling, on all 8 columns
